"""qlearn: value-based deep reinforcement learning from small, swappable blocks.

Research code imports agents and blocks from here, e.g. ``from qlearn import DQN, ReplayBuffer``.
Names resolve lazily, so ``import qlearn.types`` stays light; Hydra is only needed by ``qlearn.cli``.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "Agent": "qlearn.agents",
    "DQN": "qlearn.agents",
    "REDQ": "qlearn.agents",
    "IQL": "qlearn.agents",
    "BC": "qlearn.agents",
    "TD3": "qlearn.agents",
    "build_agent": "qlearn.agents.saving",
    "load_run": "qlearn.runs",
    "LoadedRun": "qlearn.runs",
    "QEnsemble": "qlearn.networks",
    "TanhGaussianActor": "qlearn.networks",
    "DeterministicActor": "qlearn.networks",
    "Batch": "qlearn.types",
    "EnvSpec": "qlearn.types",
    "ReplayBuffer": "qlearn.buffers",
    "UniformSampler": "qlearn.buffers",
    "PrioritizedSampler": "qlearn.buffers",
    "AtariOptions": "qlearn.envs",
    "make_env": "qlearn.envs",
    "make_single_env": "qlearn.envs",
    "EpsilonGreedy": "qlearn.exploration",
    "LinearSchedule": "qlearn.exploration",
    "ExponentialSchedule": "qlearn.exploration",
    "GaussianActionNoise": "qlearn.exploration",
    "td_loss": "qlearn.losses.td",
    "build_q_network": "qlearn.networks.q",
    "GreedyNextValue": "qlearn.targets",
    "DoubleQNextValue": "qlearn.targets",
    "SmoothedMinNextValue": "qlearn.targets",
    "td_target": "qlearn.targets",
    "OnlineTrainer": "qlearn.trainers",
    "OfflineTrainer": "qlearn.trainers",
    "FinetuneTrainer": "qlearn.trainers",
    "OfflineDataset": "qlearn.offline",
    "evaluate": "qlearn.trainers",
    "PolyakUpdate": "qlearn.updaters",
    "make_target": "qlearn.updaters",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'qlearn' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
