"""A ``qlearn-train`` run directory loaded back in Python: the trained agent and a factory of its evaluation env.

    run = qlearn.load_run("runs/2026-12-02_dqn_CartPole-v1_seed0")
    env = run.make_env(seed=0)                # the run's env settings (Atari preprocessing, normalisation, ...)
    obs, _ = env.reset(seed=0)
    action = run.agent.predict(obs[0])        # one observation of the 1-env vector env
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from qlearn.agents.base import Agent
from qlearn.checkpoint import latest_checkpoint, load_resume_point
from qlearn.errors import QlearnError
from qlearn.types import EnvSpec


@dataclass
class LoadedRun:
    """What :func:`load_run` returns: the agent, its env factory, and the checkpoint and config they come from."""

    agent: Agent
    checkpoint: Path
    config: dict[str, Any] = field(repr=False)  # the run's resolved config
    observation_normalization: dict[str, list[float]] | None = field(default=None, repr=False)  # offline runs
    skipped: list[tuple[Path, str]] = field(default_factory=list, repr=False)  # damaged newer checkpoints

    def make_env(self, seed: int = 0, **extra: Any) -> gym.vector.VectorEnv:
        """A 1-env vector env with the run's env settings, as the run evaluated on (``extra``: `make_env` options)."""
        from qlearn.cli.build import build_env

        return self.wrap(build_env(self.config["env"], seed, num_envs=1, **extra))

    def wrap(self, env: gym.vector.VectorEnv) -> gym.vector.VectorEnv:
        """``env`` with the observation standardisation the agent trained with (offline runs), else itself."""
        if self.observation_normalization is None:
            return env
        from qlearn.offline import normalize_env_observations

        stats = self.observation_normalization
        return normalize_env_observations(env, np.asarray(stats["mean"]), np.asarray(stats["std"]))


def load_run(run_dir: str | Path, device: str | torch.device | None = None) -> LoadedRun:
    """The agent of ``run_dir``'s newest readable checkpoint (or of a checkpoint file), loaded with
    ``weights_only=True``, and a factory of the env it was evaluated on (observation normalisation included)."""
    from qlearn.cli.build import build_agent  # the run's config is a Hydra config

    path = Path(run_dir).expanduser()
    if not path.exists():
        raise QlearnError(f"{path} does not exist; pass a qlearn-train run directory or one of its checkpoints.")
    if path.is_dir() and latest_checkpoint(path) is None:
        raise QlearnError(f"{path}: no checkpoints/step_*.pt inside; a run writes one when it finishes.")
    device = torch.device(device or "cpu")
    point = load_resume_point(path, map_location=device)
    stored = point.state["config"]
    run = LoadedRun(None, point.path, stored["resolved"], stored.get("observation_normalization"),  # type: ignore[arg-type]
                    list(point.skipped))
    probe = run.make_env()
    try:
        spec = EnvSpec.from_env(probe)
    finally:
        probe.close()
    run.agent = build_agent(run.config["agent"], spec, device)
    run.agent.load_state_dict(point.state["agent"])
    return run
