"""Offline-to-online fine-tuning: an `OfflineTrainer` phase, then an `OnlineTrainer` phase on the same agent."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gymnasium as gym

from qlearn.agents.base import Agent
from qlearn.buffers import ReplayBuffer
from qlearn.checkpoint import latest_checkpoint
from qlearn.errors import QlearnError
from qlearn.logging import Logger
from qlearn.trainers.offline import Dataset, OfflineTrainer
from qlearn.trainers.online import OnlineTrainer

OFFLINE_PHASE_DIR = "offline"  # the offline phase's run directory, inside the run's


class FinetuneTrainer:
    """``offline_updates`` updates on ``dataset`` (in ``<run_dir>/offline``), then the dataset becomes the start
    of the replay buffer and training goes on online for ``total_steps`` env steps (IQL fine-tuning, Kostrikov
    et al., 2022, Sec. 5.3).

    Both phases share the agent, the evaluation env and settings, the scores, seed and config; the online phase
    takes every `OnlineTrainer` option. A resumed run continues whichever phase it was in: the online phase's
    checkpoints hold everything, the offline phase's are in ``<run_dir>/offline``.

    Args:
        dataset: the offline data, with ``to_replay_buffer(buffer)`` (``qlearn.offline.OfflineDataset``).
        offline_updates: gradient steps of the offline phase.
        offline_logger: the offline phase's logger (default: none).
    """

    forwards_options_to = OnlineTrainer.__mro__  # its other options are the online phase's

    def __init__(
        self,
        agent: Agent,
        env: gym.vector.VectorEnv,
        buffer: ReplayBuffer,
        dataset: Dataset,
        *,
        offline_updates: int,
        offline_logger: Logger | None = None,
        **online_options: Any,
    ) -> None:
        if int(env.num_envs) != 1:
            raise QlearnError("fine-tuning continues the dataset's single stream in the replay buffer: use one env "
                              "(env.num_envs=1).")
        self.online = OnlineTrainer(agent, env, buffer, **online_options)
        run_dir = self.online.run_dir
        self.offline = OfflineTrainer(
            agent, dataset, total_updates=offline_updates, batch_size=self.online.batch_size,
            eval_env=self.online.eval_env, eval_every=self.online.eval_every, eval_episodes=self.online.eval_episodes,
            scores=self.online.scores, logger=offline_logger, run_dir=None if run_dir is None else run_dir / OFFLINE_PHASE_DIR,
            checkpoint_every=self.online.checkpoint_every, seed=self.online.seed, progress=self.online.progress,
            config=self.online.config,
        )
        self.dataset = dataset
        self._online_started = False

    def __getattr__(self, name: str) -> Any:  # env, buffer, agent, eval_env, config, ... are the online phase's
        if name in ("online", "offline"):
            raise AttributeError(name)
        return getattr(self.online, name)

    def resume_from(self, checkpoint: str | Path | None = None) -> Path:
        """Continue the online phase if it had started (its checkpoint holds everything), else the offline one."""
        run_dir = Path(checkpoint) if checkpoint is not None else self.online.run_dir
        if run_dir is not None and latest_checkpoint(run_dir) is not None:
            self._online_started = True
            return self.online.resume_from(run_dir)
        return self.offline.resume_from()

    def run(self) -> dict[str, Any]:
        if not self._online_started:
            offline_dir = self.offline.run_dir
            if self.offline.updates_done == 0 and offline_dir is not None and latest_checkpoint(offline_dir):
                self.offline.resume_from()
            if self.offline.updates_done < self.offline.total_updates:
                self.offline.run()
            self.dataset.to_replay_buffer(self.online.buffer)  # type: ignore[attr-defined]
            self._online_started = True
        return self.online.run()
