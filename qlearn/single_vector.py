"""One env behind gymnasium's ``VectorEnv`` API, without ``SyncVectorEnv``'s per-step batching cost."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode
from gymnasium.vector.utils import batch_space

from qlearn.errors import QlearnError

def as_vector_env(env: gym.Env | gym.vector.VectorEnv) -> gym.vector.VectorEnv:
    """``env`` as the SAME_STEP vector env qlearn's trainers step: a plain ``gym.Env`` is wrapped in a
    :class:`SingleEnvVector` (with ``RecordEpisodeStatistics`` unless it has one: evaluations read the returns
    from it); a vector env must already reset in the same step (``gymnasium.make_vec(...,
    vector_kwargs={"autoreset_mode": AutoresetMode.SAME_STEP})``), since NEXT_STEP's extra reset step cannot be
    told from a transition afterwards (DESIGN.md, "Always a vector env")."""
    if isinstance(env, gym.vector.VectorEnv):
        mode = env.metadata.get("autoreset_mode")
        if mode not in (AutoresetMode.SAME_STEP, AutoresetMode.SAME_STEP.value):
            raise QlearnError(
                f"this vector env resets in {getattr(mode, 'value', mode) or 'next-step'} mode; qlearn needs "
                "same-step autoreset so that no transition joins an episode's end to the next reset. Make it with "
                "gymnasium.make_vec(id, num_envs, vector_kwargs={'autoreset_mode': "
                "gymnasium.vector.AutoresetMode.SAME_STEP}), or use qlearn.make_env(id, num_envs=...)."
            )
        return env
    if isinstance(env, gym.Env):
        inner: gym.Env = env
        while not isinstance(inner, gym.wrappers.RecordEpisodeStatistics) and isinstance(inner, gym.Wrapper):
            inner = inner.env
        recorded = env if isinstance(inner, gym.wrappers.RecordEpisodeStatistics) else \
            gym.wrappers.RecordEpisodeStatistics(env)
        return SingleEnvVector(lambda: recorded)
    raise TypeError(f"expected a gymnasium.Env or gymnasium.vector.VectorEnv, got {type(env).__name__}")


_FLAGS = (np.zeros(1, dtype=np.bool_), np.ones(1, dtype=np.bool_))  # copied per step: a third of np.array([flag])


def batch_info(info: dict[str, Any]) -> dict[str, Any]:
    """A single env's info as a one-env vector info: every value in a length-1 array with a ``_key`` mask."""
    out: dict[str, Any] = {}
    for key, value in info.items():
        if isinstance(value, dict):
            out[key] = batch_info(value)
        elif isinstance(value, (bool, int, float, np.number, np.bool_)):
            out[key] = np.array([value])
        else:
            out[key] = np.empty(1, dtype=object)
            out[key][0] = value
        out[f"_{key}"] = np.ones(1, dtype=np.bool_)
    return out


class SingleEnvVector(gym.vector.VectorEnv):
    """``num_envs = 1`` in SAME_STEP autoreset with the infos layout of ``SyncVectorEnv``.

    A finished episode is reset inside ``step``; its final observation and info are reported as
    ``infos["final_obs"]`` / ``infos["final_info"]`` with ``_final_obs`` / ``_final_info`` masks,
    as gymnasium 1.x does. ``tests/test_envs.py`` checks it step for step against ``SyncVectorEnv``;
    it exists because the generic wrapper costs more than the CartPole step itself
    (``benchmarks/dqn_step_costs.py``).
    """

    def __init__(self, env_fn: Callable[[], gym.Env]) -> None:
        self.env = env_fn()
        self.envs = [self.env]  # as SyncVectorEnv.envs
        self.num_envs = 1
        self.metadata = {**self.env.metadata, "autoreset_mode": AutoresetMode.SAME_STEP}
        self.render_mode = self.env.render_mode
        self.spec = self.env.spec
        self.single_observation_space = self.env.observation_space
        self.single_action_space = self.env.action_space
        self.observation_space = batch_space(self.single_observation_space, 1)
        self.action_space = batch_space(self.single_action_space, 1)

    def reset(self, *, seed: int | list[int] | None = None, options: dict[str, Any] | None = None
              ) -> tuple[np.ndarray, dict[str, Any]]:
        if isinstance(seed, (list, tuple)):
            seed = seed[0]
        obs, info = self.env.reset(seed=seed, options=options)
        return np.array(obs)[None], batch_info(info)

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(actions[0])
        infos = batch_info(info) if info else {}
        if terminated or truncated:
            final_obs = np.empty(1, dtype=object)
            final_obs[0] = obs
            obs, reset_info = self.env.reset()
            infos = {
                **batch_info(reset_info),
                "final_obs": final_obs,
                "_final_obs": np.ones(1, dtype=np.bool_),
                "final_info": infos,
                "_final_info": np.ones(1, dtype=np.bool_),
            }
        return (np.array(obs)[None], np.array((reward,), dtype=np.float64), _FLAGS[bool(terminated)].copy(),
                _FLAGS[bool(truncated)].copy(), infos)

    def render(self) -> Any:
        return self.env.render()

    def close_extras(self, **kwargs: Any) -> None:
        self.env.close()
