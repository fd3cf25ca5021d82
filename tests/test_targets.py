"""Tests for qlearn.targets: TD target masking, DQN vs Double DQN next values, the soft subset min."""

from __future__ import annotations

import itertools

import pytest
import torch
from torch import nn

from qlearn.targets import DoubleQNextValue, GreedyNextValue, SoftMinNextValue, td_target


class TableQ(nn.Module):
    """Q(s, .) read from a fixed [S, A] table; obs are integer state indices [B]."""

    def __init__(self, table: list[list[float]]) -> None:
        super().__init__()
        self.table = nn.Parameter(torch.tensor(table))

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.table[obs]  # [B] -> [B, A]


# Online and target tables, 2 states x 3 actions, chosen so the two rules disagree.
ONLINE = TableQ([[1.0, 5.0, 2.0], [3.0, 0.0, 4.0]])  # argmax: s0 -> a1, s1 -> a2
TARGET = TableQ([[6.0, 1.0, 3.0], [2.0, 7.0, 5.0]])  # max:    s0 -> 6,  s1 -> 7
NEXT_OBS = torch.tensor([0, 1, 1, 0])


def test_greedy_next_value_hand_computed() -> None:
    v = GreedyNextValue()(ONLINE, TARGET, NEXT_OBS)
    torch.testing.assert_close(v, torch.tensor([6.0, 7.0, 7.0, 6.0]))
    assert not v.requires_grad


def test_double_q_next_value_hand_computed() -> None:
    # Online net picks a1 in s0 and a2 in s1; the target net scores them: 1 and 5.
    v = DoubleQNextValue()(ONLINE, TARGET, NEXT_OBS)
    torch.testing.assert_close(v, torch.tensor([1.0, 5.0, 5.0, 1.0]))
    assert not v.requires_grad


def test_td_target_terminal_masking() -> None:
    reward = torch.tensor([1.0, 2.0, 3.0])
    terminated = torch.tensor([0.0, 1.0, 0.0])
    next_value = torch.tensor([10.0, 20.0, 30.0])
    y = td_target(reward, terminated, next_value, 0.9)
    torch.testing.assert_close(y, torch.tensor([10.0, 2.0, 30.0]))
    # bool terminated gives the same result
    torch.testing.assert_close(td_target(reward, terminated.bool(), next_value, 0.9), y)


def test_truncation_still_bootstraps() -> None:
    # A time-limit truncation is stored with terminated = 0: the target keeps gamma * V(s').
    y = td_target(torch.tensor([1.0]), torch.tensor([0.0]), torch.tensor([10.0]), 0.5)
    torch.testing.assert_close(y, torch.tensor([6.0]))


def test_td_target_with_per_sample_discount() -> None:
    # n-step transitions of length 1, 2, 3 carry gamma**k in front of the bootstrap.
    gamma = 0.9
    discount = torch.tensor([gamma, gamma**2, gamma**3])
    reward = torch.tensor([1.0, 2.0, 3.0])
    terminated = torch.tensor([0.0, 1.0, 0.0])
    next_value = torch.tensor([10.0, 20.0, 30.0])
    y = td_target(reward, terminated, next_value, discount)
    torch.testing.assert_close(y, torch.tensor([1.0 + 9.0, 2.0, 3.0 + 0.729 * 30.0]))


def test_td_target_end_to_end_with_next_value_block() -> None:
    reward = torch.tensor([0.0, 1.0, 0.0, 1.0])
    terminated = torch.tensor([0.0, 0.0, 1.0, 0.0])
    v = DoubleQNextValue()(ONLINE, TARGET, NEXT_OBS)
    y = td_target(reward, terminated, v, 0.5)
    torch.testing.assert_close(y, torch.tensor([0.5, 3.5, 0.0, 1.5]))


def test_td_target_rejects_column_vectors() -> None:
    reward = torch.zeros(4)
    with pytest.raises(ValueError, match="next_value"):
        td_target(reward, torch.zeros(4), torch.zeros(4, 1), 0.99)
    with pytest.raises(ValueError, match="reward"):
        td_target(torch.zeros(4, 1), torch.zeros(4, 1), torch.zeros(4, 1), 0.99)
    with pytest.raises(ValueError, match="discount"):
        td_target(reward, torch.zeros(4), torch.zeros(4), torch.zeros(4, 1))


class MemberTable(nn.Module):
    """Target critics whose values are a fixed ``[N, B]`` table; evaluates only the requested members."""

    def __init__(self, q: torch.Tensor) -> None:
        super().__init__()
        self.q, self.num_q = q, q.shape[0]

    def forward(self, obs: torch.Tensor, action: torch.Tensor, members: torch.Tensor) -> torch.Tensor:
        return self.q[members]  # [M, B]


def zero_entropy_policy(obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.zeros(obs.shape[0], 1), torch.zeros(obs.shape[0])


def subset_min(q: torch.Tensor, m: int, generator: torch.Generator | None = None) -> torch.Tensor:
    block = SoftMinNextValue(m)
    return block(zero_entropy_policy, MemberTable(q), torch.zeros(q.shape[1], 1), 1.0, block.draw(q.shape[0], generator))


def test_soft_min_next_value_over_all_members_is_the_plain_min() -> None:
    q = torch.randn(5, 7, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(subset_min(q, 5), q.min(dim=0).values)


def test_soft_min_next_value_draws_reproducibly_one_real_subset_per_call() -> None:
    q = torch.randn(10, 16, generator=torch.Generator().manual_seed(0))
    g1 = torch.Generator().manual_seed(123)
    g2 = torch.Generator().manual_seed(123)
    draws1 = [subset_min(q, 2, g1) for _ in range(20)]
    draws2 = [subset_min(q, 2, g2) for _ in range(20)]
    for a, b in zip(draws1, draws2):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    # Each result is the min over one pair of members shared by the whole batch ...
    pair_mins = [torch.minimum(q[i], q[j]) for i, j in itertools.combinations(range(10), 2)]
    for d in draws1:
        assert any(torch.equal(d, pm) for pm in pair_mins)
    # ... and the pair changes between calls.
    assert len({tuple(d.tolist()) for d in draws1}) > 1


def test_soft_min_next_value_validates() -> None:
    with pytest.raises(ValueError):
        SoftMinNextValue(0)
    with pytest.raises(ValueError):
        SoftMinNextValue(4).draw(3)
