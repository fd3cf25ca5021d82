"""SumTree: totals, prefix-sum search and sampling frequencies against brute force."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch

from qlearn.buffers import SumTree


def brute_find(priorities: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Smallest i with u < sum_{k<=i} p_k (skips zero-priority leaves)."""
    return np.searchsorted(np.cumsum(priorities), u, side="right")


@pytest.mark.parametrize("capacity", [1, 7, 1000, 1024])
def test_total_get_and_find_match_brute_force(capacity: int) -> None:
    rng = np.random.default_rng(0)
    p = rng.integers(0, 11, size=capacity).astype(np.float64)  # integers: every partial sum is exact
    p[0] = max(p[0], 1.0)
    tree = SumTree(capacity)
    tree.update(np.arange(capacity), p)
    assert tree.total == p.sum()
    np.testing.assert_array_equal(tree.get(np.arange(capacity)), p)
    assert tree[capacity - 1] == p[-1]
    u = rng.uniform(0.0, p.sum(), size=5000)
    u[:3] = [0.0, np.nextafter(p.sum(), 0.0), p.sum()]  # edges; u = total is clipped onto the last positive leaf
    expected = np.minimum(brute_find(p, u), np.flatnonzero(p)[-1])
    np.testing.assert_array_equal(tree.find(u), expected)
    assert np.all(p[tree.find(u)] > 0)


def test_scalar_and_vectorised_updates_agree() -> None:
    rng = np.random.default_rng(1)
    one_by_one, batched = SumTree(300), SumTree(300)
    for _ in range(5):
        idx = rng.integers(0, 300, size=64)
        pri = rng.random(64)
        for i, p in zip(idx, pri):  # sizes 1: the scalar walk
            one_by_one.update(np.array([i]), np.array([p]))
        batched.update(idx, pri)  # size 64: level-by-level numpy
    np.testing.assert_allclose(one_by_one._tree, batched._tree, rtol=1e-12)
    assert batched.total == pytest.approx(batched.get(np.arange(300)).sum(), rel=1e-12)


@pytest.mark.parametrize("size", [3, 50])  # scalar path and vectorised path
def test_duplicate_indices_last_write_wins(size: int) -> None:
    rng = np.random.default_rng(2)
    idx = rng.integers(0, 10, size=size)
    idx[:2] = [4, 4]
    pri = rng.random(size)
    tree = SumTree(10)
    tree.update(idx, pri)
    reference = np.zeros(10)
    for i, p in zip(idx, pri):
        reference[i] = p
    np.testing.assert_array_equal(tree.get(np.arange(10)), reference)
    assert tree.total == pytest.approx(reference.sum(), rel=1e-12)


def test_sampling_frequencies_match_priorities() -> None:
    rng = np.random.default_rng(3)
    p = rng.random(12)
    p[5] = 0.0
    tree = SumTree(12)
    tree.update(np.arange(12), p)
    draws = tree.find(rng.random(200_000) * tree.total)
    freq = np.bincount(draws, minlength=12) / draws.size
    np.testing.assert_allclose(freq, p / p.sum(), atol=0.01)
    assert freq[5] == 0.0


def test_zeroing_removes_leaves_and_state_round_trip() -> None:
    tree = SumTree(6)
    tree.update(np.arange(6), np.arange(1.0, 7.0))
    tree.update(np.array([0, 1, 2]), 0.0)
    assert tree.total == 4.0 + 5.0 + 6.0
    assert set(tree.find(np.linspace(0.0, tree.total, 101)).tolist()) == {3, 4, 5}
    buf = io.BytesIO()
    torch.save(tree.state_dict(), buf)
    buf.seek(0)
    copy = SumTree(6)
    copy.load_state_dict(torch.load(buf, weights_only=True))
    np.testing.assert_array_equal(copy._tree, tree._tree)


def test_errors() -> None:
    tree = SumTree(4)
    with pytest.raises(ValueError, match="all priorities are zero"):
        tree.find(np.array([0.0]))
    with pytest.raises(IndexError):
        tree.update(np.array([4]), np.array([1.0]))
    with pytest.raises(IndexError):
        tree.update(np.arange(20) % 5, np.ones(20))
    with pytest.raises(ValueError, match=">= 0"):
        tree.update(np.array([1]), np.array([-1.0]))
    with pytest.raises(ValueError, match=">= 0"):
        tree.update(np.arange(4).repeat(3), np.full(12, np.nan))
    with pytest.raises(ValueError):
        SumTree(0)
