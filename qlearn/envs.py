"""Environment construction: one `make_env` for classic control, MuJoCo and Atari.

Every env is a ``gymnasium.vector.VectorEnv`` in ``AutoresetMode.SAME_STEP``: a sub-env whose
episode ends is reset inside the same ``step()``; the observation returned for it is already the
first observation of the next episode, and the true last observation sits in
``infos["final_obs"][i]`` (mask ``infos["_final_obs"]``), its step info in
``infos["final_info"]`` (mask ``infos["_final_info"]``). Use `final_next_obs` before storing
transitions, so a buffer never joins s_final to s_reset (STYLE.md, trap 2).

Seeding: `make_env` seeds the action spaces (for ``env.action_space.sample()``) but does not
reset. The caller's first reset must be ``env.reset(seed=seed)``; Gymnasium 1.x then seeds
sub-env ``i`` with ``seed + i``. Later resets happen automatically and must not pass a seed.

Atari follows Mnih et al. (2015, "Human-level control through deep reinforcement learning",
Nature) for preprocessing (max-pooled frame skip 4, 84x84 grayscale, stack of 4, up to 30 no-op
starts) and Machado et al. (2018, "Revisiting the Arcade Learning Environment", JAIR) for the
optional sticky actions and the 108,000-frame episode cap. Rewards are *not* clipped and life
loss is *not* terminal here: the trainer may do either for learning only, using
``infos["lives"]``.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from functools import partial
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode

from qlearn.errors import QlearnError
from qlearn.single_vector import SingleEnvVector

__all__ = [
    "AtariOptions",
    "EnvConfigError",
    "MissingAtariError",
    "FireResetEnv",
    "LifeLossResetEnv",
    "assert_same_step",
    "episode_stats",
    "final_next_obs",
    "is_atari",
    "make_env",
    "make_single_env",
]

ATARI_MAX_FRAMES = 108_000  # 30 minutes at 60 Hz; ALE v4/v5 default (Machado et al., 2018)


class EnvConfigError(QlearnError, ValueError):
    """Unknown env id or invalid env option."""


class MissingAtariError(QlearnError, ImportError):
    """ale-py or OpenCV is not installed."""


def is_atari(env_id: str) -> bool:
    """True for ids handled by the Atari pipeline: ``*NoFrameskip*`` and ``ALE/*``."""
    return "NoFrameskip" in env_id or env_id.startswith("ALE/")


def _register_ale() -> None:
    """Register the ALE envs with Gymnasium (lazily: only Atari users need ale_py and cv2)."""
    try:
        import ale_py
        import cv2  # noqa: F401  (AtariPreprocessing resizes with OpenCV)
    except ImportError as e:
        raise MissingAtariError(
            f"Atari environments need ale-py and OpenCV ({e}); "
            'install them with: pip install "qlearn[atari]"'
        ) from e
    gym.register_envs(ale_py)


def _class_entry_point(env_id: str) -> gym.envs.registration.EnvSpec | None:
    """An unregistered ``"package.module:EnvClass"`` as a spec ``gymnasium.make`` builds (``env.id=my.envs:Maze``);
    ``None`` for registered ids and gymnasium's own ``"module:Env-v0"`` (import the module, then make the id)."""
    module, sep, name = env_id.partition(":")
    if not sep or not name.isidentifier():
        return None
    try:
        target = getattr(importlib.import_module(module), name, None)
    except ImportError:
        return None
    if not (isinstance(target, type) and issubclass(target, gym.Env)):
        return None
    return gym.envs.registration.EnvSpec(id=name, entry_point=env_id)


def _gym_make(env_id: str, **kwargs: Any) -> gym.Env:
    """``gymnasium.make`` with a clearer error for ids that are not registered and keyword arguments the env
    does not take (``+env.kwargs.<name>`` on the command line)."""
    try:
        return gym.make(_class_entry_point(env_id) or env_id, **kwargs)
    except (gym.error.NameNotFound, gym.error.NamespaceNotFound, gym.error.VersionNotFound) as e:
        raise EnvConfigError(
            f"unknown environment id {env_id!r} ({e}); "
            "run `gymnasium.pprint_registry()` to list the registered ids."
        ) from e
    except TypeError as e:
        bad = re.search(r"unexpected keyword argument '(\w+)'", str(e))
        if bad is None:
            raise
        raise EnvConfigError(
            f"{env_id} does not take the keyword argument {bad.group(1)!r} (env.kwargs / env_kwargs); remove it or "
            f"use one of the env's own arguments (see its class's __init__)."
        ) from e


@dataclass(frozen=True)
class AtariOptions:
    """The Atari pipeline's settings, owned here; `make_env` builds them once for all sub-envs.

    Args:
        frame_stack: frames per observation (Mnih et al., 2015: 4).
        frame_skip: agent steps last this many frames, the last two max-pooled.
        noop_max: a reset takes 1..noop_max no-op frames (0: none).
        screen_size: observations are ``screen_size`` x ``screen_size`` grey frames.
        sticky_action_prob: ALE ``repeat_action_probability`` (Machado et al., 2018: 0.25).
        fire_reset_actions: actions pressed after a reset in games with FIRE (action 1); SB3's
            FireResetEnv, used by CleanRL, presses ``(1, 2)``. Empty: none.
        life_loss_reset: after a lost life, take the steps CleanRL's reset takes there (see
            `LifeLossResetEnv`) before the agent's next observation.
    """

    frame_stack: int = 4
    frame_skip: int = 4
    noop_max: int = 30
    screen_size: int = 84
    sticky_action_prob: float = 0.0
    fire_reset_actions: tuple[int, ...] = (1,)
    life_loss_reset: bool = False

    def __post_init__(self) -> None:  # configs give lists; keep the options hashable
        object.__setattr__(self, "fire_reset_actions", tuple(int(a) for a in self.fire_reset_actions))

    @classmethod
    def of(cls, options: AtariOptions | None = None, **overrides: Any) -> AtariOptions:
        """``options`` (default: the defaults) with ``overrides``; unknown names raise `EnvConfigError`."""
        unknown = sorted(set(overrides) - {f.name for f in fields(cls)})
        if unknown:
            raise EnvConfigError(
                f"unknown env option(s) {unknown}; Atari options are {[f.name for f in fields(cls)]}"
            )
        return replace(options or cls(), **overrides)


class FireResetEnv(gym.Wrapper):
    """Press FIRE (then the rest of ``actions``) after every reset, for games that wait for it (Breakout).

    Gymnasium has no such wrapper; this is the usual DQN-era convenience (Mnih et al., 2015 setups).
    SB3's FireResetEnv (``stable_baselines3/common/atari_wrappers.py``) presses FIRE, then action 2.
    The steps are not seen by wrappers outside this one, so they add no length or reward.
    """

    def __init__(self, env: gym.Env, actions: Sequence[int] = (1,)) -> None:
        super().__init__(env)
        meanings = env.unwrapped.get_action_meanings()
        if len(meanings) < 2 or meanings[1] != "FIRE":
            raise ValueError(f"FireResetEnv needs action 1 to be FIRE, got {meanings}")
        if not all(0 <= a < len(meanings) for a in actions):
            raise ValueError(f"FireResetEnv actions {tuple(actions)} are not all in {meanings}")
        self.actions = tuple(actions)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Any, dict[str, Any]]:
        obs, info = self.env.reset(seed=seed, options=options)
        for action in self.actions:
            obs, _, terminated, truncated, info = self.env.step(action)
            if terminated or truncated:  # practically never; start over rather than return a dead state
                return self.env.reset(options=options)
        return obs, info


class LifeLossResetEnv(gym.Wrapper):
    """After a lost life (game not over), take ``actions`` before the agent sees the game again.

    CleanRL's ``dqn_atari.py`` ends an episode at a lost life (EpisodicLifeEnv in
    ``cleanrl_utils/atari_wrappers.py``, SB3's wrappers); the vector env then resets it, which steps
    a no-op (``EpisodicLifeEnv.reset``) and FireResetEnv's actions before the next observation. With ``actions = (0, *fire_reset_actions)`` this takes the same agent steps
    inside the step that lost the life, so the game stays one episode (the trainer's life-loss
    terminal is for learning only, DESIGN.md). A life counts as lost as in EpisodicLifeEnv:
    ``0 < lives < previous lives``. The steps' rewards are added to that step's (practically always 0).
    """

    def __init__(self, env: gym.Env, actions: Sequence[int]) -> None:
        super().__init__(env)
        self.actions = tuple(actions)
        self.lives = 0

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Any, dict[str, Any]]:
        obs, info = self.env.reset(seed=seed, options=options)
        self.lives = self.env.unwrapped.ale.lives()
        return obs, info

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        if 0 < self.env.unwrapped.ale.lives() < self.lives:
            for restart_action in self.actions:
                if terminated or truncated:
                    break
                obs, restart_reward, terminated, truncated, info = self.env.step(restart_action)
                reward = float(reward) + float(restart_reward)
        self.lives = self.env.unwrapped.ale.lives()
        return obs, reward, terminated, truncated, info


def _to_float32(obs: np.ndarray) -> np.ndarray:
    return obs.astype(np.float32)


def make_single_env(
    env_id: str,
    *,
    atari: bool | None = None,
    atari_options: AtariOptions | None = None,
    max_episode_steps: int | None = None,
    render_mode: str | None = None,
    env_kwargs: dict | None = None,
    **atari_overrides: Any,
) -> gym.Env:
    """One (non-vectorised) env with the same wrappers as each sub-env of `make_env`.

    Non-Atari: ``gymnasium.make(env_id, max_episode_steps=..., render_mode=..., **env_kwargs)``, with
    float64 Box observations (MuJoCo) cast to float32.
    Atari: ALE with ``frameskip=1`` → ``AtariPreprocessing`` → `FireResetEnv` (if the game has
    FIRE) → `LifeLossResetEnv` (if ``life_loss_reset``) → ``TimeLimit`` (only if
    ``max_episode_steps``, counted in agent steps) → ``RecordEpisodeStatistics`` →
    ``FrameStackObservation``; uint8 obs ``[frame_stack, H, W]``.
    The ALE itself truncates at 108,000 frames (27,000 agent steps at skip 4, no-ops included);
    override with ``env_kwargs={"max_num_frames_per_episode": ...}``. ``env_kwargs`` entries
    override the keyword arguments built here. Atari settings come as ``atari_options`` and/or as
    keywords named after `AtariOptions` fields (``frame_stack=4``), which override it.
    """
    options = AtariOptions.of(atari_options, **atari_overrides)
    env_kwargs = dict(env_kwargs or {})
    if atari is None:
        atari = is_atari(env_id)
    if not atari:
        if render_mode is not None:  # only when asked: some custom envs take no render_mode
            env_kwargs.setdefault("render_mode", render_mode)
        env = _gym_make(env_id, max_episode_steps=max_episode_steps, **env_kwargs)
        space = env.observation_space
        if isinstance(space, gym.spaces.Box) and space.dtype == np.float64:  # MuJoCo: half the replay memory
            low, high = space.low.astype(np.float32), space.high.astype(np.float32)
            float32_space = gym.spaces.Box(low, high, space.shape, np.float32)
            env = gym.wrappers.TransformObservation(env, _to_float32, float32_space)
        return gym.wrappers.RecordEpisodeStatistics(env)

    _register_ale()
    ale_kwargs: dict[str, Any] = {
        "repeat_action_probability": options.sticky_action_prob,
        "full_action_space": False,
        "frameskip": 1,  # AtariPreprocessing does the (max-pooled) skip, also for ALE/*-v5
        "max_num_frames_per_episode": ATARI_MAX_FRAMES,
        "render_mode": render_mode,
    }
    ale_kwargs.update(env_kwargs)
    env = _gym_make(env_id, **ale_kwargs)
    env = gym.wrappers.AtariPreprocessing(
        env,
        noop_max=options.noop_max,
        frame_skip=options.frame_skip,
        screen_size=options.screen_size,
        terminal_on_life_loss=False,
        grayscale_obs=True,
        scale_obs=False,
    )
    fire_actions = options.fire_reset_actions if "FIRE" in env.unwrapped.get_action_meanings() else ()
    if fire_actions:
        env = FireResetEnv(env, fire_actions)
    if options.life_loss_reset:
        env = LifeLossResetEnv(env, (0, *fire_actions))  # no-op first: SB3 EpisodicLifeEnv.reset
    if max_episode_steps is not None:
        env = gym.wrappers.TimeLimit(env, max_episode_steps=max_episode_steps)
    env = gym.wrappers.RecordEpisodeStatistics(env)
    return gym.wrappers.FrameStackObservation(env, stack_size=options.frame_stack)


def assert_same_step(env: gym.vector.VectorEnv) -> None:
    """Raise unless ``env`` autoresets in SAME_STEP mode (what `final_next_obs` assumes)."""
    mode = env.metadata.get("autoreset_mode")
    if mode is not None and not isinstance(mode, AutoresetMode):
        mode = AutoresetMode(mode)
    if mode != AutoresetMode.SAME_STEP:
        raise RuntimeError(
            f"qlearn needs a vector env with autoreset_mode=AutoresetMode.SAME_STEP, got {mode!r}; "
            "in NEXT_STEP mode the step after an episode end is a fake transition (STYLE.md, trap 2)."
        )


def make_env(
    env_id: str,
    *,
    num_envs: int = 1,
    seed: int = 0,
    atari: bool | None = None,
    atari_options: AtariOptions | None = None,
    max_episode_steps: int | None = None,
    vectorization: str = "sync",
    render_mode: str | None = None,
    env_kwargs: dict | None = None,
    backend: str = "gymnasium",
    **atari_overrides: Any,
) -> gym.vector.VectorEnv:
    """A ``SyncVectorEnv``/``AsyncVectorEnv`` of `make_single_env` copies, in SAME_STEP autoreset
    (one synchronous env: a `SingleEnvVector`, which behaves identically at lower cost).

    Atari settings as in `make_single_env`. Seeds the action spaces with ``seed`` but does not
    reset: call ``env.reset(seed=seed)`` first. ``backend="envpool"`` runs Atari and MuJoCo on EnvPool
    instead, with the same settings and the same SAME_STEP guarantee (`qlearn.envpool_vector`).
    """
    options = AtariOptions.of(atari_options, **atari_overrides)
    if backend not in ("gymnasium", "envpool"):
        raise EnvConfigError(f"env.backend must be 'gymnasium' or 'envpool', got {backend!r}")
    if num_envs < 1:
        raise EnvConfigError(f"num_envs must be >= 1, got {num_envs}")
    vector_cls = {"sync": gym.vector.SyncVectorEnv, "async": gym.vector.AsyncVectorEnv}.get(
        vectorization
    )
    if vector_cls is None:
        raise EnvConfigError(f"vectorization must be 'sync' or 'async', got {vectorization!r}")
    if atari is None:
        atari = is_atari(env_id)
    if backend == "envpool":
        from qlearn.envpool_vector import make_envpool

        env = make_envpool(env_id, num_envs=num_envs, seed=seed, atari=atari, options=options,
                           max_episode_steps=max_episode_steps, render_mode=render_mode, env_kwargs=env_kwargs)
        env.action_space.seed(seed)
        env.single_action_space.seed(seed)
        return env
    if atari:
        _register_ale()  # fail early, in this process, with the install hint
    env_fn = partial(
        make_single_env,
        env_id,
        atari=atari,
        atari_options=options,
        max_episode_steps=max_episode_steps,
        render_mode=render_mode,
        env_kwargs=env_kwargs,
    )
    if vectorization == "async":
        env_fn().close()  # fail here with our message, not inside a worker process
    if vectorization == "sync" and num_envs == 1:
        env: gym.vector.VectorEnv = SingleEnvVector(env_fn)  # same API and infos, a fraction of the cost
    else:
        env = vector_cls([env_fn] * num_envs, autoreset_mode=AutoresetMode.SAME_STEP)
    assert_same_step(env)
    env.action_space.seed(seed)
    env.single_action_space.seed(seed)
    return env


def final_next_obs(next_obs: np.ndarray, infos: dict[str, Any], done: np.ndarray) -> np.ndarray:
    """``next_obs`` with the rows of finished sub-envs replaced by their true final observation.

    ``done = terminated | truncated`` from a SAME_STEP vector env's ``step()``. Returns a copy.
    """
    out = np.array(next_obs, copy=True)
    done_idx = np.flatnonzero(done)
    if done_idx.size == 0:
        return out
    mask = infos.get("_final_obs")
    if mask is None or not np.all(mask[done_idx]):
        raise KeyError(
            "a sub-env finished but infos has no 'final_obs' for it; is the vector env in "
            "AutoresetMode.SAME_STEP? (see qlearn.envs.assert_same_step)"
        )
    final = infos["final_obs"]
    for i in done_idx:
        out[i] = final[i]
    return out


def episode_stats(infos: dict[str, Any], done: np.ndarray) -> list[tuple[float, int]]:
    """(return, length) of each sub-env whose episode finished this step, in sub-env order.

    Reads ``infos["final_info"]["episode"]`` (masks ``_final_info`` and ``_episode``), written by
    ``RecordEpisodeStatistics`` in SAME_STEP mode. Returns are raw (unclipped) game scores; lengths
    count agent steps.
    """
    final_info = infos.get("final_info")
    if final_info is None or "episode" not in final_info:
        return []
    episode, has_ep = final_info["episode"], final_info["_episode"]
    return [
        (float(episode["r"][i]), int(episode["l"][i]))
        for i in np.flatnonzero(done)
        if has_ep[i]
    ]
