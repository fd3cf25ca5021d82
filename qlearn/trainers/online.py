"""The online trainer: act in a vector env, store transitions, update from the replay buffer.

The run machinery (cadence, logging, evaluation, checkpoints, resume, signals) is `TrainingLoop`'s.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from qlearn.agents.base import Agent
from qlearn.buffers import ReplayBuffer
from qlearn.envs import episode_stats, final_next_obs
from qlearn.errors import QlearnError
from qlearn.exploration import EpsilonGreedy
from qlearn.single_vector import as_vector_env
from qlearn.trainers.controls import TrainingInterrupted
from qlearn.trainers.loop import TrainingLoop, log


def updates_owed(steps: int, learning_starts: int, train_every: int, updates_per_step: int) -> int:
    """Updates due after ``steps`` env steps: ``(steps - learning_starts) // train_every * updates_per_step``
    (SB3's ``train_freq`` + ``gradient_steps``), 0 before ``learning_starts``."""
    return max(0, (steps - learning_starts) // train_every * updates_per_step)


class OnlineTrainer(TrainingLoop):
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
        env: training env: a vector env with SAME_STEP autoreset (``qlearn.envs.make_env``), or a plain
            ``gym.Env`` (run as a 1-env vector env); a NEXT_STEP vector env is refused (`as_vector_env`).
        buffer: replay buffer; ``add`` gets the true final observation of finished episodes.
        exploration: epsilon-greedy block for discrete actions, or ``None`` (the agent explores).
        random_steps: env steps of uniformly random actions at the start (SAC/REDQ "start steps").
        clip_reward: learn from ``sign(r)`` (Mnih et al., 2015); logged and evaluated returns stay raw.
        terminal_on_life_loss: treat a lost life (Atari ``infos["lives"]`` dropping) as terminal for
            learning only, as Mnih et al. (2015) did; the game, its score and evaluation run on.

    The other options (``eval_env``: a separate env, vector or plain, for greedy evaluation, ``None`` for none;
    scores, logging, checkpoints, run directory, config, callbacks) are `TrainingLoop`'s.
    """

    unit = "env step"

    def __init__(
        self,
        agent: Agent,
        env: gym.Env | gym.vector.VectorEnv,
        buffer: ReplayBuffer,
        *,
        total_steps: int,
        exploration: EpsilonGreedy | None = None,
        learning_starts: int = 1000,
        random_steps: int = 0,
        train_every: int = 1,
        updates_per_step: int = 1,
        batch_size: int = 32,
        eval_every: int = 10_000,
        save_buffer: bool = True,
        clip_reward: bool = False,
        terminal_on_life_loss: bool = False,
        **loop_options: Any,
    ) -> None:
        for name, value in (("total_steps", total_steps), ("train_every", train_every),
                            ("updates_per_step", updates_per_step), ("batch_size", batch_size)):
            if value < 1:
                raise QlearnError(f"{name} must be >= 1, got {value}.")
        if learning_starts < batch_size:
            raise QlearnError(
                f"learning_starts={learning_starts} is smaller than batch_size={batch_size}: "
                "the first update would sample more transitions than the buffer holds. Raise learning_starts."
            )
        super().__init__(agent, eval_every=eval_every, **loop_options)
        check_discount(agent, buffer)
        self.env = as_vector_env(env)  # a plain gym.Env runs as a 1-env vector env
        self.buffer = buffer
        self.exploration = exploration
        self.total_steps = int(total_steps)
        self.learning_starts = int(learning_starts)
        self.random_steps = int(random_steps)
        self.train_every = int(train_every)
        self.updates_per_step = int(updates_per_step)
        self.batch_size = int(batch_size)
        self.save_buffer = save_buffer
        self.clip_reward = clip_reward
        self.terminal_on_life_loss = terminal_on_life_loss
        self._lives: np.ndarray | None = None
        self.num_envs = self.stride = int(self.env.num_envs)
        self._cpu = self.device.type == "cpu"
        self._move_batches = torch.device(getattr(buffer, "device", self.device)) != self.device
        # Counters: everything here is saved in checkpoints.
        self.env_step = 0
        self.episodes = 0
        self.segment = 0  # number of periodic checkpoints so far; seeds the env reset after each
        self.last_return = float("nan")
        self._reset_obs: np.ndarray | None = None

    @property
    def position(self) -> int:
        return self.env_step

    @property
    def budget(self) -> int:
        return self.total_steps

    # ------------------------------------------------------------------ state
    def _extra_state(self) -> dict[str, Any]:
        return {
            "env_step": self.env_step,
            "episodes": self.episodes,
            "segment": self.segment,
            "last_return": self.last_return,
            "exploration": self.exploration.state_dict() if self.exploration is not None else None,
        }

    def _load_extra_state(self, state: dict[str, Any]) -> None:
        self.env_step = int(state["env_step"])
        self.episodes = int(state["episodes"])
        self.segment = int(state["segment"])
        self.last_return = float(state["last_return"])
        if self.exploration is not None and state["exploration"] is not None:
            self.exploration.load_state_dict(state["exploration"])

    def _needs_buffer(self) -> bool:
        return True

    def _buffer_state(self) -> dict[str, Any] | None:
        return self.buffer.state_dict() if self.save_buffer else None

    def _load_buffer_state(self, buffer_state: dict[str, Any] | None, path: Path) -> None:
        if buffer_state is None:
            raise QlearnError(
                f"{path} has no replay buffer saved beside it (trainer.save_buffer was false), "
                "so the run cannot resume exactly. Start a new run, or keep save_buffer=true."
            )
        self.buffer.load_state_dict(buffer_state)

    # ------------------------------------------------------------------ loop
    def _warn_if_no_updates(self) -> None:
        if updates_owed(self.total_steps, self.learning_starts, self.train_every, self.updates_per_step) == 0:
            log.warning("learning_starts=%d with train_every=%d leaves no update within total_steps=%d: "
                        "this run only collects data. Lower trainer.learning_starts or raise total_steps.",
                        self.learning_starts, self.train_every, self.total_steps)

    def _loop(self) -> None:
        """Act, step, store, then train and do periodic work when due (both scheduled, not polled). Acting needs
        no autograd (`_train` and `_periodic` turn it back on): one switch instead of one per act."""
        with torch.no_grad():
            self._collect_and_train()

    def _collect_and_train(self) -> None:
        obs = self._reset_envs()
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
            if self.env_step >= self._next_event:  # logging, evaluation, checkpoints, signals
                with torch.enable_grad():
                    self._periodic()
                if self._reset_obs is not None:  # a checkpoint reset the envs
                    obs, self._reset_obs = self._reset_obs, None

    def stop(self) -> None:
        self.total_steps = self.env_step

    def _after_checkpoint(self) -> None:
        self._reset_obs = self._reset_envs()

    def _periodic_checkpoint(self) -> None:
        self.segment += 1  # saved with the checkpoint, so a resumed run resets envs alike
        self._checkpoint()

    def _schedule_updates(self) -> None:
        """The first env step at which `_train` owes an update (see `updates_owed`)."""
        done_intervals = self.updates_done // self.updates_per_step
        self._next_update_step = self.learning_starts + self.train_every * (done_intervals + 1)

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
        owed = updates_owed(self.env_step, self.learning_starts, self.train_every, self.updates_per_step)
        while self.updates_done < owed:
            batch = self.buffer.sample(self.batch_size)
            if self._move_batches:  # replay kept on CPU while training on a GPU
                batch = batch.to(self.device, non_blocking=True)
            td_error = self._update(batch)
            if td_error is not None and batch.index is not None:
                self.buffer.update_priorities(batch.index, td_error)
        self._schedule_updates()

    def _record_episodes(self, infos: dict[str, Any], done: np.ndarray) -> None:
        for ret, length in episode_stats(infos, done):
            self.episodes += 1
            self.last_return = float(ret)
            self.logger.log_scalars(
                {"rollout/episode_return": float(ret), "rollout/episode_length": float(length)}, self.env_step
            )

    def _rollout_scalars(self) -> dict[str, float]:
        scalars = {"rollout/episodes": float(self.episodes)}
        if self.exploration is not None:
            scalars["rollout/epsilon"] = self.exploration.epsilon(self.env_step)
        return scalars

    def _bar_postfix(self) -> dict[str, str]:
        return {"ret": f"{self.last_return:.1f}"}

    def _results(self) -> dict[str, Any]:
        return {"total_steps": self.env_step, "episodes": self.episodes}


def check_discount(agent: Agent, buffer: Any) -> None:
    """The buffer folds n-step returns with the agent's gamma: take it when the buffer has none, refuse a mismatch."""
    gamma = getattr(agent, "gamma", None)
    if gamma is None or not hasattr(buffer, "gamma"):
        return
    if buffer.gamma is None:
        buffer.gamma = float(gamma)
    elif abs(float(buffer.gamma) - float(gamma)) > 1e-12:
        raise QlearnError(
            f"the replay buffer's gamma ({buffer.gamma}) differs from the agent's ({gamma}): n-step returns would be "
            "discounted with one and bootstrapped with the other. Leave ReplayBuffer(gamma=None) to use the agent's."
        )


__all__ = ["OnlineTrainer", "TrainingInterrupted", "check_discount", "updates_owed"]
