"""env.backend=envpool: EnvPool's Atari and MuJoCo behind qlearn's vector-env contract (SAME_STEP autoreset, the true
final observation in infos, raw episode returns and lengths), and what it cannot do refused in one line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from qlearn.envs import episode_stats, final_next_obs, make_env
from qlearn.errors import QlearnError

envpool = pytest.importorskip("envpool")


def test_atari_episodes_end_and_restart_in_the_same_step_with_no_extra_reset_step() -> None:
    env = make_env("PongNoFrameskip-v4", num_envs=2, seed=0, backend="envpool", max_episode_steps=20)
    assert env.metadata["autoreset_mode"].name == "SAME_STEP"
    obs, info = env.reset(seed=0)
    assert obs.shape == (2, 4, 84, 84) and obs.dtype == np.uint8 and "lives" in info
    ends, lengths = [], []
    for t in range(1, 46):
        next_obs, rewards, terminated, truncated, infos = env.step(np.zeros(2, dtype=np.int64))
        done = terminated | truncated
        if done.any():
            ends.append(t)
            lengths += [length for _, length in episode_stats(infos, done)]
            stored = final_next_obs(next_obs, infos, done)
            assert not np.array_equal(stored[0], next_obs[0])  # the last frame of the old episode, not the new first
            assert np.array_equal(stored[0, :3], obs[0, 1:])  # it continues the stack the agent saw
        obs = next_obs
    # every episode is exactly 20 agent steps: no pending reset step was left inside the next episode
    assert ends == [20, 40] and lengths == [20, 20, 20, 20]
    env.close()


def test_mujoco_returns_are_the_sum_of_the_episode_rewards_and_observations_float32() -> None:
    env = make_env("Hopper-v5", num_envs=1, seed=0, backend="envpool")
    obs, _ = env.reset(seed=0)
    assert obs.dtype == np.float32 and env.single_observation_space.dtype == np.float32
    total, finished = 0.0, None
    for _ in range(1000):
        obs, reward, terminated, truncated, infos = env.step(env.action_space.sample())
        total += float(reward[0])
        done = terminated | truncated
        if done[0]:
            finished = episode_stats(infos, done)[0]
            assert infos["final_obs"][0].dtype == np.float32
            break
    assert finished is not None and finished[0] == pytest.approx(total)  # a random Hopper falls within 1000 steps
    env.close()


def test_what_envpool_cannot_do_is_refused_in_one_line() -> None:
    with pytest.raises(QlearnError, match="runs Atari and MuJoCo envs; 'CartPole-v1' is neither"):
        make_env("CartPole-v1", backend="envpool")
    with pytest.raises(QlearnError, match="life_loss_reset and other fire_reset_actions need env.backend=gymnasium"):
        make_env("BreakoutNoFrameskip-v4", backend="envpool", life_loss_reset=True)
    with pytest.raises(QlearnError, match="backend must be 'gymnasium' or 'envpool'"):
        make_env("CartPole-v1", backend="brax")


def test_qlearn_train_runs_on_envpool(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "qlearn.cli.train", "experiment=sac_mujoco", "env.backend=envpool",
                           "total_steps=300", "trainer.random_steps=200", "trainer.learning_starts=256",
                           "eval.every=300", "eval.episodes=1", "+env.max_episode_steps=100", "logger=none",
                           "device=cpu", f"hydra.run.dir={tmp_path / 'run'}"], capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "sac on Hopper-v5 seed 0: 300 env steps" in proc.stdout
