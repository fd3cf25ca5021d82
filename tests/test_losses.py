"""Tests for qlearn.losses.td_loss against numpy references."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from qlearn.losses import td_loss


def ref_huber(u: np.ndarray) -> np.ndarray:
    a = np.abs(u)
    return np.where(a <= 1.0, 0.5 * u**2, a - 0.5)


def ref_mse(u: np.ndarray) -> np.ndarray:
    return u**2


def _data(seed: int = 0, batch: int = 64) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    pred = rng.normal(scale=3.0, size=batch)  # errors on both sides of |u| = 1
    target = rng.normal(scale=3.0, size=batch)
    weight = rng.uniform(0.1, 1.0, size=batch)
    return pred, target, weight


@pytest.mark.parametrize("kind, ref", [("huber", ref_huber), ("mse", ref_mse)])
@pytest.mark.parametrize("weighted", [False, True])
def test_td_loss_matches_numpy(kind: str, ref, weighted: bool) -> None:
    pred, target, weight = _data()
    u = pred - target
    assert (np.abs(u) < 1).any() and (np.abs(u) > 1).any()
    per_sample = ref(u) * (weight if weighted else 1.0)
    expected = per_sample.mean()
    got = td_loss(
        torch.from_numpy(pred),
        torch.from_numpy(target),
        kind=kind,
        weight=torch.from_numpy(weight) if weighted else None,
    )
    assert got.shape == ()
    np.testing.assert_allclose(got.item(), expected, rtol=1e-10)


def test_huber_gradient_is_clipped_td_error() -> None:
    pred, target, _ = _data(seed=1, batch=32)
    p = torch.from_numpy(pred).requires_grad_(True)
    td_loss(p, torch.from_numpy(target), kind="huber").backward()
    expected = np.clip(pred - target, -1.0, 1.0) / len(pred)
    np.testing.assert_allclose(p.grad.numpy(), expected, rtol=1e-10)


def test_default_kind_is_huber() -> None:
    pred, target, _ = _data()
    p, t = torch.from_numpy(pred), torch.from_numpy(target)
    assert td_loss(p, t).item() == td_loss(p, t, kind="huber").item()


def test_unknown_kind_raises() -> None:
    with pytest.raises(ValueError, match="unknown td loss kind 'l1'"):
        td_loss(torch.zeros(3), torch.zeros(3), kind="l1")


def test_shape_mismatch_raises() -> None:
    with pytest.raises(ValueError, match="must match"):
        td_loss(torch.zeros(4), torch.zeros(4, 1))
    with pytest.raises(ValueError, match="must match"):
        td_loss(torch.zeros(4, 1), torch.zeros(4))
    with pytest.raises(ValueError, match="weight"):
        td_loss(torch.zeros(4), torch.zeros(4), weight=torch.ones(4, 1))


def test_temperature_loss_in_alpha_is_cleanrls() -> None:
    """CleanRL's -(alpha (log pi + H)) vs the SAC authors' -(log alpha (log pi + H)): gradients differ by alpha."""
    from qlearn.losses import temperature_loss

    log_prob, target = torch.tensor([-1.0, -3.0, 0.5]), -2.0
    grads = {}
    for of_alpha in (False, True):
        log_alpha = torch.tensor(0.7, requires_grad=True)
        temperature_loss(log_alpha, log_prob, target, of_alpha=of_alpha).backward()
        grads[of_alpha] = log_alpha.grad.item()
    expected = -(log_prob + target).mean().item()
    assert grads[False] == pytest.approx(expected)
    assert grads[True] == pytest.approx(math.exp(0.7) * expected)
