"""Building D4RL-protocol datasets: rollouts of a policy, a log of an online run's replay, policy snapshots.

D4RL's MuJoCo datasets (Fu et al., 2020; ``scripts/generation/mujoco/collect_data.py``) are 1M-step
rollouts of a uniformly random policy (``random``), of a SAC policy stopped early at about a third of
the expert's return (``medium``) and of the fully trained one (``expert``), the replay buffer of the
medium run (``medium-replay``) and medium + expert concatenated (``medium-expert``). Behaviour actions
are *sampled* from the stochastic policy, not its mean. :mod:`qlearn.cli.collect` follows that recipe
with qlearn's own agents; this module holds the pieces.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from qlearn.envs import episode_stats, final_next_obs

KINDS = ("random", "medium", "medium-replay", "expert", "medium-expert")
ARRAY_KEYS = ("observations", "actions", "rewards", "next_observations", "terminals", "timeouts")

Policy = Callable[[np.ndarray], np.ndarray]


def rollout(env: gym.vector.VectorEnv, policy: Policy, num_transitions: int, seed: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Run ``policy`` (``obs [1, ...] -> action [1, ...]``) for ``num_transitions`` steps of a 1-env vector env.

    Returns flat D4RL arrays (``terminals`` = true terminations, ``timeouts`` = time-limit truncations;
    the last row is marked a timeout when its episode is unfinished, so every episode ends) and the
    returns of the episodes that finished.
    """
    if env.num_envs != 1:
        raise ValueError(f"rollout records one env stream; got a vector env of {env.num_envs}")
    rows: dict[str, list[np.ndarray]] = {k: [] for k in ARRAY_KEYS}
    returns: list[float] = []
    obs, _ = env.reset(seed=seed)
    env.action_space.seed(seed)
    for _ in range(int(num_transitions)):
        action = policy(obs)
        next_obs, reward, terminated, truncated, infos = env.step(action)
        done = terminated | truncated
        real_next = final_next_obs(next_obs, infos, done) if done.any() else next_obs
        for key, value in zip(ARRAY_KEYS, (obs, action, reward, real_next, terminated, truncated)):
            rows[key].append(np.asarray(value)[0])
        if done.any():
            returns.extend(ret for ret, _ in episode_stats(infos, done))
        obs = next_obs
    arrays = {k: np.stack(v) for k, v in rows.items()}
    if not (arrays["terminals"][-1] or arrays["timeouts"][-1]):
        arrays["timeouts"][-1] = True  # the budget cut the last episode: a truncation
    return arrays, np.asarray(returns, dtype=np.float64)


def agent_policy(agent: Any, epsilon: float = 0.0, seed: int = 0) -> Policy:
    """Sampled actions of ``agent`` (``act(obs, deterministic=False)``); with ``epsilon`` > 0 (discrete
    actions) a uniformly random action replaces it with that probability."""
    rng = np.random.default_rng(seed)
    device = agent.device

    def policy(obs: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            action = agent.act(torch.as_tensor(obs, device=device), deterministic=False).cpu().numpy()
        if epsilon > 0.0:
            num_actions = getattr(agent, "num_actions", None)
            if num_actions is None:
                raise ValueError("epsilon > 0 needs a discrete-action agent")
            explore = rng.random(action.shape[0]) < epsilon
            action = np.where(explore, rng.integers(num_actions, size=action.shape[0]), action)
        return action

    return policy


def random_policy(env: gym.vector.VectorEnv) -> Policy:
    """Uniform actions from the env's action space (D4RL ``--random``)."""
    return lambda obs: env.action_space.sample()


def concatenate(*parts: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Datasets one after another (D4RL's medium-expert is medium then expert)."""
    return {k: np.concatenate([p[k] for p in parts]) for k in ARRAY_KEYS}


class TransitionLog:
    """Wraps a replay buffer and keeps every transition added to it, in order (one env stream).

    Anything else (``sample``, ``state_dict``, ...) goes to the wrapped buffer, so an
    :class:`~qlearn.trainers.OnlineTrainer` trains as usual while the log becomes medium-replay.
    """

    def __init__(self, buffer: Any) -> None:
        self.buffer = buffer
        self.rows: dict[str, list[np.ndarray]] = {k: [] for k in ARRAY_KEYS}

    def add(self, obs: np.ndarray, action: np.ndarray, reward: np.ndarray, next_obs: np.ndarray,
            terminated: np.ndarray, truncated: np.ndarray, **kwargs: Any) -> Any:
        if np.asarray(obs).shape[0] != 1:
            raise ValueError("TransitionLog records one env stream: run the behaviour policy with env.num_envs=1")
        for key, value in zip(ARRAY_KEYS, (obs, action, reward, next_obs, terminated, truncated)):
            self.rows[key].append(np.array(value)[0])
        return self.buffer.add(obs, action, reward, next_obs, terminated, truncated, **kwargs)

    def arrays(self, first: int) -> dict[str, np.ndarray]:
        """The first ``first`` transitions as flat D4RL arrays (the last one ends its episode as a timeout)."""
        arrays = {k: np.stack(v[:first]) for k, v in self.rows.items()}
        if not (arrays["terminals"][-1] or arrays["timeouts"][-1]):
            arrays["timeouts"][-1] = True
        return arrays

    def __len__(self) -> int:
        return len(self.rows["rewards"])

    def __getattr__(self, name: str) -> Any:
        return getattr(self.buffer, name)


@dataclass
class Snapshot:
    """An evaluated policy during behaviour training: env step, greedy eval return, agent weights (on CPU)."""

    env_step: int
    eval_return: float
    state: dict[str, Any]


class SnapshotRecorder:
    """An ``on_evaluation`` callback of the online trainer that keeps a copy of the agent at each evaluation.

    Args:
        stop_at: if set, stop the trainer at the first evaluation whose return reaches it (the
            medium level is known in advance when the expert return is a reference number).
    """

    def __init__(self, stop_at: float | None = None) -> None:
        self.snapshots: list[Snapshot] = []
        self.stop_at = stop_at

    def __call__(self, trainer: Any, result: dict[str, Any]) -> None:
        state = {k: (v.detach().to("cpu", copy=True) if isinstance(v, torch.Tensor) else copy.deepcopy(v))
                 for k, v in trainer.agent.state_dict().items()}
        self.snapshots.append(Snapshot(int(trainer.env_step), float(result["mean"]), state))
        if self.stop_at is not None and float(result["mean"]) >= self.stop_at:
            trainer.stop()

    def first_reaching(self, threshold: float) -> Snapshot | None:
        """The earliest snapshot whose eval return is at least ``threshold``."""
        return next((s for s in self.snapshots if s.eval_return >= threshold), None)
