"""The online training loop: collect, store, update, evaluate, log, checkpoint, resume."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import Tensor

from qlearn.agents.base import Agent
from qlearn.buffers import ReplayBuffer
from qlearn.checkpoint import latest_checkpoint, load_buffer_state, save_checkpoint
from qlearn.envs import episode_stats, final_next_obs
from qlearn.errors import QlearnError
from qlearn.exploration import EpsilonGreedy
from qlearn.logging import Logger, NullLogger
from qlearn.trainers.controls import LoopControls, TrainingInterrupted
from qlearn.trainers.evaluation import evaluate
from qlearn.trainers.records import append_evaluation, check_finite, write_results
from qlearn.utils import (
    frozen_gc,
    global_rng_state,
    release_free_memory,
    set_global_rng_state,
)

TRIM_EVERY_UPDATES = 500  # return freed heap pages to the OS this often (see release_free_memory)


class OnlineTrainer(LoopControls):
    """Drives an agent in a vector env and trains it from a replay buffer.

    Counting conventions: every interval here counts **env steps** summed over sub-envs
    (``total_steps``, ``learning_starts``, ``train_every``, ``eval_every``, ``checkpoint_every``,
    ``log_every``); intervals inside the agent (target updates) count its own update calls.
    After ``learning_starts`` env steps, every ``train_every`` env steps the trainer makes
    ``updates_per_step`` updates in a row (``updates = (steps - learning_starts) // train_every *
    updates_per_step``): SB3's ``train_freq`` + ``gradient_steps``, CleanRL's ``train_frequency``;
    with ``train_every=1`` it is the UTD ratio G of REDQ. A run with 8 sub-envs makes as many
    updates per env step as a run with one. The updates come as a burst, not spread over the
    ``train_every`` steps: the policy then acts unchanged for ``train_every`` steps, which matters
    where exploration needs consistent action sequences (DQN on MountainCar-v0 with rl-zoo's 8
    updates every 16 steps reached the goal only in bursts, ``benchmarks/README.md``).

    Exact resume: at every periodic checkpoint the training envs are reset with a seed derived from
    the run seed and the checkpoint count, in an uninterrupted run and in a resumed one alike (env
    internals cannot be saved in general). With agent, optimizer, buffer, counter and RNG states
    restored, a resumed CPU run then ends with the same parameters as an uninterrupted one.
    Episodes cut at a checkpoint are truncations, which bootstrap, so learning is unaffected.

    Args:
        agent: the learner; ``act(obs, deterministic)`` and ``update(batch)``.
        env: training vector env (SAME_STEP autoreset, see ``qlearn.envs.make_env``).
        buffer: replay buffer; ``add`` gets the true final observation of finished episodes.
        eval_env: separate vector env for greedy evaluation (``None``: no evaluation).
        exploration: epsilon-greedy block for discrete actions, or ``None`` (the agent explores).
        random_steps: env steps of uniformly random actions at the start (SAC/REDQ "start steps").
        clip_reward: learn from ``sign(r)`` (Mnih et al., 2015); logged and evaluated returns stay raw.
        terminal_on_life_loss: treat a lost life (Atari ``infos["lives"]`` dropping) as terminal for
            learning only, as Mnih et al. (2015) did; the game, its score and evaluation run on.
        run_dir: where checkpoints, ``evaluations.csv`` and ``results.json`` go (``None``: nowhere).
        config: resolved config stored in every checkpoint so ``qlearn-eval`` can rebuild the agent.
        on_evaluation: callbacks ``f(trainer, result)`` run after each evaluation (``qlearn-collect``
            snapshots its behaviour policies this way).
    """

    def __init__(
        self,
        agent: Agent,
        env: gym.vector.VectorEnv,
        buffer: ReplayBuffer,
        *,
        total_steps: int,
        eval_env: gym.vector.VectorEnv | None = None,
        exploration: EpsilonGreedy | None = None,
        logger: Logger | None = None,
        run_dir: str | Path | None = None,
        learning_starts: int = 1000,
        random_steps: int = 0,
        train_every: int = 1,
        updates_per_step: int = 1,
        batch_size: int = 32,
        eval_every: int = 10_000,
        eval_episodes: int = 10,
        eval_epsilon: float = 0.0,
        checkpoint_every: int | None = None,
        keep_checkpoints: int = 2,
        save_buffer: bool = True,
        log_every: int = 1000,
        clip_reward: bool = False,
        terminal_on_life_loss: bool = False,
        seed: int = 0,
        progress: bool | None = None,
        config: dict[str, Any] | None = None,
        on_evaluation: Sequence[Callable[[OnlineTrainer, dict[str, Any]], None]] = (),
    ) -> None:
        if total_steps < 1 or train_every < 1 or updates_per_step < 1 or batch_size < 1:
            raise QlearnError("total_steps, train_every, updates_per_step and batch_size must all be >= 1.")
        if learning_starts < batch_size:
            raise QlearnError(
                f"learning_starts={learning_starts} is smaller than batch_size={batch_size}: "
                "the first update would sample more transitions than the buffer holds. Raise learning_starts."
            )
        self.agent = agent
        self.env = env
        self.buffer = buffer
        self.eval_env = eval_env
        self.exploration = exploration
        self.logger: Logger = logger if logger is not None else NullLogger()
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.total_steps = int(total_steps)
        self.learning_starts = int(learning_starts)
        self.random_steps = int(random_steps)
        self.train_every = int(train_every)
        self.updates_per_step = int(updates_per_step)
        self.batch_size = int(batch_size)
        self.eval_every = int(eval_every)
        self.eval_episodes = int(eval_episodes)
        self.eval_epsilon = float(eval_epsilon)
        self.checkpoint_every = checkpoint_every
        self.keep_checkpoints = keep_checkpoints
        self.save_buffer = save_buffer
        self.log_every = int(log_every)
        self.clip_reward = clip_reward
        self.terminal_on_life_loss = terminal_on_life_loss
        self._lives: np.ndarray | None = None
        self.seed = int(seed)
        self.progress = sys.stderr.isatty() if progress is None else progress
        self.config = config or {}
        self.on_evaluation = list(on_evaluation)
        self.num_envs = int(env.num_envs)
        self.device = agent.device
        self._cpu = self.device.type == "cpu"
        self._move_batches = torch.device(getattr(buffer, "device", self.device)) != self.device
        # Counters: everything here is saved in checkpoints.
        self.env_step = 0
        self.updates_done = 0
        self.episodes = 0
        self.segment = 0  # number of periodic checkpoints so far; seeds the env reset after each
        self.eval_history: list[dict[str, float]] = []
        self.last_return = float("nan")
        self._pending_losses: list[tuple[int, Tensor, Tensor]] = []
        self._last_metrics: dict[str, Tensor] = {}
        self._signal: int | None = None

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        return {
            "env_step": self.env_step,
            "updates_done": self.updates_done,
            "episodes": self.episodes,
            "segment": self.segment,
            "eval_history": self.eval_history,
            "last_return": self.last_return,
            "exploration": self.exploration.state_dict() if self.exploration is not None else None,
            "rng": global_rng_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.env_step = int(state["env_step"])
        self.updates_done = int(state["updates_done"])
        self.episodes = int(state["episodes"])
        self.segment = int(state["segment"])
        self.eval_history = list(state["eval_history"])
        self.last_return = float(state["last_return"])
        if self.exploration is not None and state["exploration"] is not None:
            self.exploration.load_state_dict(state["exploration"])
        set_global_rng_state(state["rng"])

    def resume_from(self, checkpoint_path: str | Path | None = None) -> Path:
        """Restore agent, buffer, counters and RNGs from a checkpoint (default: the run's latest)."""
        from qlearn.checkpoint import load_checkpoint

        path = Path(checkpoint_path) if checkpoint_path is not None else None
        if path is None:
            if self.run_dir is None or (path := latest_checkpoint(self.run_dir)) is None:
                raise QlearnError(f"no checkpoint to resume from in {self.run_dir}.")
        state = load_checkpoint(path, map_location=self.device)
        self.agent.load_state_dict(state["agent"])
        buffer_state = load_buffer_state(path, map_location="cpu")
        if buffer_state is None:
            raise QlearnError(
                f"{path} has no replay buffer saved beside it (trainer.save_buffer was false), "
                "so the run cannot resume exactly. Start a new run, or keep save_buffer=true."
            )
        self.buffer.load_state_dict(buffer_state)
        self.load_state_dict(state["trainer"])
        return path

    # ------------------------------------------------------------------ loop
    def run(self) -> dict[str, Any]:
        """Train until ``total_steps`` env steps; returns (and writes) the results summary."""
        start_time = time.perf_counter()
        start_step = self.env_step
        previous = self._catch_signals()
        bar = self._progress_bar(self.total_steps, self.env_step, "step")
        try:
            # The loop allocates little, so full collections would only walk every long-lived object again; and
            # acting needs no autograd (`_train` and `_periodic` turn it back on): one switch instead of one per act.
            with frozen_gc(), torch.no_grad():
                self._collect_and_train(bar)
            self._check_finite()
            wall = time.perf_counter() - start_time
            results = self._finish(wall, (self.env_step - start_step) / max(wall, 1e-9))
        finally:
            self._restore_signals(previous)
            if bar is not None:
                bar.close()
        return results

    def _collect_and_train(self, bar: Any) -> None:
        """The loop: act, step, store, then train and do periodic work when due (both scheduled, not polled)."""
        obs = self._reset_envs()
        self._last_log = (time.perf_counter(), self.env_step)
        self._schedule_updates()
        self._schedule_events()
        while self.env_step < self.total_steps:
            action = self._select_action(obs)
            next_obs, reward, terminated, truncated, infos = self.env.step(action)
            done = terminated | truncated
            any_done = np.count_nonzero(done) > 0  # a quarter of the cost of done.any() on [E] bools
            real_next = final_next_obs(next_obs, infos, done) if any_done else next_obs
            learn_reward = np.sign(reward) if self.clip_reward else reward
            learn_terminated = terminated | self._life_lost(infos, done) if self.terminal_on_life_loss else terminated
            self.buffer.add(obs, action, learn_reward, real_next, learn_terminated, truncated, episode_end=done)
            obs = next_obs
            self.env_step += self.num_envs
            if any_done:
                self._record_episodes(infos, done)
            if self.env_step >= self._next_update_step:
                with torch.enable_grad():
                    self._train()
            if self.env_step >= self._next_event_step:  # logging, evaluation, checkpoints, signals
                with torch.enable_grad():
                    obs = self._periodic(obs, bar)

    def stop(self) -> None:
        """End training after the current step (e.g. from an ``on_evaluation`` callback): the loop
        exits, the final evaluation, checkpoint and ``results.json`` follow as at ``total_steps``."""
        self.total_steps = self.env_step

    def _periodic(self, obs: np.ndarray, bar: Any) -> np.ndarray:
        """Log, evaluate, checkpoint or stop for a signal, whichever is due; returns the (maybe reset) obs."""
        if self._crossed(self.log_every):
            now = time.perf_counter()
            last_time, last_step = self._last_log
            sps = (self.env_step - last_step) / max(now - last_time, 1e-9)
            self._last_log = (now, self.env_step)
            self._log(sps)
            if bar is not None:
                bar.update(self.env_step - bar.n)
                bar.set_postfix(sps=f"{sps:.0f}", ret=f"{self.last_return:.1f}")
        unfinished = self.env_step < self.total_steps  # the end has its own eval and checkpoint
        if unfinished and self._crossed(self.eval_every):
            self._evaluate()
        if unfinished and self.checkpoint_every and self._crossed(self.checkpoint_every):
            self.segment += 1  # saved with the checkpoint, so a resumed run resets envs alike
            self._checkpoint()
            obs = self._reset_envs()
        if self._signal is not None:
            self._interrupt(f"env step {self.env_step}")
        self._schedule_events()
        return obs

    def _schedule_events(self) -> None:
        """The first env step after this one at which `_periodic` has work: a multiple of one of its intervals."""
        step = self.env_step
        due = [(step // every + 1) * every for every in (self.log_every, self.eval_every, self.checkpoint_every or 0)
               if every > 0]
        self._next_event_step = min(due, default=self.total_steps + 1)
        if self._signal is not None:  # checked after the assignment, so a signal arriving now is never lost
            self._next_event_step = 0

    def _on_signal(self, signum: int, frame: Any) -> None:
        super()._on_signal(signum, frame)
        self._next_event_step = 0  # handled by `_periodic` at the end of this step

    def _schedule_updates(self) -> None:
        """The first env step at which `_train` owes an update (see the class docstring for the formula)."""
        done_intervals = self.updates_done // self.updates_per_step
        self._next_update_step = self.learning_starts + self.train_every * (done_intervals + 1)

    def _crossed(self, every: int) -> bool:
        return every > 0 and self.env_step // every != (self.env_step - self.num_envs) // every

    def _reset_envs(self) -> np.ndarray:
        seed = self.seed + 7919 * self.segment  # a fresh, reproducible seed per checkpoint segment
        obs, infos = self.env.reset(seed=seed)
        self.env.action_space.seed(seed)
        self._lives = np.asarray(infos["lives"]).copy() if "lives" in infos else None
        return obs

    def _life_lost(self, infos: dict[str, Any], done: np.ndarray) -> np.ndarray:
        """[E] envs that lost a life this step without their game ending (their lives counter dropped)."""
        if "lives" not in infos or self._lives is None:
            raise QlearnError("terminal_on_life_loss needs an env that reports infos['lives'] (an Atari game).")
        lives = np.asarray(infos["lives"])  # a finished env already shows its reset's lives
        lost = (lives < self._lives) & ~done
        self._lives = lives.copy()
        return lost

    def _select_action(self, obs: np.ndarray) -> np.ndarray:
        if self.env_step < self.random_steps:
            return self.env.action_space.sample()

        def policy() -> np.ndarray:  # autograd is off in the loop (and agents' act methods turn it off anyway)
            if self._cpu:
                return self.agent.act(torch.from_numpy(obs), self.exploration is not None).numpy()
            return self.agent.act(torch.as_tensor(obs, device=self.device), self.exploration is not None).cpu().numpy()

        if self.exploration is not None:
            return self.exploration.select(self.env_step, self.num_envs, policy)
        return policy()

    def _train(self) -> None:
        """Make the updates owed by now; called when `_next_update_step` is reached (never before learning_starts)."""
        owed = (self.env_step - self.learning_starts) // self.train_every * self.updates_per_step
        while self.updates_done < owed:
            batch = self.buffer.sample(self.batch_size)
            if self._move_batches:  # replay kept on CPU while training on a GPU
                batch = batch.to(self.device, non_blocking=True)
            metrics = self.agent.update(batch)
            td_error = metrics.pop("td_error", None)
            if td_error is not None and batch.index is not None:
                self.buffer.update_priorities(batch.index, td_error)
            self.updates_done += 1
            self._last_metrics = metrics
            if self.updates_done % TRIM_EVERY_UPDATES == 0:
                release_free_memory()
            loss = metrics.get("train/loss", metrics.get("train/td_loss"))
            q_mean = metrics.get("train/q_mean", loss)
            if loss is not None:
                self._pending_losses.append((self.env_step, loss, q_mean))
        self._schedule_updates()

    def _check_finite(self) -> None:
        """Raise if any loss or mean Q since the last check was NaN/inf (one host sync per check)."""
        check_finite(self._pending_losses, self.run_dir)

    def _record_episodes(self, infos: dict[str, Any], done: np.ndarray) -> None:
        for ret, length in episode_stats(infos, done):
            self.episodes += 1
            self.last_return = float(ret)
            self.logger.log_scalars(
                {"rollout/episode_return": float(ret), "rollout/episode_length": float(length)}, self.env_step
            )

    def _log(self, sps: float) -> None:
        scalars: dict[str, float] = {"time/sps": sps, "rollout/episodes": float(self.episodes)}
        if self.exploration is not None:
            scalars["rollout/epsilon"] = self.exploration.epsilon(self.env_step)
        if self._pending_losses:
            pending = list(self._pending_losses)
            self._check_finite()
            scalars["train/loss"] = float(torch.stack([loss for _, loss, _ in pending]).mean())
            scalars["train/q_mean"] = float(torch.stack([q for _, _, q in pending]).mean())
            for key, value in self._last_metrics.items():
                if key not in scalars and value.numel() == 1:
                    scalars[key] = float(value)
        scalars["train/updates"] = float(self.updates_done)
        self.logger.log_scalars(scalars, self.env_step)

    def _evaluate(self) -> dict[str, Any] | None:
        if self.eval_env is None:
            return None
        self._check_finite()
        result = evaluate(self.agent, self.eval_env, self.eval_episodes, seed=self.seed + 100_003,
                          epsilon=self.eval_epsilon)
        self.eval_history.append({"step": self.env_step, "mean": result["mean"], "std": result["std"]})
        self.logger.log_scalars({"eval/episode_return": result["mean"], "eval/episode_return_std": result["std"]},
                                self.env_step)
        append_evaluation(self.run_dir, self.env_step, result)
        for callback in self.on_evaluation:
            callback(self, result)
        return result

    def _checkpoint(self) -> Path | None:
        if self.run_dir is None:
            return None
        self._check_finite()  # never save a checkpoint taken after a NaN
        state = {"agent": self.agent.state_dict(), "trainer": self.state_dict(), "config": self.config}
        buffer_state = self.buffer.state_dict() if self.save_buffer else None
        return save_checkpoint(self.run_dir, self.env_step, state, buffer_state, keep=self.keep_checkpoints)

    def _finish(self, wall_time: float, sps: float) -> dict[str, Any]:
        final = self._evaluate() if self.eval_env is not None else None
        self._checkpoint()
        results: dict[str, Any] = {
            "agent": self.config.get("agent_name", type(self.agent).__name__),
            "env_id": self.config.get("env", {}).get("id"),
            "seed": self.seed,
            "total_steps": self.env_step,
            "updates": self.updates_done,
            "episodes": self.episodes,
            "final_eval": None
            if final is None
            else {"mean": final["mean"], "std": final["std"], "episodes": final["episodes"], "returns": final["returns"]},
            "evaluations": self.eval_history,
            "wall_time_s": wall_time,
            "steps_per_sec": sps,
            "device": str(self.device),
        }
        write_results(self.run_dir, results)
        self.logger.close()
        return results


__all__ = ["OnlineTrainer", "TrainingInterrupted"]
