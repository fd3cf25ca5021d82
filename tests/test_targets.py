"""Tests for qlearn.targets: TD target masking, DQN vs Double DQN next values, subset min."""

from __future__ import annotations

import itertools

import pytest
import torch
from torch import nn

from qlearn.targets import DoubleQNextValue, GreedyNextValue, min_of_random_subset, td_target


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


def test_min_of_random_subset_full_is_plain_min() -> None:
    q = torch.randn(5, 7, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(min_of_random_subset(q, 5), q.min(dim=0).values)


def test_min_of_random_subset_reproducible_and_a_real_subset() -> None:
    q = torch.randn(10, 16, generator=torch.Generator().manual_seed(0))
    g1 = torch.Generator().manual_seed(123)
    g2 = torch.Generator().manual_seed(123)
    draws1 = [min_of_random_subset(q, 2, g1) for _ in range(20)]
    draws2 = [min_of_random_subset(q, 2, g2) for _ in range(20)]
    for a, b in zip(draws1, draws2):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    # Each result is the min over one pair of members shared by the whole batch ...
    pair_mins = [torch.minimum(q[i], q[j]) for i, j in itertools.combinations(range(10), 2)]
    for d in draws1:
        assert any(torch.equal(d, pm) for pm in pair_mins)
    # ... and the pair changes between calls.
    assert len({tuple(d.tolist()) for d in draws1}) > 1


def test_min_of_random_subset_validates() -> None:
    q = torch.zeros(3, 4)
    with pytest.raises(ValueError):
        min_of_random_subset(q, 0)
    with pytest.raises(ValueError):
        min_of_random_subset(q, 4)
    with pytest.raises(ValueError):
        min_of_random_subset(torch.zeros(3), 1)
