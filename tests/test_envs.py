"""Tests for qlearn.envs: shapes, SAME_STEP autoreset, truncation, episode stats, Atari pipeline."""

from __future__ import annotations

import sys
from typing import Any

import gymnasium as gym
import numpy as np
import pytest

from qlearn.envs import (
    AtariOptions,
    EnvConfigError,
    FireResetEnv,
    LifeLossResetEnv,
    assert_same_step,
    episode_stats,
    final_next_obs,
    is_atari,
    make_env,
    make_single_env,
)
from qlearn.errors import QlearnError
from qlearn.types import EnvSpec

COUNTER_ID = "QlearnTest/Counter-v0"


def counter_length(episode: int) -> int:
    """Known episode lengths: 2, 3, 4, 5, 2, 3, ..."""
    return 2 + episode % 4


class CounterEnv(gym.Env):
    """Observation ``[episode, t]``; reward ``t`` at step t; terminates after `counter_length` steps.

    ``episode`` starts at ``1000 * seed`` on a seeded reset so sub-envs are distinguishable.
    """

    metadata: dict[str, Any] = {"render_modes": []}

    def __init__(self) -> None:
        self.observation_space = gym.spaces.Box(0.0, 1e6, shape=(2,), dtype=np.float32)
        self.action_space = gym.spaces.Discrete(2)
        self.episode, self.t = -1, 0

    def _obs(self) -> np.ndarray:
        return np.array([self.episode, self.t], dtype=np.float32)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.episode = 1000 * seed if seed is not None else self.episode + 1
        self.t = 0
        return self._obs(), {}

    def step(self, action: int):
        self.t += 1
        terminated = self.t >= counter_length(self.episode)
        return self._obs(), float(self.t), terminated, False, {}


if COUNTER_ID not in gym.registry:
    gym.register(COUNTER_ID, entry_point=CounterEnv)


def rollout(env: gym.vector.VectorEnv, steps: int, fix: bool):
    """(obs, next_obs, terminated, truncated) rows; ``fix`` applies final_next_obs."""
    obs, _ = env.reset(seed=1)
    rows = []
    for _ in range(steps):
        next_obs, _, term, trunc, infos = env.step(env.action_space.sample())
        done = term | trunc
        stored = final_next_obs(next_obs, infos, done) if fix else next_obs
        for i in range(env.num_envs):
            rows.append((obs[i].copy(), stored[i].copy(), bool(term[i]), bool(trunc[i])))
        obs = next_obs
    return rows


# --------------------------------------------------------------------------- basics


def test_is_atari() -> None:
    assert is_atari("PongNoFrameskip-v4") and is_atari("ALE/Breakout-v5")
    assert not is_atari("CartPole-v1") and not is_atari("Hopper-v5")


@pytest.mark.parametrize("num_envs", [1, 3])
def test_cartpole_shapes(num_envs: int) -> None:
    env = make_env("CartPole-v1", num_envs=num_envs, seed=0)
    assert isinstance(env, gym.vector.VectorEnv)
    assert env.metadata["autoreset_mode"] == gym.vector.AutoresetMode.SAME_STEP
    obs, _ = env.reset(seed=0)
    assert obs.shape == (num_envs, 4)
    obs, rew, term, trunc, _ = env.step(env.action_space.sample())
    assert obs.shape == (num_envs, 4) and rew.shape == term.shape == trunc.shape == (num_envs,)
    spec = EnvSpec.from_env(env)
    assert spec.obs_shape == (4,) and spec.num_actions == 2
    env.close()


def test_unknown_id_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="pprint_registry"):
        make_env("NoSuchEnvQlearn-v0")
    with pytest.raises(QlearnError, match="NoSuchEnvQlearn-v0"):
        make_single_env("NoSuchEnvQlearn-v0")
    with pytest.raises(ValueError, match="vectorization"):
        make_env("CartPole-v1", vectorization="threads")


def test_make_single_env_is_not_vectorised() -> None:
    env = make_single_env("CartPole-v1", render_mode="rgb_array")
    assert not isinstance(env, gym.vector.VectorEnv)
    assert env.render_mode == "rgb_array" == env.unwrapped.render_mode  # ready for RecordVideo
    env.close()


def test_seeded_reset_reproducible_and_sub_envs_differ() -> None:
    a, b = make_env("CartPole-v1", num_envs=2, seed=3), make_env("CartPole-v1", num_envs=2, seed=3)
    obs_a, _ = a.reset(seed=3)
    obs_b, _ = b.reset(seed=3)
    np.testing.assert_array_equal(obs_a, obs_b)
    assert not np.array_equal(obs_a[0], obs_a[1])  # sub-env i gets seed + i
    np.testing.assert_array_equal(a.action_space.sample(), b.action_space.sample())


# --------------------------------------------------------------------------- autoreset


