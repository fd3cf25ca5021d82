"""The run machinery every trainer shares: counters, cadence, logging, evaluation, checkpoints and resume,
the NaN stop, signals and memory. `OnlineTrainer` adds env stepping and a replay buffer, `OfflineTrainer`
dataset sampling; `FinetuneTrainer` chains the two.
"""

from __future__ import annotations

import inspect
import logging
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

import gymnasium as gym
from torch import Tensor

from qlearn.agents.base import Agent
from qlearn.checkpoint import load_resume_point, save_checkpoint
from qlearn.errors import QlearnError
from qlearn.single_vector import as_vector_env
from qlearn.logging import Logger, NullLogger
from qlearn.trainers.controls import LoopControls
from qlearn.trainers.evaluation import evaluate
from qlearn.trainers.records import append_evaluation, check_finite, mean_of, write_results
from qlearn.types import Batch
from qlearn.utils import frozen_gc, global_rng_state, release_free_memory, set_global_rng_state

TRIM_EVERY_UPDATES = 500  # return freed heap pages to the OS this often (see release_free_memory)
EVAL_SEED_OFFSET = 100_003  # evaluation envs are reset with seed + this, at every evaluation alike
PROGRESS_SECONDS = 60.0  # without a progress bar, a progress line at most this often (and at every evaluation)

log = logging.getLogger("qlearn")


class Score(Protocol):
    """A number computed from an evaluation's mean return, reported beside it (e.g. the D4RL normalised
    score, ``qlearn.offline.NormalizedScore``): ``name`` is its key in ``results.json`` and TensorBoard."""

    name: str
    reference: Any  # what the score is computed against, written to results.json (e.g. [R_random, R_expert])

    def __call__(self, mean_return: float) -> float: ...


