"""SingleEnvVector behaves step for step like gymnasium's SyncVectorEnv (SAME_STEP) with one env."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from qlearn.envs import episode_stats, final_next_obs, make_single_env
from qlearn.single_vector import SingleEnvVector


def compare(env_id: str, steps: int) -> int:
    fn = lambda: make_single_env(env_id)  # noqa: E731
    ours = SingleEnvVector(fn)
    ref = gym.vector.SyncVectorEnv([fn], autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)
    obs_a, info_a = ours.reset(seed=3)
    obs_b, info_b = ref.reset(seed=3)
    np.testing.assert_array_equal(obs_a, obs_b)
    assert set(info_a) == set(info_b)
    rng = np.random.default_rng(0)
    finished = 0
    for _ in range(steps):
        action = rng.integers(ours.single_action_space.n, size=1)
        a = ours.step(action)
        b = ref.step(action)
        for x, y in zip(a[:4], b[:4]):
            np.testing.assert_array_equal(x, y)
            assert x.dtype == y.dtype and x.shape == y.shape
        done = a[2] | a[3]
        np.testing.assert_array_equal(final_next_obs(a[0], a[4], done), final_next_obs(b[0], b[4], done))
        assert episode_stats(a[4], done) == episode_stats(b[4], done)
        assert set(a[4]) == set(b[4])
        if "final_info" in a[4]:
            assert set(a[4]["final_info"]) == set(b[4]["final_info"])
        finished += int(done[0])
    ours.close()
    ref.close()
    return finished


def test_cartpole_matches_sync_vector_env() -> None:
    assert compare("CartPole-v1", 3000) > 50


def test_atari_matches_sync_vector_env() -> None:
    pytest.importorskip("ale_py")
    compare("PongNoFrameskip-v4", 300)


def test_spaces_and_metadata() -> None:
    env = SingleEnvVector(lambda: make_single_env("CartPole-v1"))
    assert env.num_envs == 1 and env.metadata["autoreset_mode"] == gym.vector.AutoresetMode.SAME_STEP
    assert env.action_space.sample().shape == (1,)
    assert env.observation_space.shape == (1, 4)
