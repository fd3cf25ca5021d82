"""Greedy evaluation on a separate environment instance."""

from __future__ import annotations

from collections.abc import Callable

import gymnasium as gym
import numpy as np
import torch

from qlearn.agents.base import Agent
from qlearn.errors import QlearnError
from qlearn.single_vector import as_vector_env
from qlearn.envs import episode_stats


def evaluate(
    agent: Agent,
    env: gym.Env | gym.vector.VectorEnv,
    episodes: int,
    *,
    seed: int,
    epsilon: float = 0.0,
    on_episode: Callable[[list[float]], None] | None = None,
) -> dict[str, float | int | list[float]]:
    """Run ``episodes`` full episodes with the agent's deterministic policy and report raw returns.

    ``epsilon`` > 0 takes a uniformly random action with that probability (discrete actions only;
    the Nature DQN protocol evaluates with epsilon 0.05, Mnih et al., 2015, Methods). The env is
    reset with ``seed`` every call, so successive evaluations see the same start states. ``on_episode``, if
    given, is called with the returns so far each time episodes end (for progress reports on long evaluations).
    Returns ``{"mean", "std", "episodes", "returns", "lengths"}`` with the raw (unclipped) game score.
    """
    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    env = as_vector_env(env)  # a plain gym.Env too
    was_training = agent.training
    agent.train(False)
    rng = np.random.default_rng(seed)
    device = agent.device
    returns: list[float] = []
    lengths: list[int] = []
    obs, _ = env.reset(seed=seed)
    try:
        while len(returns) < episodes:
            with torch.inference_mode():
                action = agent.act(torch.as_tensor(obs, device=device), deterministic=True).cpu().numpy()
            if epsilon > 0.0:
                explore = rng.random(action.shape[0]) < epsilon
                if explore.any():
                    n = int(env.single_action_space.n)  # type: ignore[attr-defined]
                    action = np.where(explore, rng.integers(n, size=action.shape[0]), action)
            obs, _, terminated, truncated, infos = env.step(action)
            done = terminated | truncated
            if done.any():
                finished = episode_stats(infos, done)
                if not finished:
                    raise QlearnError(
                        "an episode ended without its return in infos['final_info']['episode']: wrap each sub-env "
                        "in gymnasium.wrappers.RecordEpisodeStatistics (make_vec(..., wrappers=[...])), or build "
                        "the env with qlearn.make_env.")
                for ret, length in finished:
                    returns.append(float(ret))
                    lengths.append(int(length))
                if on_episode is not None:
                    on_episode(returns[:episodes])
    finally:
        agent.train(was_training)
    returns = returns[:episodes]
    lengths = lengths[:episodes]
    return {
        "mean": float(np.mean(returns)),
        "std": float(np.std(returns)),
        "episodes": len(returns),
        "returns": returns,
        "lengths": lengths,
    }
