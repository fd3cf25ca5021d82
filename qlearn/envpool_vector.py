"""EnvPool (Weng et al., 2022, "EnvPool: A Highly Parallel Reinforcement Learning Environment Execution Engine") as a
qlearn vector env: ``env.backend=envpool`` for Atari and MuJoCo.

EnvPool resets a finished env on the *next* ``step`` (a NEXT_STEP autoreset, whose extra step would be a fake
transition, STYLE.md trap 2). `EnvPoolVector` keeps qlearn's SAME_STEP guarantee instead: after a step it resets the
finished envs at once (``reset(env_ids)``, which clears EnvPool's pending reset), returns their first observation
and puts the true last one in ``infos["final_obs"]``, and writes ``RecordEpisodeStatistics``' episode returns and
lengths into ``infos["final_info"]``, exactly as `qlearn.envs.make_env`'s gymnasium vector envs do.

Atari runs EnvPool's own preprocessing with qlearn's settings (no-op starts, max-pooled frame skip, 84x84 grey with
area resize, frame stack, sticky actions, FIRE after reset, the 108,000-frame cap); rewards stay raw and life loss
is not terminal (the trainer does either for learning only, from ``infos["lives"]``). MuJoCo observations are cast
to float32, as the gymnasium path does.
"""

from __future__ import annotations

import re
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode
from gymnasium.vector.utils import batch_space

from qlearn.errors import QlearnError

ATARI_ID = re.compile(r"^(?:ALE/)?([A-Za-z]+?)(?:NoFrameskip)?-v\d+$")
MUJOCO_IDS = ("Ant", "HalfCheetah", "Hopper", "Humanoid", "HumanoidStandup", "InvertedDoublePendulum",
              "InvertedPendulum", "Pusher", "Reacher", "Swimmer", "Walker2d")


def envpool_task(env_id: str, atari: bool) -> str:
    """EnvPool's task id: ``PongNoFrameskip-v4`` / ``ALE/Pong-v5`` -> ``Pong-v5``; MuJoCo ids -> their ``-v5``."""
    if atari:
        found = ATARI_ID.match(env_id)
        if found is None:
            raise QlearnError(f"env.backend=envpool cannot map the Atari id {env_id!r} to an EnvPool task "
                              "(expected <Game>NoFrameskip-v4 or ALE/<Game>-v5).")
        return f"{found.group(1)}-v5"
    name = env_id.split("-v")[0]
    if name not in MUJOCO_IDS:
        raise QlearnError(f"env.backend=envpool runs Atari and MuJoCo envs; {env_id!r} is neither: use "
                          "env.backend=gymnasium.")
    return f"{name}-v5"


class EnvPoolVector(gym.vector.VectorEnv):
    """An EnvPool pool behind the ``gymnasium.vector.VectorEnv`` API, in SAME_STEP autoreset (see the module doc)."""

    metadata = {"autoreset_mode": AutoresetMode.SAME_STEP}

    def __init__(self, task: str, num_envs: int, seed: int, **envpool_kwargs: Any) -> None:
        try:
            import envpool
        except ImportError:
            raise QlearnError('env.backend=envpool needs EnvPool: pip install "qlearn[envpool]", or use '
                              "env.backend=gymnasium.") from None
        self._make = lambda s: envpool.make(task, env_type="gymnasium", num_envs=num_envs, seed=s,
                                            **envpool_kwargs)
        self.pool, self._seed = self._make(seed), seed
        self.num_envs = num_envs
        space = self.pool.observation_space
        self._float32 = isinstance(space, gym.spaces.Box) and space.dtype == np.float64  # MuJoCo
        if self._float32:
            space = gym.spaces.Box(space.low.astype(np.float32), space.high.astype(np.float32), space.shape,
                                   np.float32)
        self.single_observation_space = space
        self.single_action_space = self.pool.action_space
        self.observation_space = batch_space(space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self._returns = np.zeros(num_envs, dtype=np.float64)
        self._lengths = np.zeros(num_envs, dtype=np.int64)

    def _obs(self, obs: np.ndarray) -> np.ndarray:
        return obs.astype(np.float32) if self._float32 else obs

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        """EnvPool seeds at construction (env ``i`` from ``seed + i``); another seed builds the pool again."""
        if seed is not None and seed != self._seed:
            self.pool.close()
            self.pool, self._seed = self._make(seed), seed
        obs, info = self.pool.reset()
        self._returns[:] = 0.0
        self._lengths[:] = 0
        return self._obs(obs), {"lives": info["lives"]} if "lives" in info else {}

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict]:
        obs, rewards, terminated, truncated, info = self.pool.step(np.asarray(actions))
        obs = self._obs(obs)
        self._returns += rewards
        self._lengths += 1
        infos: dict[str, Any] = {"lives": np.array(info["lives"], copy=True)} if "lives" in info else {}
        done = np.logical_or(terminated, truncated)
        if done.any():
            ids = np.flatnonzero(done)
            obs = np.array(obs, copy=True)  # rows are replaced below; copy only on steps that end an episode
            final_obs = np.empty(self.num_envs, dtype=object)
            final_obs[ids] = list(obs[ids])
            first, first_info = self.pool.reset(ids)  # SAME_STEP: the next episode starts now
            obs[first_info["env_id"]] = self._obs(first)
            if "lives" in infos:  # as the gymnasium envs report them: the new episode's
                infos["lives"][first_info["env_id"]] = first_info["lives"]
            episode = {"r": np.where(done, self._returns, 0.0), "l": np.where(done, self._lengths, 0),
                       "_r": done, "_l": done}
            infos.update({"final_obs": final_obs, "_final_obs": done,
                          "final_info": {"episode": episode, "_episode": done}, "_final_info": done})
            self._returns[ids] = 0.0
            self._lengths[ids] = 0
        return obs, rewards.astype(np.float64), terminated, truncated, infos

    def close(self, **kwargs: Any) -> None:
        self.pool.close()


def make_envpool(env_id: str, *, num_envs: int, seed: int, atari: bool, options: Any, max_episode_steps: int | None,
                 render_mode: str | None, env_kwargs: dict | None) -> EnvPoolVector:
    """`EnvPoolVector` with `qlearn.envs.make_env`'s settings (``options``: its `AtariOptions`); settings EnvPool
    cannot honour are refused in one line. ``env_kwargs`` go to ``envpool.make``."""
    from qlearn.envs import ATARI_MAX_FRAMES

    if render_mode is not None:
        raise QlearnError("env.backend=envpool does not render; use env.backend=gymnasium for videos.")
    kwargs: dict[str, Any] = {}
    if atari:
        if options.life_loss_reset or options.fire_reset_actions not in ((), (1,)):
            raise QlearnError("env.backend=envpool presses FIRE (action 1) after a reset or nothing; "
                              "life_loss_reset and other fire_reset_actions need env.backend=gymnasium.")
        kwargs = {"stack_num": options.frame_stack, "frame_skip": options.frame_skip, "noop_max": options.noop_max,
                  "img_height": options.screen_size, "img_width": options.screen_size,
                  "repeat_action_probability": options.sticky_action_prob, "use_fire_reset": bool(options.fire_reset_actions),
                  "episodic_life": False, "reward_clip": False, "gray_scale": True, "use_inter_area_resize": True,
                  "max_episode_steps": max_episode_steps or ATARI_MAX_FRAMES // options.frame_skip}
    elif max_episode_steps is not None:
        kwargs["max_episode_steps"] = max_episode_steps
    kwargs.update(env_kwargs or {})
    return EnvPoolVector(envpool_task(env_id, atari), num_envs, seed, **kwargs)
