"""Shared data types: the `Batch` every buffer returns and the `EnvSpec` agents are built from."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import Tensor

Metrics = dict[str, Tensor]


@dataclass(frozen=True)
class Batch:
    """A minibatch of transitions (s, a, r, s', terminated).

    Shapes: ``obs``/``next_obs`` ``[B, *obs_shape]``; ``action`` ``[B]`` int64 (discrete)
    or ``[B, act_dim]`` float32; ``reward``, ``terminated`` ``[B]`` float32.

    ``terminated`` is 1.0 only for true terminal states. A time-limit truncation is *not*
    terminal: the target still bootstraps from ``next_obs`` (Pardo et al., 2018,
    "Time Limits in Reinforcement Learning").

    ``discount`` ``[B]`` is the factor in front of the bootstrapped value, gamma**k for a
    k-step return; ``None`` means the agent's own gamma (one-step transitions).
    ``weight`` ``[B]`` holds importance-sampling weights (prioritized replay) and
    ``index`` ``[B]`` the buffer slots they came from, for priority updates.
    """

    obs: Tensor
    action: Tensor
    reward: Tensor
    next_obs: Tensor
    terminated: Tensor
    discount: Tensor | None = None
    weight: Tensor | None = None
    index: Tensor | None = None

    def __len__(self) -> int:
        return self.reward.shape[0]

    def to(self, device: torch.device | str, non_blocking: bool = False) -> Batch:
        """The same batch with every tensor on ``device`` (``None`` fields stay ``None``)."""
        moved = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value is not None:
                moved[f.name] = value.to(device, non_blocking=non_blocking)
        return replace(self, **moved)


@dataclass(frozen=True)
class EnvSpec:
    """What an agent needs to know about an environment to build its networks.

    ``num_actions`` is set for discrete action spaces and ``None`` otherwise;
    ``action_low``/``action_high`` are set for continuous (Box) action spaces.
    """

    obs_shape: tuple[int, ...]
    obs_dtype: str
    action_shape: tuple[int, ...]
    num_actions: int | None = None
    action_low: tuple[float, ...] | None = None
    action_high: tuple[float, ...] | None = None

    @property
    def discrete(self) -> bool:
        return self.num_actions is not None

    @classmethod
    def from_spaces(cls, observation_space: gym.Space, action_space: gym.Space) -> EnvSpec:
        """Build a spec from single-env observation and action spaces."""
        if not isinstance(observation_space, gym.spaces.Box):
            raise TypeError(
                f"qlearn needs a Box observation space, got {observation_space}; "
                "wrap the env (e.g. gymnasium.wrappers.FlattenObservation) first."
            )
        obs_shape = tuple(int(d) for d in observation_space.shape)
        obs_dtype = np.dtype(observation_space.dtype).name
        if isinstance(action_space, gym.spaces.Discrete):
            return cls(obs_shape, obs_dtype, (), num_actions=int(action_space.n))
        if isinstance(action_space, gym.spaces.Box):
            return cls(
                obs_shape,
                obs_dtype,
                tuple(int(d) for d in action_space.shape),
                action_low=tuple(float(x) for x in np.ravel(action_space.low)),
                action_high=tuple(float(x) for x in np.ravel(action_space.high)),
            )
        raise TypeError(f"unsupported action space {action_space}: use Discrete or Box.")

    @classmethod
    def from_env(cls, env: gym.Env | gym.vector.VectorEnv) -> EnvSpec:
        """Spec of a single env, or of one sub-env of a vector env."""
        if isinstance(env, gym.vector.VectorEnv):
            return cls.from_spaces(env.single_observation_space, env.single_action_space)
        return cls.from_spaces(env.observation_space, env.action_space)

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}
