"""What the discrete-action d3rlpy pairs share: CartPole shapes, the batches fed to both sides, parameter lists."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import Tensor, nn

from common import copy_layers, largest_difference, layers
from dqn_cleanrl import qlearn_config

from qlearn import build_agent
from qlearn.types import Batch, EnvSpec

OBS_DIM, NUM_ACTIONS, BATCH = 4, 2, 256  # CartPole; the presets' batch size
CARTPOLE = EnvSpec.from_spaces(gym.spaces.Box(-np.inf, np.inf, (OBS_DIM,), dtype=np.float32),
                               gym.spaces.Discrete(NUM_ACTIONS))


# what every d3rlpy discrete pair sets on qlearn's side for d3rlpy's periodic hard copy, and why no float64 check
HARD_COPY = ["Polyak 0.005 -> hard copy: agent.target_updater.tau=1.0 every=50 (d3rlpy target_update_interval=50 "
             "here; its default 8000 is every=8000)",
             "first copy after update `every` -> after update 1: agent.target_updater.offset=1"]
FLOAT32_ONLY = "d3rlpy casts batches to float32: no float64 check"


def random_actions(obs: Tensor, g: torch.Generator) -> Tensor:
    return torch.randint(NUM_ACTIONS, (obs.shape[0],), generator=g)


def feed_both(agent: nn.Module, algo: object, updates: int,
              behaviour: Callable[[Tensor, torch.Generator], Tensor] = random_actions) -> None:
    """``updates`` random batches (actions from ``behaviour``), each given to qlearn's ``agent.update`` as a
    ``Batch`` and to d3rlpy's ``algo.update`` as the ``TransitionMiniBatch`` it takes (``intervals`` 1, so its
    ``gamma ** intervals`` is gamma)."""
    from d3rlpy.dataset import TransitionMiniBatch

    column = lambda t: t.reshape(-1, 1).numpy().astype(np.float32)  # noqa: E731
    g = torch.Generator().manual_seed(0)
    for _ in range(updates):
        obs, next_obs = torch.randn(BATCH, OBS_DIM, generator=g), torch.randn(BATCH, OBS_DIM, generator=g)
        action = behaviour(obs, g)
        reward = torch.randn(BATCH, generator=g)
        terminated = (torch.rand(BATCH, generator=g) < 0.05).float()
        agent.update(Batch(obs=obs, action=action, reward=reward, next_obs=next_obs, terminated=terminated))
        algo.update(TransitionMiniBatch(  # type: ignore[attr-defined]
            observations=obs.numpy(), actions=column(action), rewards=column(reward),
            next_observations=next_obs.numpy(), next_actions=column(action), terminals=column(terminated),
            intervals=np.ones((BATCH, 1), np.float32), transitions=[]))


def named_pairs(*modules: tuple[str, nn.Module, nn.Module]) -> list[tuple[str, Tensor, Tensor]]:
    """``(name.i, qlearn parameter, d3rlpy parameter)`` for each ``(name, qlearn module, d3rlpy module)``."""
    return [(f"{name}.{i}", a, b) for name, ours, theirs in modules
            for i, (a, b) in enumerate(zip(ours.parameters(), theirs.parameters()))]



def compare_q_learning(algo_config: Any, qlearn_overrides: list[str], updates: int) -> tuple[float, str]:
    """d3rlpy's algorithm built from ``algo_config`` (a ``DoubleDQNConfig``, ``DiscreteCQLConfig``, ...) beside qlearn's
    agent from ``qlearn_overrides``, d3rlpy's Q-function and target given qlearn's weights, both fed the same
    ``updates`` batches: the largest relative parameter difference and where."""
    torch.manual_seed(0)
    algo = algo_config.create(device="cpu:0")
    algo.create_impl((OBS_DIM,), NUM_ACTIONS)
    modules: Any = algo.impl._modules
    q_funcs, targ_q_funcs = modules.q_funcs, modules.targ_q_funcs
    agent = build_agent(qlearn_config(qlearn_overrides).agent, CARTPOLE)
    copy_layers(layers(agent.q), layers(q_funcs))
    copy_layers(layers(agent.q_target), layers(targ_q_funcs))
    feed_both(agent, algo, updates)
    return largest_difference(named_pairs(("q", agent.q, q_funcs), ("q_target", agent.q_target, targ_q_funcs)))