class TrainingLoop(LoopControls):
    """Base of the trainers: everything a run does besides producing batches.

    A subclass counts its progress in ``unit``\\ s (env steps or updates) through ``position`` and ``budget``,
    advances by ``stride`` per iteration, and implements ``_loop()``, which calls ``_update(batch)`` for each
    gradient step and ``_periodic()`` once ``position >= _next_event`` (logging, evaluation, checkpoints,
    signals are scheduled, never polled). Every interval counts ``unit``\\ s.
    """

    unit = "step"
    rate_key = "time/sps"  # the TensorBoard key of the speed ...
    rate_result = "steps_per_sec"  # ... and its results.json key

    def __init__(
        self,
        agent: Agent,
        *,
        eval_env: gym.Env | gym.vector.VectorEnv | None = None,
        eval_every: int = 10_000,
        eval_episodes: int = 10,
        eval_epsilon: float = 0.0,
        scores: Sequence[Score] = (),
        logger: Logger | None = None,
        run_dir: str | Path | None = None,
        checkpoint_every: int | None = None,
        keep_checkpoints: int = 2,
        log_every: int = 1000,
        seed: int = 0,
        progress: bool | None = None,
        config: dict[str, Any] | None = None,
        on_evaluation: Sequence[Callable[[Any, dict[str, Any]], None]] = (),
    ) -> None:
        for name, value in (("eval_every", eval_every), ("log_every", log_every),
                            ("checkpoint_every", checkpoint_every or 0)):
            if value < 0:
                raise QlearnError(f"{name} must be >= 0 (0 turns it off), got {value}.")
        if eval_episodes < 1:
            raise QlearnError(f"eval_episodes must be >= 1, got {eval_episodes}.")
        self.agent = agent
        self.eval_env = None if eval_env is None else as_vector_env(eval_env)
        self.eval_every, self.eval_episodes, self.eval_epsilon = int(eval_every), int(eval_episodes), float(eval_epsilon)
        self.scores = list(scores)
        self.logger: Logger = logger if logger is not None else NullLogger()
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.checkpoint_every, self.keep_checkpoints = checkpoint_every, int(keep_checkpoints)
        self.log_every = int(log_every)
        self.seed = int(seed)
        self.progress = sys.stderr.isatty() if progress is None else progress
        self.config = config or {}
        self.on_evaluation = list(on_evaluation)
        self.device = agent.device
        self.updates_done = 0
        self.eval_history: list[dict[str, float]] = []
        self._pending_losses: list[tuple[int, Tensor, Tensor]] = []
        self._last_metrics: dict[str, Tensor] = {}
        self._signal: int | None = None
        self._next_event = 0
        self._bar: Any = None
        self._last_line = time.perf_counter()

    # ------------------------------------------------------------------ what a subclass defines
    @property
    def position(self) -> int:
        """Progress so far, in ``unit``\\ s."""
        raise NotImplementedError

    @property
    def budget(self) -> int:
        """Where the run ends, in ``unit``\\ s."""
        raise NotImplementedError

    stride = 1  # units per loop iteration (the number of sub-envs online)

    def _loop(self) -> None:
        raise NotImplementedError

    def _extra_state(self) -> dict[str, Any]:
        """Subclass counters for the checkpoint, beside ``updates_done``, ``eval_history`` and the RNG states."""
        return {}

    def _load_extra_state(self, state: dict[str, Any]) -> None:
        pass

    def _buffer_state(self) -> dict[str, Any] | None:
        """The replay buffer to save beside the checkpoint (``None``: none)."""
        return None

    def _load_buffer_state(self, buffer_state: dict[str, Any] | None, path: Path) -> None:
        pass

    def _needs_buffer(self) -> bool:
        return False

    def _after_checkpoint(self) -> None:
        """Called after each periodic checkpoint (the online trainer resets its envs there)."""

    def _results(self) -> dict[str, Any]:
        """Subclass fields of ``results.json``."""
        return {}

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        return {"updates_done": self.updates_done, "eval_history": self.eval_history, "rng": global_rng_state(),
                **self._extra_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.updates_done = int(state["updates_done"])
        self.eval_history = list(state["eval_history"])
        set_global_rng_state(state["rng"])
        self._load_extra_state(state)

    def resume_from(self, checkpoint: str | Path | None = None) -> Path:
        """Restore agent, counters, RNGs (and the buffer) from ``checkpoint`` or the run's newest readable one.

        A damaged newest checkpoint (a truncated file after a crash mid-write on a file system without atomic
        rename, a disk error) is reported and the previous one is used: ``keep_checkpoints`` keeps two.
        """
        where = Path(checkpoint) if checkpoint is not None else self.run_dir
        if where is None:
            raise QlearnError("no checkpoint to resume from: the trainer has no run_dir.")
        point = load_resume_point(where, map_location=self.device, with_buffer=self._needs_buffer())
        for skipped, reason in point.skipped:
            log.warning("checkpoint %s is damaged (%s); resuming from the previous one, %s", skipped, reason,
                        point.path.name)
        self.agent.load_state_dict(point.state["agent"])
        self._load_buffer_state(point.buffer_state, point.path)
        self.load_state_dict(point.state["trainer"])
        return point.path

    # ------------------------------------------------------------------ the run
    def run(self) -> dict[str, Any]:
        """Train until ``budget``; returns (and writes) the results summary."""
        start_time, start = time.perf_counter(), self.position
        previous = self._catch_signals()
        self._bar = self._progress_bar(self.budget, self.position, self.unit.split()[-1])
        self._last_log = (start_time, start)
        self._last_line = start_time
        self._warn_if_no_updates()
        try:
            with frozen_gc():  # the loop allocates little: full collections would only walk long-lived objects
                self._loop()
            self._check_finite()
            wall = time.perf_counter() - start_time
            results = self._finish(wall, (self.position - start) / max(wall, 1e-9))
        finally:
            self._restore_signals(previous)
            if self._bar is not None:
                self._bar.close()
        return results

    def _warn_if_no_updates(self) -> None:
        """Say at the start when the budget ends before the first update (e.g. learning_starts >= total_steps)."""

    def stop(self) -> None:
        """End training after the current iteration (e.g. from an ``on_evaluation`` callback): the loop exits,
        the final evaluation, checkpoint and ``results.json`` follow as at the budget."""
        raise NotImplementedError

    def _update(self, batch: Batch) -> Tensor | None:
        """One ``agent.update``; keeps the loss for the NaN check and the log. Returns the ``td_error``, if any."""
        metrics = self.agent.update(batch)
        td_error = metrics.pop("td_error", None)
        self.updates_done += 1
        self._last_metrics = metrics
        if self.updates_done % TRIM_EVERY_UPDATES == 0:
            release_free_memory()
        loss = metrics.get("train/loss", metrics.get("train/td_loss"))
        if loss is not None:
            self._pending_losses.append((self.position, loss, metrics.get("train/q_mean", loss)))
        return td_error

    def _periodic(self) -> None:
        """Log, evaluate, checkpoint or stop for a signal, whichever is due."""
        if self._crossed(self.log_every):
            self._log()
        unfinished = self.position < self.budget  # the end has its own evaluation and checkpoint
        if unfinished and self._crossed(self.eval_every):
            self._evaluate()
        if unfinished and self.checkpoint_every and self._crossed(self.checkpoint_every):
            self._periodic_checkpoint()
            self._after_checkpoint()
        if self._signal is not None:
            self._interrupt(f"{self.unit} {self.position}")
        self._schedule_events()

    def _periodic_checkpoint(self) -> None:
        self._checkpoint()

    def _schedule_events(self) -> None:
        """The first position after this one at which `_periodic` has work: a multiple of one of its intervals."""
        now = self.position
        due = [(now // every + 1) * every for every in (self.log_every, self.eval_every, self.checkpoint_every or 0)
               if every > 0]
        self._next_event = min(due, default=self.budget + 1)
        if self._signal is not None:  # checked after the assignment, so a signal arriving now is never lost
            self._next_event = 0

    def _on_signal(self, signum: int, frame: Any) -> None:
        super()._on_signal(signum, frame)
        self._next_event = 0  # handled by `_periodic` at the end of this iteration

    def _crossed(self, every: int) -> bool:
        return every > 0 and self.position // every != (self.position - self.stride) // every

    # ------------------------------------------------------------------ records
    def _check_finite(self) -> None:
        """Raise if any loss or mean Q since the last check was NaN/inf (one host sync per check)."""
        check_finite(self._pending_losses, self.run_dir, unit=self.unit)

    def _rollout_scalars(self) -> dict[str, float]:
        return {}

    def _log(self) -> None:
        now = time.perf_counter()
        last_time, last_position = self._last_log
        rate = (self.position - last_position) / max(now - last_time, 1e-9)
        self._last_log = (now, self.position)
        scalars = {self.rate_key: rate, **self._rollout_scalars()}
        if self._pending_losses:
            pending = list(self._pending_losses)
            self._check_finite()
            scalars["train/loss"] = mean_of([loss for _, loss, _ in pending])
            scalars["train/q_mean"] = mean_of([q for _, _, q in pending])
            for key, value in self._last_metrics.items():
                if key not in scalars and value.numel() == 1:
                    scalars[key] = float(value)
        scalars["train/updates"] = float(self.updates_done)
        self.logger.log_scalars(scalars, self.position)
        if self._bar is not None:
            self._bar.update(self.position - self._bar.n)
            self._bar.set_postfix(rate=f"{rate:.0f}", **self._bar_postfix())
        elif now - self._last_line >= PROGRESS_SECONDS:
            self._progress_line(f"{rate:.0f} {self.unit}s/s")

    def _bar_postfix(self) -> dict[str, str]:
        return {}

    def _progress_line(self, detail: str) -> None:
        """One line for logs read outside a terminal (nohup, SLURM): where the run is and how fast it goes."""
        self._last_line = time.perf_counter()
        log.info("%s %d/%d (%.0f%%), %d updates; %s", self.unit, self.position, self.budget,
                 100.0 * self.position / max(self.budget, 1), self.updates_done, detail)

    def _evaluate(self, final: bool = False) -> dict[str, Any] | None:
        if self.eval_env is None:
            return None
        self._check_finite()
        if final and self._bar is None:  # 100 Atari episodes can take half an hour: say what the silence is
            log.info("final evaluation: %d episodes, epsilon %g", self.eval_episodes, self.eval_epsilon)
        start = self._last_line = time.perf_counter()  # evaluation progress lines count from here
        result: dict[str, Any] = evaluate(self.agent, self.eval_env, self.eval_episodes,
                                          seed=self.seed + EVAL_SEED_OFFSET, epsilon=self.eval_epsilon,
                                          on_episode=None if self._bar is not None else self._eval_progress)
        result["wall_time_s"] = time.perf_counter() - start
        scalars = {"eval/episode_return": result["mean"], "eval/episode_return_std": result["std"]}
        record: dict[str, float] = {"step": self.position, "mean": result["mean"], "std": result["std"]}
        for score in self.scores:
            value = float(score(result["mean"]))
            result[score.name] = record[score.name] = scalars[f"eval/{score.name}"] = value
        self.eval_history.append(record)
        self.logger.log_scalars(scalars, self.position)
        append_evaluation(self.run_dir, self.position, result, [s.name for s in self.scores])
        if self._bar is None:
            extra = "".join(f", {s.name} {result[s.name]:.1f}" for s in self.scores)
            self._progress_line(f"eval {result['mean']:.2f} ± {result['std']:.2f}{extra} "
                                f"({result['episodes']} episodes, {result['wall_time_s']:.1f} s)")
        for callback in self.on_evaluation:
            callback(self, result)
        return result

    def _eval_progress(self, returns: list[float]) -> None:
        """During a long evaluation, a line at most every ``PROGRESS_SECONDS``: episodes done, mean so far."""
        if time.perf_counter() - self._last_line >= PROGRESS_SECONDS:
            self._last_line = time.perf_counter()
            log.info("evaluating: %d/%d episodes, mean return so far %.2f", len(returns), self.eval_episodes,
                     sum(returns) / len(returns))

    def _checkpoint(self, with_buffer: bool = True) -> Path | None:
        """Save at ``position``; ``with_buffer=False`` rewrites the agent and counters only, keeping the replay file."""
        if self.run_dir is None:
            return None
        self._check_finite()  # never save a checkpoint taken after a NaN
        state = {"agent": self.agent.state_dict(), "trainer": self.state_dict(), "config": self.config}
        buffer = self._buffer_state() if with_buffer else None
        return save_checkpoint(self.run_dir, self.position, state, buffer, keep=self.keep_checkpoints)

    def _finish(self, wall_time: float, rate: float) -> dict[str, Any]:
        # checkpoint first: a run killed during a long final evaluation (100 Atari episodes can take an hour)
        # resumes at the budget and only evaluates again; then again without the buffer, so that the checkpoint's
        # history holds the final evaluation (a resume with a larger budget keeps it in results.json)
        self._checkpoint()
        final = self._evaluate(final=True)
        if final is not None:
            self._checkpoint(with_buffer=False)
        final_eval = None
        if final is not None:
            keys = ("mean", "std", "episodes", "returns", *(s.name for s in self.scores), "wall_time_s")
            final_eval = {k: final[k] for k in keys}
        results: dict[str, Any] = {
            "agent": self.config.get("agent_name", type(self.agent).__name__),
            "experiment": self.config.get("experiment"),  # the preset the run follows, if any
            "env_id": self.config.get("env", {}).get("id"),
            "seed": self.seed,
            "updates": self.updates_done,
            "final_eval": final_eval,
            "evaluations": self.eval_history,
            "scores": {s.name: s.reference for s in self.scores},
            "wall_time_s": wall_time,  # the loop to the budget; the final evaluation's own time is final_eval's
            "device": str(self.device),
            **self._results(),
        }
        results[self.rate_result] = rate
        write_results(self.run_dir, results)
        self.logger.close()
        return results


def option_names(trainer: type) -> set[str]:
    """Keyword options a trainer class takes (its own and `TrainingLoop`'s): for checking config keys."""
    names: set[str] = set()
    for cls in (*trainer.__mro__, *getattr(trainer, "forwards_options_to", ())):
        if "__init__" in cls.__dict__:
            names |= {p.name for p in inspect.signature(cls.__init__).parameters.values()
                      if p.kind is inspect.Parameter.KEYWORD_ONLY}
    return names


__all__ = ["EVAL_SEED_OFFSET", "Score", "TRIM_EVERY_UPDATES", "TrainingLoop", "option_names"]
