"""The switches the lockstep pairs set to select a reference's behaviour (benchmarks/lockstep/): each changes the
update the way its docstring says, and the default keeps qlearn's behaviour."""

from __future__ import annotations

import copy
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch

from qlearn.agents import BC, IQL
from qlearn.types import Batch, EnvSpec
from qlearn.updaters import PolyakUpdate


def continuous_spec(obs_dim: int = 3, action_dim: int = 2) -> EnvSpec:
    return EnvSpec.from_spaces(gym.spaces.Box(-np.inf, np.inf, (obs_dim,), dtype=np.float32),
                               gym.spaces.Box(-1.0, 1.0, (action_dim,), dtype=np.float32))


def continuous_batch(n: int = 16, obs_dim: int = 3, action_dim: int = 2, seed: int = 0) -> Batch:
    g = torch.Generator().manual_seed(seed)
    return Batch(obs=torch.randn(n, obs_dim, generator=g), action=torch.rand(n, action_dim, generator=g) * 2 - 1,
                 reward=torch.randn(n, generator=g), next_obs=torch.randn(n, obs_dim, generator=g),
                 terminated=torch.zeros(n))


def sgd(lr: float) -> Any:
    return lambda params: torch.optim.SGD(params, lr=lr)


def iql(value_lr: float, **kwargs: Any) -> IQL:
    torch.manual_seed(0)
    net = {"hidden_sizes": [16, 16]}
    agent = IQL.from_spec(continuous_spec(), network=net, actor_lr_decay_steps=None, **kwargs)
    agent.optimizers["value"] = sgd(value_lr)(agent.value.parameters())
    return agent


def flat(module: torch.nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in module.parameters()])


def test_iql_value_before_step_uses_the_value_net_as_it_was_before_its_step() -> None:
    batch = continuous_batch()
    before = iql(1.0, value_before_step=True)   # CORL: advantage and V(s') from V before its step
    after = iql(1.0)                            # the authors' order (default): from the stepped V
    frozen = iql(0.0)                           # V never moves, so "after" is "before"
    for agent in (before, after, frozen):
        agent.update(batch)
    for part in ("critic", "actor"):
        assert torch.equal(flat(getattr(before, part)), flat(getattr(frozen, part))), part
        assert not torch.allclose(flat(getattr(before, part)), flat(getattr(after, part))), part
    assert not torch.equal(flat(before.value), flat(frozen.value))


def test_iql_critic_loss_mean_halves_the_two_critics_gradient() -> None:
    batch = continuous_batch()
    mean = iql(0.1, critic_loss_reduction="mean")
    total = iql(0.1)
    mean.optimizers["critic"] = sgd(0.2)(mean.critic.parameters())
    total.optimizers["critic"] = sgd(0.1)(total.critic.parameters())
    start = flat(mean.critic)
    mean.update(batch)
    total.update(batch)
    assert torch.allclose(flat(mean.critic), flat(total.critic), atol=1e-7)
    assert not torch.allclose(flat(mean.critic), start)
    plain = iql(0.1, critic_loss_reduction="mean")  # the same step size as the sum: a different update
    plain.optimizers["critic"] = sgd(0.1)(plain.critic.parameters())
    plain.update(batch)
    assert not torch.allclose(flat(plain.critic), flat(total.critic), atol=1e-7)


def test_bc_mse_regresses_the_mean_action_and_leaves_the_std() -> None:
    batch = continuous_batch()
    torch.manual_seed(0)
    agent = BC.from_spec(continuous_spec(), network={"hidden_sizes": [16, 16]}, loss="mse")
    agent.optimizers["actor"] = sgd(0.1)(agent.actor.parameters())
    expected = copy.deepcopy(agent.actor)
    mean, _ = expected.distribution(batch.obs)
    torch.nn.functional.mse_loss(mean, batch.action).backward()
    with torch.no_grad():
        for p in expected.parameters():
            if p.grad is not None:
                p -= 0.1 * p.grad
    log_std = agent.actor.log_std.detach().clone()
    agent.update(batch)
    assert torch.allclose(flat(agent.actor), flat(expected), atol=1e-7)
    assert torch.equal(agent.actor.log_std, log_std)
    default = BC.from_spec(continuous_spec(), network={"hidden_sizes": [16, 16]})
    default.update(batch)
    assert default.actor.log_std.grad is not None  # the likelihood trains the std


def test_bc_mse_refuses_a_discrete_actor() -> None:
    spec = EnvSpec.from_spaces(gym.spaces.Box(-1.0, 1.0, (3,), dtype=np.float32), gym.spaces.Discrete(2))
    with pytest.raises(ValueError, match="mse"):
        BC.from_spec(spec, network={"hidden_sizes": [8]}, loss="mse")


def test_polyak_offset_moves_the_first_copy_to_the_first_update() -> None:
    def copied_at(updater: PolyakUpdate) -> list[int]:
        online, target = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)
        steps = []
        for step in range(1, 9):
            with torch.no_grad():
                online.weight.add_(1.0)
            updater(online, target, step)
            if torch.equal(online.weight, target.weight):
                steps.append(step)
        return steps

    assert copied_at(PolyakUpdate(1.0, every=3)) == [3, 6]
    assert copied_at(PolyakUpdate(1.0, every=3, offset=1)) == [1, 4, 7]  # d3rlpy's target_update_interval
    with pytest.raises(ValueError, match="offset"):
        PolyakUpdate(1.0, every=3, offset=3)
