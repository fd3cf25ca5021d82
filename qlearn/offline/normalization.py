"""The dataset's observation normalisation applied to an env, so a policy trained offline sees the same inputs."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector.utils import batch_space

__all__ = ["NormalizeVectorObservation", "normalize_env_observations"]


class NormalizeVectorObservation(gym.vector.VectorWrapper):
    """Vector env wrapper: obs <- (obs - mean) / std, also for ``infos["final_obs"]`` (SAME_STEP autoreset).

    gymnasium 1.4's ``TransformObservation`` vector wrapper refuses SAME_STEP autoreset envs (the mode qlearn
    uses, see `qlearn.envs`) and would leave the final observations in ``infos`` untransformed, hence this wrapper.
    """

    def __init__(self, env: gym.vector.VectorEnv, mean: np.ndarray, std: np.ndarray) -> None:
        super().__init__(env)
        shape = env.single_observation_space.shape
        self.mean = np.asarray(mean, dtype=np.float32).reshape(shape)
        self.std = np.asarray(std, dtype=np.float32).reshape(shape)
        self.single_observation_space = gym.spaces.Box(-np.inf, np.inf, shape, np.float32)
        self.observation_space = batch_space(self.single_observation_space, env.num_envs)

    def _transform(self, obs: np.ndarray) -> np.ndarray:
        return ((np.asarray(obs, dtype=np.float32) - self.mean) / self.std).astype(np.float32)

    def reset(self, **kwargs: Any) -> tuple[np.ndarray, dict[str, Any]]:
        obs, infos = self.env.reset(**kwargs)
        return self._transform(obs), infos

    def step(self, actions: Any) -> tuple[np.ndarray, Any, Any, Any, dict[str, Any]]:
        obs, rewards, terminated, truncated, infos = self.env.step(actions)
        if "final_obs" in infos:
            final = np.array(infos["final_obs"], copy=True)  # object array of per-env obs (None where not done)
            for i in np.flatnonzero(infos.get("_final_obs", np.zeros(len(final), dtype=bool))):
                final[i] = self._transform(final[i])
            infos = {**infos, "final_obs": final}
        return self._transform(obs), rewards, terminated, truncated, infos


def normalize_env_observations(
    env: gym.vector.VectorEnv, mean: np.ndarray, std: np.ndarray
) -> NormalizeVectorObservation:
    """Wrap a vector env so its observations are standardised like the dataset's
    (the ``(mean, std)`` returned by `OfflineDataset.normalize_observations`)."""
    return NormalizeVectorObservation(env, mean, std)
