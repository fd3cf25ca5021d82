"""DQN agent: input checks, update mechanics, state round trip, and Q* on a tiny chain MDP."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from torch import nn

from qlearn.agents import DQN
from qlearn.errors import QlearnError
from qlearn.targets import DoubleQNextValue, GreedyNextValue
from qlearn.types import Batch, EnvSpec
from qlearn.updaters import PolyakUpdate

CARTPOLE = EnvSpec(obs_shape=(4,), obs_dtype="float32", action_shape=(), num_actions=2)


def random_batch(batch_size: int = 16, obs_dim: int = 4, num_actions: int = 2, seed: int = 0) -> Batch:
    g = torch.Generator().manual_seed(seed)
    return Batch(
        obs=torch.randn(batch_size, obs_dim, generator=g),
        action=torch.randint(num_actions, (batch_size,), generator=g),
        reward=torch.randn(batch_size, generator=g),
        next_obs=torch.randn(batch_size, obs_dim, generator=g),
        terminated=(torch.rand(batch_size, generator=g) < 0.2).float(),
    )


def test_continuous_action_space_is_refused_with_a_clear_message() -> None:
    spec = EnvSpec(obs_shape=(3,), obs_dtype="float32", action_shape=(1,), action_low=(-2.0,), action_high=(2.0,))
    with pytest.raises(QlearnError, match="discrete action space"):
        DQN.from_spec(spec)


def test_update_moves_online_net_and_target_only_on_schedule() -> None:
    torch.manual_seed(0)
    agent = DQN.from_spec(CARTPOLE, target_updater=PolyakUpdate(tau=1.0, every=3))
    target_before = [p.clone() for p in agent.q_target.parameters()]
    online_before = [p.clone() for p in agent.q.parameters()]
    for step in range(1, 4):
        metrics = agent.update(random_batch(seed=step))
        assert all(torch.isfinite(v).all() for v in metrics.values())
        target_now = list(agent.q_target.parameters())
        if step < 3:
            assert all(torch.equal(a, b) for a, b in zip(target_before, target_now))
    assert all(not torch.equal(a, b) for a, b in zip(online_before, agent.q.parameters()))
    assert all(torch.equal(a, b) for a, b in zip(agent.q.parameters(), agent.q_target.parameters()))
    assert agent.num_updates == 3


def test_state_dict_round_trip_gives_identical_actions_and_next_update() -> None:
    torch.manual_seed(0)
    agent = DQN.from_spec(CARTPOLE)
    for step in range(5):
        agent.update(random_batch(seed=step))
    buffer = io.BytesIO()
    torch.save(agent.state_dict(), buffer)
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)
    torch.manual_seed(123)
    clone = DQN.from_spec(CARTPOLE)
    clone.load_state_dict(state)
    assert clone.num_updates == 5
    obs = torch.randn(8, 4)
    assert torch.equal(agent.act(obs), clone.act(obs))
    batch = random_batch(seed=99)
    agent.update(batch)
    clone.update(batch)
    for a, b in zip(agent.parameters(), clone.parameters()):
        assert torch.equal(a, b)


class CopyEveryUpdateTheLongWay(PolyakUpdate):
    """A hard copy after every update that does not announce it: DQN reads the target network as usual."""

    @property
    def copies_every_step(self) -> bool:
        return False


def test_a_target_copied_every_update_is_read_through_the_online_net_bit_identically() -> None:
    """DrQ(eps)'s target period 1: one forward pass over next_obs, and the same parameters as reading q_target."""
    agents = []
    for updater in (PolyakUpdate(1.0, every=1), CopyEveryUpdateTheLongWay(1.0, every=1)):
        torch.manual_seed(0)
        agents.append(DQN.from_spec(CARTPOLE, network={"dueling": True}, next_value=DoubleQNextValue(),
                                    target_updater=updater))
    short, long = agents
    calls = {"q": 0, "q_target": 0}
    for name in calls:
        getattr(short, name).register_forward_hook(lambda *_, name=name: calls.__setitem__(name, calls[name] + 1))
    for i in range(20):
        batch = random_batch(seed=i)
        short.update(batch)
        long.update(batch)
    assert calls == {"q": 40, "q_target": 0}  # next_obs and obs, each once per update
    for (name, a), b in zip(short.state_dict().items(), long.state_dict().values()):
        if isinstance(a, torch.Tensor):  # online, target and optimizer-free tensors; extra state is a dict
            assert torch.equal(a, b), name


def test_prioritized_batches_get_per_sample_td_errors() -> None:
    agent = DQN.from_spec(CARTPOLE)
    batch = random_batch()
    batch = Batch(**{**batch.__dict__, "index": torch.arange(16), "weight": torch.ones(16)})
    metrics = agent.update(batch)
    assert metrics["td_error"].shape == (16,)
    assert (metrics["td_error"] >= 0).all()
    assert "td_error" not in agent.update(random_batch())  # uniform replay: nothing to feed back


class TableQ(nn.Module):
    """Q(s, .) as a learnable table; observations are state indices stored as float."""

    def __init__(self, num_states: int, num_actions: int) -> None:
        super().__init__()
        self.table = nn.Parameter(torch.zeros(num_states, num_actions))

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.table[obs.long().squeeze(-1)]


def chain_mdp(n: int = 5) -> tuple[Batch, np.ndarray]:
    """States 0..n-1; action 1 moves right, 0 moves left (clamped at 0); reaching n-1 pays 1 and ends.

    With gamma 0.9, Q*(s, right) = 0.9**(n-2-s) and Q*(s, left) = 0.9 * max_a Q*(max(s-1, 0), a).
    """
    gamma = 0.9
    v = np.array([gamma ** (n - 2 - s) for s in range(n - 1)])  # V*(s) = Q*(s, right)
    q_star = np.zeros((n - 1, 2))
    q_star[:, 1] = v
    q_star[:, 0] = [gamma * v[max(s - 1, 0)] for s in range(n - 1)]
    obs, action, reward, next_obs, terminated = [], [], [], [], []
    for s in range(n - 1):
        for a in (0, 1):
            s2 = s + 1 if a == 1 else max(s - 1, 0)
            obs.append(s), action.append(a), next_obs.append(s2)
            reward.append(1.0 if s2 == n - 1 else 0.0)
            terminated.append(1.0 if s2 == n - 1 else 0.0)
    batch = Batch(
        obs=torch.tensor(obs, dtype=torch.float32).unsqueeze(-1),
        action=torch.tensor(action),
        reward=torch.tensor(reward),
        next_obs=torch.tensor([min(s, n - 2) for s in next_obs], dtype=torch.float32).unsqueeze(-1),
        terminated=torch.tensor(terminated),
    )
    return batch, q_star


@pytest.mark.parametrize("next_value", [GreedyNextValue(), DoubleQNextValue()])
def test_dqn_recovers_q_star_on_a_chain_mdp(next_value: object) -> None:
    batch, q_star = chain_mdp()
    q = TableQ(num_states=4, num_actions=2)
    agent = DQN(
        q,
        num_actions=2,
        optimizer=lambda params: torch.optim.SGD(params, lr=0.5),
        next_value=next_value,  # type: ignore[arg-type]
        target_updater=PolyakUpdate(tau=1.0, every=20),
        gamma=0.9,
        loss="mse",
        max_grad_norm=None,
    )
    for _ in range(2000):
        agent.update(batch)
    np.testing.assert_allclose(q.table.detach().numpy(), q_star, atol=1e-3)
