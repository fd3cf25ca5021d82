"""Exploration: schedules and epsilon-greedy action selection for discrete actions, Gaussian action noise for
deterministic continuous policies (also TD3's target-policy smoothing).

Steps here count *environment steps* (the trainer's counter), unlike agent-side intervals,
which count update calls.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np
import torch


class Schedule(Protocol):
    """Anything with ``value(step) -> float``."""

    def value(self, step: int) -> float: ...


class ConstantSchedule:
    """``value(step) = value`` for every step (e.g. a fixed evaluation epsilon)."""

    def __init__(self, value: float) -> None:
        self._value = float(value)

    def value(self, step: int) -> float:
        return self._value

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._value})"


class LinearSchedule:
    """``start`` until step ``delay``, linear to ``end`` at step ``delay + duration``, then ``end``.

    ``value(t) = start + (end - start) * clip((t - delay) / duration, 0, 1)``. Mnih et al. (2015, Extended
    Data Table 1) anneal epsilon from 1.0 to 0.1 over the first 1M frames; Dopamine's
    ``linearly_decaying_epsilon`` (``jax/agents/dqn/dqn_agent.py``) holds 1.0 for its ``warmup_steps``
    (the agent's ``min_replay_history``) first, which is ``delay``.

    Args:
        start: value until step ``delay`` (and at negative steps).
        end: value from step ``delay + duration`` on.
        duration: length of the ramp in env steps; 0 means ``end`` from step ``delay``.
        delay: env steps before the ramp starts.
    """

    def __init__(self, start: float, end: float, duration: int, delay: int = 0) -> None:
        if duration < 0 or delay < 0:
            raise ValueError(f"duration and delay must be >= 0, got {duration} and {delay}")
        self.start = float(start)
        self.end = float(end)
        self.duration = int(duration)
        self.delay = int(delay)

    def value(self, step: int) -> float:
        step -= self.delay
        if self.duration == 0:
            return self.end if step >= 0 else self.start
        frac = min(max(step, 0) / self.duration, 1.0)
        return self.start + (self.end - self.start) * frac

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(start={self.start}, end={self.end}, "
            f"duration={self.duration}, delay={self.delay})"
        )


class ExponentialSchedule:
    """Exponential decay from ``start`` toward ``end``.

    ``value(t) = end + (start - end) * exp(-t / decay_steps)``: ``decay_steps`` is the time
    constant, after which the gap to ``end`` has shrunk by a factor e (the half-life is
    ``decay_steps * ln 2``). ``end`` is approached but never reached.

    Args:
        start: value at step 0 (and at negative steps).
        end: asymptotic value.
        decay_steps: time constant in env steps, > 0.
    """

    def __init__(self, start: float, end: float, decay_steps: float) -> None:
        if decay_steps <= 0:
            raise ValueError(f"decay_steps must be > 0, got {decay_steps}")
        self.start = float(start)
        self.end = float(end)
        self.decay_steps = float(decay_steps)

    def value(self, step: int) -> float:
        return self.end + (self.start - self.end) * math.exp(-max(step, 0) / self.decay_steps)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(start={self.start}, end={self.end}, "
            f"decay_steps={self.decay_steps})"
        )


class EpsilonGreedy:
    """Epsilon-greedy over ``num_actions`` discrete actions, vectorised over envs.

    Each env independently takes a uniformly random action with probability ``epsilon(step)``
    and the greedy action otherwise (Sutton & Barto, 2018, Sec. 2.2; Mnih et al., 2015,
    Alg. 1). The random draws come from this object's own numpy ``Generator``, whose state is in
    ``state_dict()``, so a resumed run explores exactly as the uninterrupted one would.

    Args:
        schedule: epsilon as a function of the env step (a float means a constant).
        num_actions: number of discrete actions.
        seed: seed of the generator; ``None`` draws fresh entropy.
    """

    def __init__(
        self, schedule: Schedule | float, num_actions: int, seed: int | None = None
    ) -> None:
        if num_actions < 1:
            raise ValueError(f"num_actions must be >= 1, got {num_actions}")
        self.schedule: Schedule = (
            ConstantSchedule(schedule) if isinstance(schedule, (int, float)) else schedule
        )
        self.num_actions = int(num_actions)
        self._rng = np.random.default_rng(seed)

    def epsilon(self, step: int) -> float:
        """Exploration probability at env step ``step``."""
        return float(self.schedule.value(step))

    def select(
        self, step: int, num_envs: int, greedy: Callable[[], np.ndarray | torch.Tensor]
    ) -> np.ndarray:
        """Actions for ``num_envs`` envs at env step ``step``.

        ``greedy()`` must return the ``[E]`` greedy actions; it is called only when at least one
        env exploits, so pure-random phases (epsilon = 1) cost no network forward. Each env uses
        one uniform draw ``u``: it explores when ``u < epsilon`` and then takes action
        ``floor(u / epsilon * A)``, which is uniform over the ``A`` actions because ``u / epsilon``
        is uniform on [0, 1) given ``u < epsilon``. One draw per env per step, whatever happens, so
        the random stream does not depend on the network (and one draw costs half of two).

        Returns:
            ``[E]`` int64 actions.
        """
        if num_envs < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}")
        eps = self.epsilon(step)
        if num_envs == 1:  # scalar fast path: the same draw as `_select_many`, without array ops
            u = self._rng.random()
            if u < eps:
                return np.array([min(int(u / eps * self.num_actions), self.num_actions - 1)], dtype=np.int64)
            return self._validated(greedy(), 1)
        return self._select_many(step, num_envs, greedy)

    def _select_many(self, step: int, num_envs: int, greedy: Callable[[], np.ndarray | torch.Tensor]
                     ) -> np.ndarray:
        eps = self.epsilon(step)
        u = self._rng.random(num_envs)  # [E]
        explore = u < eps  # [E] bool
        if not explore.any():
            return self._validated(greedy(), num_envs)
        scaled = (u / max(eps, np.finfo(np.float64).tiny) * self.num_actions).astype(np.int64)
        random_actions = np.minimum(scaled, self.num_actions - 1)  # [E]; rounding never gives A
        if explore.all():
            return random_actions
        chosen = self._validated(greedy(), num_envs)
        return np.where(explore, random_actions, chosen)  # [E]

    @staticmethod
    def _validated(chosen: np.ndarray | torch.Tensor, num_envs: int) -> np.ndarray:
        if isinstance(chosen, torch.Tensor):
            chosen = chosen.detach().cpu().numpy()
        if chosen.dtype != np.int64 or chosen.shape != (num_envs,):  # the agents' own output skips this
            chosen = np.asarray(chosen, dtype=np.int64).reshape(-1)  # [E]
            if chosen.shape != (num_envs,):
                raise ValueError(f"greedy() returned {chosen.shape[0]} actions for {num_envs} envs")
        return chosen

    def state_dict(self) -> dict[str, Any]:
        """Generator state as plain Python types (loads with ``torch.load(weights_only=True)``)."""
        return {"rng": self._rng.bit_generator.state}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._rng.bit_generator.state = state["rng"]

    def __repr__(self) -> str:
        return f"{type(self).__name__}(schedule={self.schedule!r}, num_actions={self.num_actions})"


class GaussianActionNoise:
    """``clip(a + scale * clip(sigma * xi, -noise_clip, noise_clip), low, high)``, ``xi ~ N(0, I)``.

    Exploration noise of TD3 and DDPG (``noise_clip=None``; Fujimoto et al., 2018, Sec. 6.1: sigma 0.1) and
    TD3's target-policy smoothing (Eq. 15: sigma 0.2 clipped to 0.5). ``sigma`` and ``noise_clip`` are in units
    of the action box's half-width ``scale``, as the TD3 code's ``max_action * sigma`` on symmetric boxes and
    CleanRL's ``action_scale * sigma``; the noisy action is clipped back into ``[low, high]``. ``sigma = 0``
    returns ``a`` unchanged and draws nothing. The draws come from ``generator`` (``None``: the global one).
    """

    def __init__(self, sigma: float, noise_clip: float | None = None) -> None:
        if sigma < 0:
            raise ValueError(f"sigma must be >= 0, got {sigma}")
        if noise_clip is not None and noise_clip <= 0:
            raise ValueError(f"noise_clip must be > 0 or null (no clipping), got {noise_clip}")
        self.sigma = float(sigma)
        self.noise_clip = None if noise_clip is None else float(noise_clip)

    def __call__(
        self,
        action: torch.Tensor,
        scale: torch.Tensor,
        low: torch.Tensor,
        high: torch.Tensor,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """The noisy actions ``[B, A]`` for ``action`` ``[B, A]``; ``scale``, ``low``, ``high`` are ``[A]``."""
        if self.sigma == 0.0:
            return action
        noise = self.sigma * torch.randn(action.shape, generator=generator, device=action.device, dtype=action.dtype)
        if self.noise_clip is not None:
            noise = noise.clamp(-self.noise_clip, self.noise_clip)
        return torch.maximum(torch.minimum(action + scale * noise, high), low)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(sigma={self.sigma}, noise_clip={self.noise_clip})"