@pytest.mark.parametrize("vectorization", ["sync", "async"])
def test_same_step_never_joins_final_to_reset(vectorization: str) -> None:
    env = make_env(COUNTER_ID, num_envs=2, vectorization=vectorization)
    rows = rollout(env, steps=60 if vectorization == "sync" else 30, fix=True)
    env.close()
    finals = set()
    for obs, nxt, term, _ in rows:
        # Same episode, one step later: never s_final -> s_reset.
        assert nxt[0] == obs[0] and nxt[1] == obs[1] + 1, (obs, nxt)
        if term:
            assert nxt[1] == counter_length(int(nxt[0]))  # the true final obs
            finals.add((int(nxt[0]), int(nxt[1])))
    # Both sub-envs finished several episodes, each final obs was stored as a next_obs.
    assert {ep // 1000 for ep, _ in finals} == {1, 2} and len(finals) >= 10


def test_next_step_mode_has_the_trap() -> None:
    """Default NEXT_STEP autoreset really produces s_final -> s_reset pairs, and we refuse it."""
    env = gym.vector.SyncVectorEnv([lambda: gym.make(COUNTER_ID)] * 2)
    with pytest.raises(RuntimeError, match="SAME_STEP"):
        assert_same_step(env)
    rows = rollout(env, steps=30, fix=False)
    assert any(nxt[0] != obs[0] for obs, nxt, _, _ in rows)
    env.reset(seed=0)
    for _ in range(2):  # episode 0 has length 2
        next_obs, _, term, trunc, infos = env.step(env.action_space.sample())
    assert term.all()
    with pytest.raises(KeyError, match="SAME_STEP"):
        final_next_obs(next_obs, infos, term | trunc)
    env.close()


def test_time_limit_is_truncation_not_termination() -> None:
    env = make_env(COUNTER_ID, num_envs=1, max_episode_steps=3)
    env.reset(seed=3)  # episode 3000: length 2 + 3000 % 4 = 2 -> terminates first
    _, _, term, trunc, _ = env.step([0])
    _, _, term, trunc, _ = env.step([0])
    assert term[0] and not trunc[0]
    # next episode 3001 has length 3 -> terminates at the same step as the limit: terminated wins
    for _ in range(3):
        _, _, term, trunc, _ = env.step([0])
    assert term[0]
    # episode 3002 has length 4 > 3: truncated by the time limit
    for _ in range(3):
        _, _, term, trunc, infos = env.step([0])
    assert trunc[0] and not term[0]
    assert infos["final_obs"][0][1] == 3
    env.close()

    cart = make_env("CartPole-v1", num_envs=1, max_episode_steps=5)
    cart.reset(seed=0)
    for t in range(5):
        _, _, term, trunc, _ = cart.step([t % 2])
    assert trunc[0] and not term[0]
    cart.close()


def test_episode_stats() -> None:
    env = make_env(COUNTER_ID, num_envs=2)
    env.reset(seed=1)  # episodes 1000 (length 2) and 2000 (length 2)
    _, _, term, trunc, infos = env.step(np.zeros(2, dtype=np.int64))
    assert episode_stats(infos, term | trunc) == []
    _, _, term, trunc, infos = env.step(np.zeros(2, dtype=np.int64))
    assert term.all()
    assert episode_stats(infos, term | trunc) == [(3.0, 2), (3.0, 2)]  # reward 1 + 2
    stats = []
    for _ in range(3):  # episodes 1001 / 2001: length 3, return 1 + 2 + 3
        _, _, term, trunc, infos = env.step(np.zeros(2, dtype=np.int64))
        stats += episode_stats(infos, term | trunc)
    assert stats == [(6.0, 3), (6.0, 3)]
    env.close()


# --------------------------------------------------------------------------- Atari


def test_missing_ale_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ale_py", None)  # makes `import ale_py` fail
    with pytest.raises(ImportError, match=r"qlearn\[atari\]"):
        make_env("PongNoFrameskip-v4")


def test_atari_pong() -> None:
    pytest.importorskip("ale_py")
    pytest.importorskip("cv2")
    env = make_env("PongNoFrameskip-v4", num_envs=1, sticky_action_prob=0.25)
    obs, info = env.reset(seed=0)
    assert obs.shape == (1, 4, 84, 84) and obs.dtype == np.uint8
    for k in range(1, 4):  # reset padding repeats the first frame
        np.testing.assert_array_equal(obs[0, 0], obs[0, k])
    assert "lives" in info
    for _ in range(10):
        obs, rew, term, trunc, info = env.step(env.action_space.sample())
    assert obs.shape == (1, 4, 84, 84) and not np.array_equal(obs[0, 0], obs[0, 3])
    assert "lives" in info and not term[0] and not trunc[0]
    ale = env.envs[0].unwrapped.ale
    assert ale.getFloat("repeat_action_probability") == pytest.approx(0.25)
    assert ale.getInt("max_num_frames_per_episode") == 108_000
    spec = EnvSpec.from_env(env)
    assert spec.obs_shape == (4, 84, 84) and spec.obs_dtype == "uint8" and spec.num_actions == 6
    env.close()


def test_atari_v5_and_agent_step_time_limit() -> None:
    pytest.importorskip("ale_py")
    pytest.importorskip("cv2")
    env = make_single_env(
        "ALE/Pong-v5", max_episode_steps=5, frame_stack=2, screen_size=64, render_mode="rgb_array"
    )
    assert env.unwrapped._frameskip == 1  # AtariPreprocessing does the skip
    assert env.unwrapped.ale.getFloat("repeat_action_probability") == 0.0
    obs, _ = env.reset(seed=0)
    assert obs.shape == (2, 64, 64) and env.render().shape == (210, 160, 3)
    for _ in range(5):
        _, _, term, trunc, info = env.step(0)
    assert trunc and not term and info["episode"]["l"] == 5
    env.close()


def test_atari_options_have_one_owner() -> None:
    """Keywords override the options object; config lists become tuples; a misspelt name is refused."""
    base = AtariOptions(frame_stack=2)
    assert AtariOptions.of(base, screen_size=64) == AtariOptions(frame_stack=2, screen_size=64)
    assert AtariOptions.of(fire_reset_actions=[1, 2]).fire_reset_actions == (1, 2)
    with pytest.raises(EnvConfigError, match="frame_stak"):
        make_env("PongNoFrameskip-v4", frame_stak=4)


def record_ale_actions(env: gym.Env) -> list[int]:
    """The actions the ALE env receives from now on, one per emulated frame."""
    actions: list[int] = []
    ale_env = env.unwrapped
    step = ale_env.step

    def recording_step(action: int) -> Any:
        actions.append(int(action))
        return step(action)

    ale_env.step = recording_step
    return actions


BREAKOUT_LEFT = 3  # Breakout's actions: NOOP, FIRE, RIGHT, LEFT; holding LEFT loses a life within ~25 steps


@pytest.mark.parametrize(
    ("options", "after_reset", "after_life_loss"),
    [
        ({}, [1] * 4, []),  # the default: FIRE on reset only
        ({"life_loss_reset": True}, [1] * 4, [0] * 4 + [1] * 4),
        (  # CleanRL: FireResetEnv (FIRE, action 2); EpisodicLifeEnv.reset's no-op, then FireResetEnv
            {"life_loss_reset": True, "fire_reset_actions": [1, 2]},
            [1] * 4 + [2] * 4,
            [0] * 4 + [1] * 4 + [2] * 4,
        ),
    ],
)
def test_breakout_reset_and_life_loss_steps(
    options: dict[str, Any], after_reset: list[int], after_life_loss: list[int]
) -> None:
    pytest.importorskip("ale_py")
    pytest.importorskip("cv2")
    env = make_single_env("BreakoutNoFrameskip-v4", **options)
    frames = record_ale_actions(env)
    _, info = env.reset(seed=0)
    noops = frames[: len(frames) - len(after_reset)]
    assert frames[len(noops) :] == after_reset and 1 <= len(noops) <= 30 and set(noops) == {0}
    lives = info["lives"]
    assert lives == 5
    for _ in range(100):
        frames.clear()
        _, _, term, trunc, info = env.step(BREAKOUT_LEFT)
        if info["lives"] < lives:
            break
    else:
        pytest.fail("holding LEFT lost no life in 100 steps")
    # the step that lost the life, then the extra steps; infos["lives"] shows the loss (read by the trainer)
    assert frames == [BREAKOUT_LEFT] * 4 + after_life_loss
    assert info["lives"] == lives - 1 and not term and not trunc
    frames.clear()
    env.step(BREAKOUT_LEFT)
    assert frames == [BREAKOUT_LEFT] * 4  # the agent plays on
    env.close()


def test_dqn_atari_preset_takes_cleanrl_reset_steps() -> None:
    """The preset builds an env with CleanRL's reset steps; the plain atari env keeps the defaults."""
    pytest.importorskip("ale_py")
    pytest.importorskip("cv2")
    from hydra import compose, initialize_config_dir

    from qlearn.cli.build import CONFIG_DIR, build_env

    def wrappers(overrides: list[str]) -> tuple[Any, dict[type, gym.Env]]:
        with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
            cfg = compose("train", overrides=[*overrides, "env.id=BreakoutNoFrameskip-v4"])
        env, found = build_env(cfg.env, seed=0).envs[0], {}
        while isinstance(env, gym.Wrapper):
            found[type(env)] = env
            env = env.env
        return cfg, found

    cfg, found = wrappers(["experiment=dqn_atari"])
    assert cfg.env.terminal_on_life_loss
    assert found[FireResetEnv].actions == (1, 2) and found[LifeLossResetEnv].actions == (0, 1, 2)
    cfg, found = wrappers(["env=atari"])
    assert not cfg.env.terminal_on_life_loss
    assert found[FireResetEnv].actions == (1,) and LifeLossResetEnv not in found
