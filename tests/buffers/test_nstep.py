"""n-step returns folded at sample time: hand-computed 3-step windows, cuts at terminations and truncations,
wrap-around against a brute-force reference, and a reset mid-episode."""

from __future__ import annotations

import numpy as np
import pytest

from qlearn.buffers import PrioritizedSampler, ReplayBuffer

F, T = False, True


def add(buffer: ReplayBuffer, t: int, reward: float, terminated: bool, truncated: bool, num_envs: int = 1) -> None:
    """Transition t: obs = t, next_obs = t + 1 (a consistent stream; the window's last transition is next_obs - 1)."""
    obs = np.full((num_envs, 1), t, dtype=np.float32)
    buffer.add(obs, np.zeros(num_envs, np.int64), np.full(num_envs, reward), obs + 1,
               np.full(num_envs, terminated), np.full(num_envs, truncated))


def sample_all(buffer: ReplayBuffer, draws: int = 200) -> dict[int, tuple[float, float, float, float]]:
    """obs id -> (reward, next_obs, terminated, discount) over many samples (each must be consistent)."""
    out: dict[int, tuple[float, float, float, float]] = {}
    for _ in range(draws):
        b = buffer.sample(8)
        columns = (b.obs[:, 0], b.reward, b.next_obs[:, 0], b.terminated, b.discount)
        for row in zip(*(c.tolist() for c in columns)):
            t = int(row[0])
            assert out.setdefault(t, row[1:]) == row[1:]
    return out


@pytest.mark.parametrize("sampler", [None, PrioritizedSampler()])
def test_hand_computed_three_step_returns(sampler: PrioritizedSampler | None) -> None:
    buffer = ReplayBuffer(64, n_step=3, gamma=0.5, sampler=sampler, seed=0)
    # episode A: t = 0..4, rewards 1..5, terminated at t = 4
    # episode B: t = 5..8, rewards 6..9, truncated at t = 8
    # episode C: t = 9..11, rewards 10..12, still running
    flags = [(F, F)] * 4 + [(T, F)] + [(F, F)] * 3 + [(F, T)] + [(F, F)] * 3
    for t, (term, trunc) in enumerate(flags):
        add(buffer, t, t + 1.0, term, trunc)
    expected = {
        # t: (R = r_t + 0.5 r_t+1 + 0.25 r_t+2, next_obs of the last transition, terminated, 0.5**m)
        0: (1 + 1.0 + 0.75, 3, 0, 0.125),
        1: (2 + 1.5 + 1.0, 4, 0, 0.125),
        2: (3 + 2.0 + 1.25, 5, 1, 0.125),  # window ends exactly at the termination
        3: (4 + 2.5, 5, 1, 0.25),  # cut by the termination: m = 2, no bootstrap
        4: (5.0, 5, 1, 0.5),
        5: (6 + 3.5 + 2.0, 8, 0, 0.125),  # never reaches back into episode A
        6: (7 + 4.0 + 2.25, 9, 0, 0.125),  # ends at the truncation: bootstraps from its next_obs
        7: (8 + 4.5, 9, 0, 0.25),  # cut by the truncation: m = 2, terminated stays 0
        8: (9.0, 9, 0, 0.5),
        9: (10 + 5.5 + 3.0, 12, 0, 0.125),
        # 10 and 11: windows not complete yet, never sampled
    }
    assert sample_all(buffer) == {t: tuple(float(x) for x in v) for t, v in expected.items()}
    assert len(buffer) == 12
    add(buffer, 12, 13.0, F, F)  # completes t = 10
    assert sample_all(buffer)[10] == (11 + 6.0 + 3.25, 13.0, 0.0, 0.125)


def reference(stream: list[tuple[float, bool, bool]], n: int, gamma: float, ring: int) -> dict[int, tuple]:
    """Brute force over one env's stream of (reward, terminated, done): the sampleable windows among the
    last `ring` transitions -> (R, last t, terminated, gamma**m)."""
    out = {}
    for t in range(max(0, len(stream) - ring), len(stream)):
        R, k = 0.0, 0
        while k < n and t + k < len(stream):
            reward, term, done = stream[t + k]
            R += gamma**k * reward
            k += 1
            if done:
                break
        else:
            if k < n:
                continue  # incomplete window
        out[t] = (R, t + k - 1, float(stream[t + k - 1][1]), gamma**k)
    return out


