"""Tests for qlearn.updaters: Polyak closed form, hard-copy schedule, buffers, target isolation."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from qlearn.networks import MLP
from qlearn.updaters import PolyakUpdate, make_target


def _perturb(module: nn.Module, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(torch.randn(p.shape, generator=g))


def test_polyak_closed_form() -> None:
    torch.manual_seed(0)
    online = MLP(3, 2, hidden_sizes=(8,))
    target = make_target(online)
    _perturb(target, seed=1)
    old = [p.detach().clone() for p in target.parameters()]
    PolyakUpdate(tau=0.1)(online, target, step=1)
    for p, tp, o in zip(online.parameters(), target.parameters(), old):
        torch.testing.assert_close(tp, 0.9 * o + 0.1 * p.detach())
        assert not torch.equal(tp, o)


def _params_equal(a: nn.Module, b: nn.Module) -> bool:
    return all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))


def test_hard_update_every_three_steps() -> None:
    torch.manual_seed(0)
    online = MLP(3, 2, hidden_sizes=(8,))
    target = make_target(online)
    _perturb(target, seed=1)
    update = PolyakUpdate(tau=1.0, every=3)
    synced_at = []
    for step in range(1, 8):
        _perturb(online, seed=100 + step)  # the online net moves every step
        update(online, target, step)
        if _params_equal(online, target):
            synced_at.append(step)
    assert synced_at == [3, 6]


def test_buffers_are_copied_not_averaged() -> None:
    torch.manual_seed(0)
    online = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    target = make_target(online)
    online.train()
    for _ in range(3):
        online(torch.randn(16, 3) * 5 + 2)  # moves running_mean / running_var / num_batches_tracked
    assert not torch.equal(online[1].running_mean, target[1].running_mean)
    PolyakUpdate(tau=0.005)(online, target, step=1)
    for b, tb in zip(online.buffers(), target.buffers()):
        assert torch.equal(b, tb)
    assert target[1].num_batches_tracked.item() == 3


def test_optimizer_step_leaves_target_unchanged() -> None:
    torch.manual_seed(0)
    online = MLP(4, 2, hidden_sizes=(16,))
    target = make_target(online)
    snapshot = [p.detach().clone() for p in target.parameters()]
    opt = torch.optim.Adam(online.parameters(), lr=1e-2)
    x = torch.randn(8, 4)
    with torch.no_grad():
        y = target(x).max(dim=-1).values
    loss = ((online(x).max(dim=-1).values - (1.0 + y)) ** 2).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
    assert not _params_equal(online, target)  # the online net did move
    for tp, s in zip(target.parameters(), snapshot):
        assert torch.equal(tp, s)
        assert tp.grad is None


def test_make_target_is_frozen_copy() -> None:
    online = MLP(4, 2, hidden_sizes=(16,))
    target = make_target(online)
    assert all(not p.requires_grad for p in target.parameters())
    assert all(p.requires_grad for p in online.parameters())
    assert _params_equal(online, target)
    pairs = zip(online.parameters(), target.parameters())
    assert all(p.data_ptr() != q.data_ptr() for p, q in pairs)


@pytest.mark.parametrize("kwargs", [{"tau": 0.0}, {"tau": 1.5}, {"tau": -0.1}, {"every": 0}])
def test_invalid_arguments_raise(kwargs) -> None:
    with pytest.raises(ValueError):
        PolyakUpdate(**kwargs)


def test_mismatched_modules_raise() -> None:
    with pytest.raises(ValueError):
        PolyakUpdate()(MLP(3, 2, (4,)), MLP(3, 2, (4, 4)), step=1)
