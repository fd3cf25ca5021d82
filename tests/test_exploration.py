"""Tests for qlearn.exploration: schedules and epsilon-greedy selection."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
import torch

from qlearn.exploration import EpsilonGreedy, ExponentialSchedule, LinearSchedule


def test_linear_schedule_values() -> None:
    s = LinearSchedule(1.0, 0.1, duration=100)
    assert s.value(0) == pytest.approx(1.0)
    assert s.value(50) == pytest.approx(0.55)
    assert s.value(100) == pytest.approx(0.1)
    assert s.value(10_000) == pytest.approx(0.1)
    assert s.value(-5) == pytest.approx(1.0)
    assert LinearSchedule(1.0, 0.1, duration=0).value(0) == pytest.approx(0.1)


def test_exponential_schedule_values() -> None:
    s = ExponentialSchedule(1.0, 0.1, decay_steps=100)
    assert s.value(0) == pytest.approx(1.0)
    assert s.value(100) == pytest.approx(0.1 + 0.9 * math.exp(-1.0))
    assert s.value(100 * math.log(2)) == pytest.approx(0.1 + 0.45)  # half-life
    assert s.value(10**6) == pytest.approx(0.1)
    with pytest.raises(ValueError):
        ExponentialSchedule(1.0, 0.1, decay_steps=0)


def _never_called() -> np.ndarray:
    raise AssertionError("greedy() must not be called when every env explores")


def test_epsilon_one_never_calls_greedy() -> None:
    explorer = EpsilonGreedy(1.0, num_actions=3, seed=0)
    seen = set()
    for step in range(50):
        actions = explorer.select(step, num_envs=4, greedy=_never_called)
        assert actions.dtype == np.int64 and actions.shape == (4,)
        seen.update(actions.tolist())
    assert seen == {0, 1, 2}


def test_epsilon_zero_always_greedy() -> None:
    explorer = EpsilonGreedy(LinearSchedule(0.0, 0.0, 10), num_actions=3, seed=0)
    greedy_actions = np.array([2, 0, 1, 2])
    calls = 0

    def greedy() -> np.ndarray:
        nonlocal calls
        calls += 1
        return greedy_actions

    for step in range(50):
        np.testing.assert_array_equal(explorer.select(step, 4, greedy), greedy_actions)
    assert calls == 50


def test_greedy_may_return_a_tensor() -> None:
    explorer = EpsilonGreedy(0.0, num_actions=5, seed=0)
    out = explorer.select(0, 3, lambda: torch.tensor([4, 3, 1]))
    assert out.dtype == np.int64
    np.testing.assert_array_equal(out, [4, 3, 1])


def test_empirical_exploration_rate_matches_epsilon() -> None:
    eps = 0.3
    explorer = EpsilonGreedy(eps, num_actions=4, seed=1)
    # The greedy "action" -1 marks exploiting envs; anything else was drawn at random.
    picks = np.concatenate(
        [explorer.select(step, 500, lambda: np.full(500, -1)) for step in range(40)]
    )
    rate = np.mean(picks != -1)
    assert abs(rate - eps) < 0.02  # 20,000 draws: std ~ 0.003
    assert set(picks[picks != -1].tolist()) == {0, 1, 2, 3}


def test_schedule_drives_epsilon() -> None:
    explorer = EpsilonGreedy(LinearSchedule(1.0, 0.0, 100), num_actions=2)
    assert explorer.epsilon(0) == pytest.approx(1.0)
    assert explorer.epsilon(25) == pytest.approx(0.75)
    assert explorer.epsilon(200) == pytest.approx(0.0)


def _rollout(explorer: EpsilonGreedy, start: int, n: int) -> list[list[int]]:
    zeros = np.zeros(8, dtype=np.int64)
    return [explorer.select(s, 8, lambda: zeros).tolist() for s in range(start, start + n)]


def test_seeded_explorers_agree() -> None:
    first = _rollout(EpsilonGreedy(0.5, 6, seed=7), 0, 10)
    assert first == _rollout(EpsilonGreedy(0.5, 6, seed=7), 0, 10)


def test_state_dict_round_trip_reproduces_future_actions() -> None:
    explorer = EpsilonGreedy(0.5, num_actions=6, seed=0)
    _rollout(explorer, 0, 5)  # advance the generator
    buf = io.BytesIO()
    torch.save({"exploration": explorer.state_dict()}, buf)
    buf.seek(0)
    state = torch.load(buf, weights_only=True)["exploration"]

    restored = EpsilonGreedy(0.5, num_actions=6, seed=999)
    fresh = EpsilonGreedy(0.5, num_actions=6, seed=999)
    restored.load_state_dict(state)
    expected = _rollout(explorer, 5, 10)
    assert _rollout(restored, 5, 10) == expected
    assert _rollout(fresh, 5, 10) != expected  # the check above can fail


def test_greedy_shape_is_checked() -> None:
    explorer = EpsilonGreedy(0.0, num_actions=2, seed=0)
    with pytest.raises(ValueError):
        explorer.select(0, 3, lambda: np.zeros(2, dtype=np.int64))


@pytest.mark.parametrize("num_envs", [1, 64])
@pytest.mark.parametrize("eps", [0.05, 0.3, 1.0])
def test_random_actions_are_uniform_and_taken_at_rate_epsilon(num_envs: int, eps: float) -> None:
    """One draw u decides both: explore if u < eps, then action floor(u / eps * A) must be uniform."""
    num_actions, steps = 5, 40_000 // num_envs
    explorer = EpsilonGreedy(eps, num_actions=num_actions, seed=3)
    picks = np.concatenate([explorer.select(s, num_envs, lambda: np.full(num_envs, -1)) for s in range(steps)])
    explored = picks[picks != -1]
    n = picks.size
    assert abs(explored.size / n - eps) < 4 * np.sqrt(eps * (1 - eps) / n) + 1e-12
    counts = np.bincount(explored, minlength=num_actions)
    assert counts.size == num_actions  # never an out-of-range action
    expected = explored.size / num_actions
    chi2 = float(((counts - expected) ** 2 / expected).sum())
    assert chi2 < 18.5  # chi-square, 4 degrees of freedom: P(chi2 > 18.5) ~ 0.001


def test_one_env_and_vector_paths_make_the_same_choices() -> None:
    """The scalar fast path draws exactly what the vector path draws for one env."""
    scalar = EpsilonGreedy(LinearSchedule(1.0, 0.1, 300), num_actions=3, seed=11)
    vector = EpsilonGreedy(LinearSchedule(1.0, 0.1, 300), num_actions=3, seed=11)
    greedy = np.array([7], dtype=np.int64)  # marks exploiting steps
    for step in range(400):
        np.testing.assert_array_equal(scalar.select(step, 1, lambda: greedy),
                                      vector._select_many(step, 1, lambda: greedy))


def test_delayed_linear_schedule_is_dopamines_linearly_decaying_epsilon() -> None:
    # Dopamine's linearly_decaying_epsilon(decay_period=5000, step, warmup_steps=1600, epsilon=0.01), by hand:
    # 0.01 + clip(0.99 * (5000 + 1600 - step) / 5000, 0, 0.99)
    s = LinearSchedule(1.0, 0.01, duration=5000, delay=1600)
    for step, expected in [(0, 1.0), (1600, 1.0), (4100, 0.505), (6600, 0.01), (90_000, 0.01)]:
        assert s.value(step) == pytest.approx(expected)
    assert LinearSchedule(1.0, 0.1, duration=0, delay=10).value(9) == 1.0
    assert LinearSchedule(1.0, 0.1, duration=0, delay=10).value(10) == pytest.approx(0.1)
