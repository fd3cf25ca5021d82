"""PrioritizedSampler through ReplayBuffer: P(i) ~ p_i^alpha, importance weights, beta schedule, max priority."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch

from qlearn.buffers import PrioritizedSampler, ReplayBuffer, UniformSampler

ALPHA, BETA, EPS = 0.6, 0.4, 1e-6
N = 64  # transitions; their TD errors repeat an 8-value pattern
TD = np.tile([0.5, 2.0, 0.0, 1.0, 4.0, 0.25, 3.0, 1.5], N // 8)


def filled(n: int = N, capacity: int = N, beta_steps: int = 1000, seed: int = 0) -> ReplayBuffer:
    buffer = ReplayBuffer(
        capacity, sampler=PrioritizedSampler(alpha=ALPHA, beta=BETA, beta_steps=beta_steps, eps=EPS), seed=seed
    )
    for t in range(n):
        obs = np.array([[t]], dtype=np.float32)
        buffer.add(obs, np.array([t]), np.array([float(t)]), obs + 1, np.array([False]), np.array([False]))
    return buffer


def expected_probs() -> np.ndarray:
    p = (np.abs(TD) + EPS) ** ALPHA
    return p / p.sum()


def test_sampling_frequency_proportional_to_p_alpha() -> None:
    buffer = filled()
    buffer.update_priorities(torch.arange(N), torch.tensor(TD))
    counts = np.zeros(N)
    for _ in range(1000):
        batch = buffer.sample(N)
        counts += np.bincount(batch.index.numpy(), minlength=N)
        np.testing.assert_array_equal(batch.obs[:, 0].numpy(), batch.index.numpy())  # index points at the data
    np.testing.assert_allclose(counts / counts.sum(), expected_probs(), atol=0.005)
    pattern = (counts / counts.sum()).reshape(-1, 8).sum(axis=0)  # 8 groups, each sum p^alpha / total
    np.testing.assert_allclose(pattern, expected_probs().reshape(-1, 8).sum(axis=0), atol=0.01)


def test_sampler_alone_200k_draws() -> None:
    sampler = PrioritizedSampler(alpha=ALPHA, eps=EPS)
    sampler.allocate(1, N)
    sampler.on_write(np.arange(N))
    sampler.update_priorities(np.arange(N), TD)
    draws = sampler.propose(200_000, np.random.default_rng(0))
    np.testing.assert_allclose(np.bincount(draws, minlength=N) / draws.size, expected_probs(), atol=0.01)


def test_importance_weights_hand_computed() -> None:
    buffer = filled()
    buffer.update_priorities(torch.arange(N), torch.tensor(TD))
    batch = buffer.sample(64)  # first sample call: beta = BETA
    P = expected_probs()[batch.index.numpy()]
    w = (N * P) ** -BETA
    np.testing.assert_allclose(batch.weight.numpy(), w / w.max(), rtol=1e-5)
    assert batch.weight.dtype == torch.float32 and batch.weight.shape == (64,)
    assert batch.weight.max().item() == pytest.approx(1.0)


def test_beta_anneals_linearly_to_one() -> None:
    sampler = PrioritizedSampler(beta=0.4, beta_steps=10)
    buffer = ReplayBuffer(N, sampler=sampler, seed=0)
    for t in range(N):
        zeros, no = np.zeros((1, 2)), np.array([False])
        buffer.add(zeros, np.array([0]), np.array([1.0]), zeros, no, no)
    buffer.update_priorities(torch.arange(N), torch.tensor(TD))
    for k in range(15):
        assert sampler.beta == pytest.approx(min(1.0, 0.4 + 0.6 * k / 10))
        beta = sampler.beta
        batch = buffer.sample(32)
        P = expected_probs()[batch.index.numpy()]
        np.testing.assert_allclose(batch.weight.numpy(), (P / P.min()) ** -beta, rtol=1e-5)
    assert sampler.beta == 1.0


def test_new_transitions_get_max_priority() -> None:
    buffer = filled(capacity=2 * N)
    tree = buffer.sampler.tree
    np.testing.assert_array_equal(tree.get(np.arange(N)), np.ones(N))  # max priority starts at 1
    buffer.update_priorities(torch.arange(N), torch.tensor(TD))
    top = (TD.max() + EPS) ** ALPHA
    buffer.update_priorities(torch.tensor([4]), torch.tensor([0.1]))  # lowering the max keeps max_priority
    obs = np.array([[N]], dtype=np.float32)
    buffer.add(obs, np.array([N]), np.array([N]), obs, np.array([False]), np.array([False]))
    assert tree[N] == pytest.approx(top)
    assert tree[4] == pytest.approx((0.1 + EPS) ** ALPHA)


def test_overwrite_resets_priority_and_round_trip() -> None:
    buffer = filled(n=64, capacity=64)
    td = torch.linspace(0.0, 3.0, 64)
    buffer.update_priorities(torch.arange(64), td)
    for t in range(64, 70):  # overwrite slots 0..5: the new transitions get the max priority
        obs = np.array([[t]], dtype=np.float32)
        buffer.add(obs, np.array([t]), np.array([t]), obs, np.array([False]), np.array([False]))
    p = (td.double().numpy() + EPS) ** ALPHA
    np.testing.assert_allclose(buffer.sampler.tree.get(np.arange(64)), np.r_[np.full(6, p.max()), p[6:]])
    assert len(buffer) == 64
    state = io.BytesIO()
    torch.save(buffer.state_dict(), state)
    state.seek(0)
    twin = ReplayBuffer(64, sampler=PrioritizedSampler(alpha=ALPHA, beta=BETA, beta_steps=1000, eps=EPS))
    twin.load_state_dict(torch.load(state, weights_only=True))
    for _ in range(3):
        a, b = buffer.sample(32), twin.sample(32)
        for name in ("obs", "action", "reward", "weight", "index"):
            torch.testing.assert_close(getattr(a, name), getattr(b, name), rtol=0, atol=0)
        buffer.update_priorities(a.index, a.reward)
        twin.update_priorities(b.index, b.reward)
    assert twin.sampler.step == buffer.sampler.step == 3


def test_update_priorities_validation_and_uniform_noop() -> None:
    buffer = filled()
    with pytest.raises(ValueError, match="index \\[B\\] and td_error \\[B\\]"):
        buffer.update_priorities(torch.arange(4), torch.ones(5))
    with pytest.raises(ValueError, match="NaN"):
        buffer.update_priorities(torch.arange(2), torch.tensor([1.0, float("nan")]))
    uniform = ReplayBuffer(8, sampler=UniformSampler())
    uniform.update_priorities(torch.arange(3), torch.ones(3))  # no-op, no error
    with pytest.raises(ValueError):
        PrioritizedSampler(alpha=-1.0)
    with pytest.raises(ValueError):
        PrioritizedSampler(beta=1.5)
