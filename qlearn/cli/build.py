"""Build envs, agents, buffers and loggers from a (resolved) Hydra config."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gymnasium as gym
import torch
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from qlearn.agents.base import Agent
from qlearn.envs import make_env
from qlearn.errors import QlearnError
from qlearn.logging import CSVLogger, Logger, MultiLogger, NullLogger, TensorBoardLogger
from qlearn.types import EnvSpec

# The Hydra tree: qlearn/configs links to the top-level configs/ in a checkout and is a copy in a wheel.
CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"

_ENV_TRAINER_KEYS = ("id", "clip_reward", "terminal_on_life_loss")


def _total_updates(*, _root_: DictConfig) -> int:
    """Gradient updates a run will make: (total_steps - learning_starts) // train_every * updates_per_step."""
    t = _root_.trainer
    return max(1, (int(_root_.total_steps) - int(t.learning_starts)) // int(t.train_every) * int(t.updates_per_step))


def _by_env(env_id: str, table: Any, default: Any = None) -> Any:
    """The entry of ``table`` for ``env_id``'s name without version (``Hopper-v5`` -> ``Hopper``), else ``default``."""
    return table.get(str(env_id).split("/")[-1].split("-v")[0], default)


def _run_label(env_id: Any, dataset_path: Any = None) -> str:
    """The env id for run-directory names; offline presets leave it null until the dataset is read,
    so they are named after the dataset file (``Hopper-v5-medium-replay``)."""
    if env_id is not None:
        return str(env_id).replace("/", "_")
    return Path(str(dataset_path)).stem if dataset_path is not None else "dataset"


def register_resolvers() -> None:
    """``${qlearn.mul_int:a,b}`` = int(a*b), ``${qlearn.total_updates:}`` for schedule lengths, and
    ``${qlearn.by_env:${env.id},{Hopper: 0.1, Ant: 0.2},default}`` for per-env settings."""
    if not OmegaConf.has_resolver("qlearn.mul_int"):
        OmegaConf.register_new_resolver("qlearn.mul_int", lambda a, b: int(float(a) * float(b)))
    if not OmegaConf.has_resolver("qlearn.total_updates"):
        OmegaConf.register_new_resolver("qlearn.total_updates", _total_updates)
    if not OmegaConf.has_resolver("qlearn.by_env"):
        OmegaConf.register_new_resolver("qlearn.by_env", _by_env)
    if not OmegaConf.has_resolver("qlearn.run_label"):
        OmegaConf.register_new_resolver("qlearn.run_label", _run_label)


def env_options(env_cfg: Any) -> dict[str, Any]:
    options = dict(env_cfg)
    for key in _ENV_TRAINER_KEYS:
        options.pop(key, None)
    return options


def build_env(env_cfg: Any, seed: int, num_envs: int | None = None, **extra: Any) -> gym.vector.VectorEnv:
    options = env_options(env_cfg)
    if num_envs is not None:
        options["num_envs"] = num_envs
    options.update(extra)
    return make_env(env_cfg["id"], seed=seed, **options)


def build_agent(agent_cfg: Any, spec: EnvSpec, device: torch.device) -> Agent:
    try:
        # Built as a partial and then called, so the EnvSpec reaches from_spec as itself, not as a dict.
        factory = instantiate(agent_cfg, _partial_=True, _convert_="all")
    except InstantiationException as exc:
        raise QlearnError(f"could not build the agent from its config: {exc}") from exc
    return factory(spec=spec).to(device)


def build_logger(logger_cfg: Any, run_dir: Path) -> Logger:
    loggers: list[Logger] = []
    if logger_cfg.get("tensorboard", False):
        loggers.append(TensorBoardLogger(run_dir))
    if logger_cfg.get("csv", False):
        loggers.append(CSVLogger(run_dir))
    if not loggers:
        return NullLogger()
    return loggers[0] if len(loggers) == 1 else MultiLogger(*loggers)