def test_wraparound_matches_brute_force_two_envs() -> None:
    rng = np.random.default_rng(1)
    n, gamma, ring, E = 3, 0.9, 11, 2
    buffer = ReplayBuffer(ring * E, n_step=n, gamma=gamma, seed=2)
    streams: list[list[tuple[float, bool, bool]]] = [[] for _ in range(E)]
    for t in range(60):
        reward = rng.integers(0, 5, size=E).astype(np.float64)
        term, trunc = rng.random(E) < 0.15, rng.random(E) < 0.15
        obs = (t + 1000 * np.arange(E)).astype(np.float32)[:, None]
        buffer.add(obs, np.zeros(E, np.int64), reward, obs + 1, term, trunc)
        for e in range(E):
            streams[e].append((reward[e], bool(term[e]), bool(term[e] | trunc[e])))
        if t < 20 or t % 7:
            continue
        expected = {(e, t0): v for e in range(E) for t0, v in reference(streams[e], n, gamma, ring).items()}
        seen = set()
        for _ in range(150):
            b = buffer.sample(8)
            ids = b.obs[:, 0].numpy().astype(np.int64)
            for i, (e, t0) in enumerate(zip(ids // 1000, ids % 1000)):
                R, last, term_last, disc = expected[(e, t0)]  # KeyError: sampled a start that is not valid
                assert b.reward[i].item() == pytest.approx(R, rel=1e-6)
                assert b.next_obs[i, 0].item() == last + 1000 * e + 1
                assert b.terminated[i].item() == term_last
                assert b.discount[i].item() == pytest.approx(disc, rel=1e-6)
                seen.add((e, t0))
        assert seen == set(expected)  # every complete window is sampleable


def test_reset_mid_episode_cuts_windows() -> None:
    """An add whose obs is not the previous next_obs (e.g. the trainer resets envs at a checkpoint) ends the
    episode there as if truncated: no window joins the two streams."""
    buffer = ReplayBuffer(32, n_step=3, gamma=0.5, seed=3)
    for t in range(4):  # a consistent stream: obs_{t+1} = next_obs_t
        obs = np.array([[t]], dtype=np.float32)
        buffer.add(obs, np.zeros(1, np.int64), np.ones(1), obs + 1, np.zeros(1, bool), np.zeros(1, bool))
    for t in range(50, 54):  # the envs were reset without a done
        obs = np.array([[t]], dtype=np.float32)
        buffer.add(obs, np.zeros(1, np.int64), np.ones(1), obs + 1, np.zeros(1, bool), np.zeros(1, bool))
    seen = {}
    for _ in range(100):
        b = buffer.sample(6)
        for o, nxt, d in zip(b.obs[:, 0].tolist(), b.next_obs[:, 0].tolist(), b.discount.tolist()):
            seen[int(o)] = (nxt, d)
    # t: (next_obs, discount); 3 ends the first stream as if truncated; 52 and 53 are not complete yet
    assert seen == {0: (3, 0.125), 1: (4, 0.125), 2: (4, 0.25), 3: (4, 0.5), 50: (53, 0.125), 51: (54, 0.125)}


def test_no_complete_window_yet_is_a_clear_error() -> None:
    buffer = ReplayBuffer(16, n_step=3, gamma=0.99, seed=0)
    for t in range(2):
        add(buffer, t, 1.0, F, F)
    with pytest.raises(ValueError, match="none of the 2 stored transitions can start a sample yet"):
        buffer.sample(2)
    add(buffer, 2, 1.0, F, F)
    assert buffer.sample(2).obs[:, 0].tolist() == [0.0, 0.0]


def test_n_step_sampling_without_a_discount_says_where_it_comes_from() -> None:
    buffer = ReplayBuffer(16, n_step=3, seed=0)  # no gamma: a trainer hands over its agent's
    for t in range(4):
        add(buffer, t, 1.0, F, F)
    with pytest.raises(ValueError, match="need a discount: pass ReplayBuffer"):
        buffer.sample(2)
    buffer.gamma = 0.5
    assert buffer.sample(2).discount.tolist() == [0.125, 0.125]
