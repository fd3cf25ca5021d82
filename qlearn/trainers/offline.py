"""The offline training loop: gradient steps on a fixed dataset, periodic evaluation in the env."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any, Protocol

import gymnasium as gym
import torch
from torch import Tensor

from qlearn.agents.base import Agent
from qlearn.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from qlearn.errors import QlearnError
from qlearn.logging import Logger, NullLogger
from qlearn.offline.scores import normalized_score
from qlearn.trainers.evaluation import evaluate
from qlearn.trainers.controls import LoopControls
from qlearn.trainers.online import TRIM_EVERY_UPDATES
from qlearn.trainers.records import append_evaluation, check_finite, write_results
from qlearn.types import Batch
from qlearn.utils import global_rng_state, release_free_memory, set_global_rng_state


class Dataset(Protocol):
    """What the offline trainer needs from a dataset (e.g. :class:`qlearn.offline.OfflineDataset`)."""

    def sample(self, batch_size: int) -> Batch: ...
    def __len__(self) -> int: ...


class OfflineTrainer(LoopControls):
    """Trains an agent on a fixed dataset: ``dataset.sample(B) -> agent.update`` for ``total_updates`` steps.

    Every interval here counts **gradient updates** (``eval_every``, ``checkpoint_every``,
    ``log_every``). Evaluation runs the agent's deterministic policy in ``eval_env`` and, when
    ``reference_scores = (R_random, R_expert)`` is given, reports the D4RL normalised score beside the
    raw return (TensorBoard ``eval/normalized_score``, ``results.json`` ``final_eval.normalized_score``).
    Checkpoints hold the agent, the counters and the RNG states (the dataset is not copied), so
    ``resume_from`` continues a run.

    Args:
        agent: the learner (``update(batch)``, ``act(obs, deterministic)``).
        dataset: anything with ``sample(batch_size) -> Batch`` on the agent's device.
        total_updates: gradient steps to make.
        batch_size: transitions per update.
        eval_env: vector env for evaluation, already wrapped like the data (e.g. observation
            normalisation); ``None`` skips evaluation.
        reference_scores: ``(R_random, R_expert)`` for the normalised score, or ``None``.
        run_dir: where checkpoints, ``evaluations.csv`` and ``results.json`` go (``None``: nowhere).
        config: stored in checkpoints (``qlearn-eval`` rebuilds the agent from it).
    """

    def __init__(
        self,
        agent: Agent,
        dataset: Dataset,
        *,
        total_updates: int,
        batch_size: int = 256,
        eval_env: gym.vector.VectorEnv | None = None,
        eval_every: int = 5000,
        eval_episodes: int = 10,
        reference_scores: tuple[float, float] | None = None,
        logger: Logger | None = None,
        run_dir: str | Path | None = None,
        checkpoint_every: int | None = None,
        keep_checkpoints: int = 2,
        log_every: int = 1000,
        seed: int = 0,
        progress: bool | None = None,
        config: dict[str, Any] | None = None,
    ) -> None:
        if total_updates < 1 or batch_size < 1:
            raise QlearnError("total_updates and batch_size must both be >= 1.")
        if len(dataset) < 1:
            raise QlearnError("the dataset is empty: nothing to train on.")
        self.agent, self.dataset, self.eval_env = agent, dataset, eval_env
        self.total_updates, self.batch_size = int(total_updates), int(batch_size)
        self.eval_every, self.eval_episodes = int(eval_every), int(eval_episodes)
        self.reference_scores = None if reference_scores is None else (float(reference_scores[0]), float(reference_scores[1]))
        self.logger: Logger = logger if logger is not None else NullLogger()
        self.run_dir = Path(run_dir) if run_dir is not None else None
        if self.run_dir is not None:
            self.run_dir.mkdir(parents=True, exist_ok=True)
        self.checkpoint_every, self.keep_checkpoints = checkpoint_every, int(keep_checkpoints)
        self.log_every, self.seed = int(log_every), int(seed)
        self.progress = sys.stderr.isatty() if progress is None else progress
        self.config = config or {}
        self.device = agent.device
        self.updates_done = 0
        self.eval_history: list[dict[str, float]] = []
        self._pending_losses: list[tuple[int, Tensor, Tensor]] = []
        self._last_metrics: dict[str, Tensor] = {}
        self._signal: int | None = None

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {"updates_done": self.updates_done, "eval_history": self.eval_history,
                                 "rng": global_rng_state()}
        if hasattr(self.dataset, "state_dict"):  # the sampler's RNG, for an exact resume
            state["dataset"] = self.dataset.state_dict()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.updates_done = int(state["updates_done"])
        self.eval_history = list(state["eval_history"])
        set_global_rng_state(state["rng"])
        if hasattr(self.dataset, "load_state_dict") and "dataset" in state:
            self.dataset.load_state_dict(state["dataset"])

    def resume_from(self, checkpoint_path: str | Path | None = None) -> Path:
        """Restore the agent, counters and RNGs from a checkpoint (default: the run's latest)."""
        path = Path(checkpoint_path) if checkpoint_path is not None else None
        if path is None:
            if self.run_dir is None or (path := latest_checkpoint(self.run_dir)) is None:
                raise QlearnError(f"no checkpoint to resume from in {self.run_dir}.")
        state = load_checkpoint(path, map_location=self.device)
        self.agent.load_state_dict(state["agent"])
        self.load_state_dict(state["trainer"])
        return path

    # ------------------------------------------------------------------ loop
    def run(self) -> dict[str, Any]:
        """Make ``total_updates`` gradient steps; returns (and writes) the results summary."""
        start_time, start_updates = time.perf_counter(), self.updates_done
        previous = self._catch_signals()
        bar = self._progress_bar(self.total_updates, self.updates_done, "update")
        try:
            last_log_time, last_log_updates = time.perf_counter(), self.updates_done
            while self.updates_done < self.total_updates:
                metrics = self.agent.update(self.dataset.sample(self.batch_size))
                metrics.pop("td_error", None)
                self.updates_done += 1
                self._last_metrics = metrics
                loss = metrics.get("train/loss", metrics.get("train/td_loss"))
                if loss is not None:
                    self._pending_losses.append((self.updates_done, loss, metrics.get("train/q_mean", loss)))
                if self.updates_done % TRIM_EVERY_UPDATES == 0:
                    release_free_memory()
                if self.log_every > 0 and self.updates_done % self.log_every == 0:
                    now = time.perf_counter()
                    ups = (self.updates_done - last_log_updates) / max(now - last_log_time, 1e-9)
                    last_log_time, last_log_updates = now, self.updates_done
                    self._log(ups)
                    if bar is not None:
                        bar.update(self.updates_done - bar.n)
                        bar.set_postfix(ups=f"{ups:.0f}")
                unfinished = self.updates_done < self.total_updates
                if unfinished and self.eval_every > 0 and self.updates_done % self.eval_every == 0:
                    self._evaluate()
                if unfinished and self.checkpoint_every and self.updates_done % self.checkpoint_every == 0:
                    self._checkpoint()
                if self._signal is not None:
                    self._interrupt(f"update {self.updates_done}")
            check_finite(self._pending_losses, self.run_dir, unit="update")
            wall = time.perf_counter() - start_time
            results = self._finish(wall, (self.updates_done - start_updates) / max(wall, 1e-9))
        finally:
            self._restore_signals(previous)
            if bar is not None:
                bar.close()
        return results

    def _log(self, updates_per_sec: float) -> None:
        scalars: dict[str, float] = {"time/updates_per_sec": updates_per_sec}
        pending = list(self._pending_losses)
        check_finite(self._pending_losses, self.run_dir, unit="update")
        if pending:
            scalars["train/loss"] = float(torch.stack([loss for _, loss, _ in pending]).mean())  # one host sync
        for key, value in self._last_metrics.items():
            if key not in scalars and value.numel() == 1:
                scalars[key] = float(value)
        self.logger.log_scalars(scalars, self.updates_done)

    def _evaluate(self) -> dict[str, Any] | None:
        if self.eval_env is None:
            return None
        check_finite(self._pending_losses, self.run_dir, unit="update")
        result: dict[str, Any] = evaluate(self.agent, self.eval_env, self.eval_episodes, seed=self.seed + 100_003)
        scalars = {"eval/episode_return": result["mean"], "eval/episode_return_std": result["std"]}
        record = {"step": self.updates_done, "mean": result["mean"], "std": result["std"]}
        if self.reference_scores is not None:
            score = float(normalized_score(result["mean"], *self.reference_scores))
            result["normalized_score"] = record["normalized_score"] = scalars["eval/normalized_score"] = score
        self.eval_history.append(record)
        self.logger.log_scalars(scalars, self.updates_done)
        append_evaluation(self.run_dir, self.updates_done, result)
        return result

    def _checkpoint(self) -> Path | None:
        if self.run_dir is None:
            return None
        check_finite(self._pending_losses, self.run_dir, unit="update")
        state = {"agent": self.agent.state_dict(), "trainer": self.state_dict(), "config": self.config}
        return save_checkpoint(self.run_dir, self.updates_done, state, None, keep=self.keep_checkpoints)

    def _finish(self, wall_time: float, updates_per_sec: float) -> dict[str, Any]:
        final = self._evaluate()
        self._checkpoint()
        final_eval = None
        if final is not None:
            final_eval = {k: final[k] for k in ("mean", "std", "episodes", "returns", "normalized_score") if k in final}
        results: dict[str, Any] = {
            "agent": self.config.get("agent_name", type(self.agent).__name__),
            "env_id": self.config.get("env", {}).get("id"),
            "dataset": self.config.get("dataset"),
            "seed": self.seed,
            "total_steps": 0,  # env steps taken while training: none, offline
            "updates": self.updates_done,
            "final_eval": final_eval,
            "evaluations": self.eval_history,
            "reference_scores": list(self.reference_scores) if self.reference_scores is not None else None,
            "wall_time_s": wall_time,
            "updates_per_sec": updates_per_sec,
            "steps_per_sec": 0.0,
            "device": str(self.device),
        }
        write_results(self.run_dir, results)
        self.logger.close()
        return results

