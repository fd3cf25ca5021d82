"""ReplayBuffer: circular storage, sampled values, terminated vs truncated, seeding, state_dict, multi-env, errors."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch

from qlearn.buffers import ReplayBuffer, ReplayBufferError

NO_CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA")
DEVICES = ["cpu", pytest.param("cuda", marks=[pytest.mark.cuda, NO_CUDA])]


def step(t: int, num_envs: int = 1) -> tuple[np.ndarray, ...]:
    """Known transition t (env e gets id t + 1000 e): obs = [id, -id], next_obs = obs of t + 1 (a consistent
    stream), action id % 3, reward 10 id, terminated when id % 4 == 3, truncated when id % 5 == 4."""
    ids = t + 1000 * np.arange(num_envs)
    obs = np.stack([ids, -ids], axis=1).astype(np.float32)  # [E, 2]
    nxt = np.stack([ids + 1, -ids - 1], axis=1).astype(np.float32)
    return (obs, ids % 3, 10.0 * ids, nxt, ids % 4 == 3, ids % 5 == 4)


def fill(buffer: ReplayBuffer, steps: range, num_envs: int = 1) -> None:
    for t in steps:
        buffer.add(*step(t, num_envs))


def check_against_known(batch, n_step: int = 1) -> np.ndarray:
    ids = batch.obs[:, 0].cpu().numpy().astype(np.int64)
    np.testing.assert_array_equal(batch.obs[:, 1].cpu().numpy(), -ids)
    np.testing.assert_array_equal(batch.action.cpu().numpy(), ids % 3)
    if n_step == 1:
        np.testing.assert_array_equal(batch.reward.cpu().numpy(), 10.0 * ids)
        np.testing.assert_array_equal(batch.next_obs[:, 0].cpu().numpy(), ids + 1)
        np.testing.assert_array_equal(batch.terminated.cpu().numpy(), (ids % 4 == 3).astype(np.float32))
    return ids


@pytest.mark.parametrize("device", DEVICES)
def test_shapes_dtypes_and_values(device: str) -> None:
    buffer = ReplayBuffer(100, seed=0, device=device)
    fill(buffer, range(10))
    assert len(buffer) == 10
    batch = buffer.sample(8)
    assert batch.obs.shape == batch.next_obs.shape == (8, 2) and batch.obs.dtype == torch.float32
    assert batch.action.shape == (8,) and batch.action.dtype == torch.int64
    for name in ("reward", "terminated"):
        assert getattr(batch, name).shape == (8,) and getattr(batch, name).dtype == torch.float32
    assert batch.discount is None and batch.weight is None
    assert batch.index.dtype == torch.int64 and batch.obs.device.type == torch.device(device).type
    ids = check_against_known(batch)
    assert set(ids) <= set(range(10))  # only written slots
    np.testing.assert_array_equal(batch.index.cpu().numpy(), ids)  # E = 1: flat index = slot = t


def test_circular_overwrite_and_len() -> None:
    buffer = ReplayBuffer(5, seed=1)
    for t in range(8):
        fill(buffer, range(t, t + 1))
        assert len(buffer) == min(t + 1, 5)
    seen: set[int] = set()
    for _ in range(50):
        seen |= set(check_against_known(buffer.sample(5)).tolist())
    assert seen == {3, 4, 5, 6, 7}


def test_terminated_vs_truncated() -> None:
    buffer = ReplayBuffer(64, seed=2)
    fill(buffer, range(20))
    seen = np.zeros(20, dtype=bool)
    for _ in range(20):
        batch = buffer.sample(20)
        ids = check_against_known(batch)  # terminated == (t % 4 == 3), whatever truncated was
        seen[ids] = True
        truncated_only = (ids % 5 == 4) & (ids % 4 != 3)
        assert np.all(batch.terminated.numpy()[truncated_only] == 0.0)  # truncation is not terminal
    assert seen[[3, 4, 19]].all()  # terminated, truncated, terminated and truncated


@pytest.mark.parametrize("num_envs", [1, 2])  # 1 env takes the item-write path
def test_continuous_actions_and_uint8_obs(num_envs: int) -> None:
    buffer = ReplayBuffer(8 * num_envs, seed=3)
    for t in range(6):
        obs = np.full((num_envs, 3, 3), t, dtype=np.uint8)
        act = np.array([[t, -t], [t + 0.5, 0.0]], dtype=np.float64)[:num_envs]
        reward, terminated = np.full(num_envs, t / 2), np.full(num_envs, t == 5)
        buffer.add(obs, act, reward, obs + 1, terminated, np.zeros(num_envs, bool))
    batch = buffer.sample(6)
    assert batch.obs.dtype == torch.uint8 and batch.obs.shape == (6, 3, 3)
    assert batch.action.dtype == torch.float32 and batch.action.shape == (6, 2)
    t = batch.obs[:, 0, 0].numpy().astype(np.float32)
    env = batch.index.numpy() // 8
    np.testing.assert_array_equal(batch.action[:, 0].numpy(), t + 0.5 * env)
    np.testing.assert_array_equal(batch.action[:, 1].numpy(), np.where(env == 0, -t, 0.0))
    np.testing.assert_array_equal(batch.next_obs[:, 0, 0].numpy(), t + 1)
    np.testing.assert_array_equal(batch.reward.numpy(), t / 2)
    np.testing.assert_array_equal(batch.terminated.numpy(), (t == 5).astype(np.float32))


def test_nbytes_counts_every_array() -> None:
    buffer = ReplayBuffer(10, seed=0)
    assert buffer.nbytes == 0
    fill(buffer, range(1))
    # obs + next_obs (2 float32 each) + action int32 + reward float32 + terminated + done bools
    assert buffer.nbytes == 10 * (8 + 8 + 4 + 4 + 1 + 1)


def test_seeded_sampling_reproducible() -> None:
    a, b, c = ReplayBuffer(50, seed=7), ReplayBuffer(50, seed=7), ReplayBuffer(50, seed=8)
    for buffer in (a, b, c):
        fill(buffer, range(40))
    ia, ib, ic = (buf.sample(16).index for buf in (a, b, c))
    assert torch.equal(ia, ib) and not torch.equal(ia, ic)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("n_step", [1, 3])
def test_state_dict_round_trip(n_step: int, device: str) -> None:
    buffer = ReplayBuffer(30, n_step=n_step, gamma=0.9, seed=4, device=device)
    fill(buffer, range(25), num_envs=2)  # 15 slots per env: wrapped
    buffer.sample(4)  # advance the rng
    blob = io.BytesIO()
    torch.save(buffer.state_dict(), blob)
    blob.seek(0)
    twin = ReplayBuffer(30, n_step=n_step, gamma=0.9, seed=123, device=device)
    twin.load_state_dict(torch.load(blob, weights_only=True))
    assert len(twin) == len(buffer) == 30
    for t in range(25, 40):
        for buf in (buffer, twin):
            buf.add(*step(t, 2))
        x, y = buffer.sample(8), twin.sample(8)
        for name in ("obs", "action", "reward", "next_obs", "terminated", "discount", "index"):
            u, v = getattr(x, name), getattr(y, name)
            assert (u is None and v is None) or torch.equal(u, v), name


def test_round_trip_of_an_empty_buffer() -> None:
    state = ReplayBuffer(8, seed=0).state_dict()
    twin = ReplayBuffer(8)
    twin.load_state_dict(state)
    assert len(twin) == 0
    fill(twin, range(3))
    assert len(twin) == 3


def test_multi_env_streams_stay_separate() -> None:
    buffer = ReplayBuffer(60, n_step=3, gamma=0.5, seed=5)
    fill(buffer, range(12), num_envs=3)
    discounts = set()
    for _ in range(20):
        batch = buffer.sample(30)
        ids = batch.obs[:, 0].numpy().astype(np.int64)
        env, t = ids // 1000, ids % 1000
        np.testing.assert_array_equal(batch.index.numpy() // 20, env)  # flat index = env * ring + slot
        last = batch.next_obs[:, 0].numpy().astype(np.int64) - 1
        assert np.all(last // 1000 == env)  # the window never leaves its env's stream
        m = last % 1000 - t + 1
        np.testing.assert_array_equal(batch.discount.numpy(), 0.5**m)
        assert np.all((m >= 1) & (m <= 3))
        discounts |= set(m.tolist())
    assert discounts == {1, 2, 3}


def test_errors_on_bad_input() -> None:
    buffer = ReplayBuffer(10)
    with pytest.raises(ReplayBufferError, match="holds 0 transitions, fewer than batch_size=4; raise learning_starts"):
        buffer.sample(4)
    fill(buffer, range(3), num_envs=2)
    with pytest.raises(ReplayBufferError, match="buffer holds 6 transitions, fewer than batch_size=7"):
        buffer.sample(7)
    with pytest.raises(ReplayBufferError, match="E=2 envs"):
        buffer.add(*step(3, num_envs=3))
    obs, act, rew, nxt, term, trunc = step(3, 2)
    with pytest.raises(ReplayBufferError, match="next_obs"):
        buffer.add(obs, act, rew, nxt[:, :1], term, trunc)
    with pytest.raises(ReplayBufferError, match="batch_size must be >= 1"):
        buffer.sample(0)
    with pytest.raises(ReplayBufferError, match="slots per env"):
        ReplayBuffer(4, n_step=3).add(*step(0, num_envs=2))
    with pytest.raises(ReplayBufferError, match="frame_stack=4 expects obs shaped"):
        ReplayBuffer(100, frame_stack=4).add(*step(0))
    with pytest.raises(ReplayBufferError, match="capacity"):
        ReplayBuffer(11).load_state_dict(buffer.state_dict())
    with pytest.raises(ReplayBufferError):
        ReplayBuffer(0)
    with pytest.raises(ReplayBufferError):
        ReplayBuffer(10, n_step=0)
    with pytest.raises(ValueError):  # ReplayBufferError is a ValueError
        ReplayBuffer(10, gamma=1.5)


def test_uniform_sampler_tracks_writes_only_while_the_rings_fill() -> None:
    buffer = ReplayBuffer(8, seed=0)  # 2 envs, rings of 4
    obs, zeros = np.zeros((2, 3), np.float32), np.zeros(2)
    for step in range(6):
        buffer.add(obs + step, np.ones(2, np.int64), zeros, obs + step + 1, zeros, zeros)
        assert buffer.sampler.tracks_writes == (step < 3)
    drawn = np.concatenate([buffer.sample(8).index.numpy() for _ in range(500)])
    counts = np.bincount(drawn, minlength=8)  # all 8 slots, ~500 each
    assert counts.min() > 400 and counts.max() < 600
