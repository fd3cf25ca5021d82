"""Build a run from a (composed) Hydra config: envs, dataset, agent, exploration, buffer, logger and the trainer
its ``trainer._target_`` names. The one build path of qlearn-train, qlearn-collect and qlearn-eval."""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import torch
from gymnasium.wrappers.vector import TransformReward
from hydra.errors import InstantiationException
from hydra.utils import get_class, instantiate
from omegaconf import DictConfig, OmegaConf

from qlearn.agents import saving
from qlearn.agents.base import Agent
from qlearn.cli.provenance import record_invocation
from qlearn.envs import is_atari, make_env
from qlearn.errors import QlearnError
from qlearn.logging import build_logger
from qlearn.offline import NormalizedScore, load_training_dataset, normalize_env_observations, prepare_dataset
from qlearn.trainers import FinetuneTrainer, OfflineTrainer, OnlineTrainer, updates_owed
from qlearn.trainers.loop import option_names
from qlearn.types import EnvSpec
from qlearn.utils import resolve_device, seed_everything

# The Hydra tree: qlearn/configs links to the top-level configs/ in a checkout and is a copy in a wheel.
CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"

# env config keys the trainer reads (the rest go to make_env)
_ENV_TRAINER_KEYS = ("id", "clip_reward", "terminal_on_life_loss")
# what each trainer is built from besides the agent (constructor keywords the builder fills in)
TRAINER_PARTS: dict[type, tuple[str, ...]] = {
    OnlineTrainer: ("env", "buffer", "exploration"),
    OfflineTrainer: ("dataset",),
    FinetuneTrainer: ("env", "buffer", "exploration", "dataset"),
}


def _total_updates(*, _root_: DictConfig) -> int:
    """Gradient updates a run will make (`qlearn.trainers.updates_owed` at ``total_steps``), at least 1."""
    t = _root_.trainer
    return max(1, updates_owed(int(_root_.total_steps), int(t.learning_starts), int(t.train_every),
                               int(t.updates_per_step)))


def _by_env(env_id: str, table: Any, default: Any = None) -> Any:
    """The entry of ``table`` for ``env_id``'s name without version (``Hopper-v5`` -> ``Hopper``), else ``default``."""
    return table.get(str(env_id).split("/")[-1].split("-v")[0], default)


def _run_label(env_id: Any, dataset_path: Any = None) -> str:
    """The env id for run-directory names; offline presets leave it null until the dataset is read,
    so they are named after the dataset file (``Hopper-v5-medium-replay``)."""
    if env_id is not None:  # valid on every file system: no "/" (ALE/Pong-v5) or ":" (module:EnvClass)
        return re.sub(r"[^A-Za-z0-9._-]", "_", str(env_id))
    return Path(str(dataset_path)).stem if dataset_path is not None else "dataset"


def register_resolvers() -> None:
    """``${qlearn.mul_int:a,b}`` = int(a*b), ``${qlearn.total_updates:}`` for schedule lengths, and
    ``${qlearn.by_env:${env.id},{Hopper: 0.1, Ant: 0.2},default}`` for per-env settings."""
    resolvers = {"qlearn.mul_int": lambda a, b: int(float(a) * float(b)), "qlearn.total_updates": _total_updates,
                 "qlearn.by_env": _by_env, "qlearn.run_label": _run_label}
    for name, resolver in resolvers.items():
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_new_resolver(name, resolver)


# ---------------------------------------------------------------------- blocks
def env_options(env_cfg: Any) -> dict[str, Any]:
    """`make_env`'s options from an env config: the trainer's keys dropped, ``kwargs`` passed on as ``env_kwargs``."""
    options = dict(env_cfg)
    for key in _ENV_TRAINER_KEYS:
        options.pop(key, None)
    kwargs = options.pop("kwargs", None)
    if kwargs:
        options["env_kwargs"] = {**dict(kwargs), **dict(options.get("env_kwargs") or {})}
    return options


def build_env(env_cfg: Any, seed: int, num_envs: int | None = None, **extra: Any) -> gym.vector.VectorEnv:
    options = env_options(env_cfg)
    if num_envs is not None:
        options["num_envs"] = num_envs
    options.update(extra)
    return make_env(env_cfg["id"], seed=seed, **options)


def build_agent(agent_cfg: Any, spec: EnvSpec, device: torch.device) -> Agent:
    """`qlearn.agents.saving.build_agent` with its failures as one line that says what to change."""
    try:
        return saving.build_agent(agent_cfg, spec, device)
    except InstantiationException as exc:
        cause = exc.__cause__  # a block's own refusal (e.g. a threshold out of range) is the line to show
        if isinstance(cause, QlearnError):
            raise QlearnError(str(cause)) from exc
        reason = f" {type(cause).__name__}: {cause}" if cause is not None else ""
        raise QlearnError(f"could not build the agent from its config: {str(exc).splitlines()[0]}{reason}") from exc
    except TypeError as exc:
        raise QlearnError(_unknown_setting(exc, "agent", agent_cfg) or f"could not build the agent: {exc}") from exc
    except ValueError as exc:  # the agent's own constructor refusing a setting (blocks' refusals come wrapped above)
        raise QlearnError(f"could not build the agent from its config: {exc}") from exc


def _unknown_setting(exc: TypeError, where: str, section: Any) -> str | None:
    """``agent.gamma is not a setting of BC ...`` for a TypeError about an unexpected keyword, else ``None``."""
    found = re.search(r"(\w+)(?:\.\w+)?\(\) got an unexpected keyword argument '(\w+)'", str(exc))
    if found is None:
        return None
    owner, key = found.groups()
    known = [k for k in section if isinstance(k, str) and k != key and not k.startswith("_")]
    return (f"{where}.{key} is not a setting of {owner}: remove it (a preset or family meant for another agent "
            f"may have set it; pick a matching experiment=). {where} settings here: {', '.join(known) or 'none'}.")


def trainer_class(cfg: DictConfig) -> type:
    target = cfg.trainer.get("_target_")
    cls = get_class(target) if target else None
    if cls not in TRAINER_PARTS:
        raise QlearnError(f"trainer._target_ must name one of {', '.join(c.__module__ + '.' + c.__name__ for c in TRAINER_PARTS)}, "
                          f"got {target!r}.")
    return cls


def trainer_options(cfg: DictConfig, cls: type) -> dict[str, Any]:
    """``cfg.trainer`` without ``_target_``, refusing keys the trainer does not take (with the closest ones)."""
    options = OmegaConf.to_container(cfg.trainer, resolve=True)
    options.pop("_target_", None)
    known = option_names(cls) - set(TRAINER_PARTS[cls]) - {"agent", "logger", "run_dir", "config", "seed", "scores",
                                                            "eval_env", "on_evaluation", "offline_logger"}
    for key in options:
        if key not in known:
            close = difflib.get_close_matches(key, sorted(known), n=3)
            hint = f" Did you mean {' or '.join(close)}?" if close else f" Settings: {', '.join(sorted(known))}."
            raise QlearnError(f"trainer.{key} is not a setting of {cls.__name__}.{hint}")
    return options


def check_budget(cfg: DictConfig) -> None:
    """Refuse a budget that is not a whole number >= 1, naming the key (before anything is built from it)."""
    keys = ["total_steps"] + (["trainer.total_updates"] if "total_updates" in cfg.trainer else [])
    for key in keys:
        value = OmegaConf.select(cfg, key)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            unit = "gradient updates" if key.endswith("updates") else "env steps"
            raise QlearnError(f"{key}={value!r}: the budget must be a whole number >= 1 ({unit}), e.g. {key}=100000.")


# ---------------------------------------------------------------------- the run
@dataclass
class Built:
    """A trainer ready to run, and the envs to close after it."""

    trainer: Any
    envs: list[gym.vector.VectorEnv]

    def close(self) -> None:
        for env in self.envs:
            env.close()


def build_trainer(
    cfg: DictConfig,
    run_dir: Path,
    agent_name: str,
    *,
    experiment: str | None = None,
    wrap_buffer: Callable[[Any], Any] | None = None,
    on_evaluation: Sequence[Callable[[Any, dict[str, Any]], None]] = (),
) -> Built:
    """Everything ``cfg`` describes, built into the trainer its ``trainer._target_`` names.

    Seeds the global RNGs, records the invocation (``run.json``) and writes ``run_dir/config.yaml``. Offline data
    is checked as stored before any transform (`qlearn.offline.prepare_dataset`); fine-tuning applies the data's
    observation normalisation and reward scaling to the env. ``wrap_buffer`` wraps the replay buffer before the
    trainer is built (``qlearn-collect`` logs every transition this way). ``agent_name`` and ``experiment`` (the
    preset, e.g. ``drq_eps_atari100k``) are the names ``results.json`` and reports go by.
    """
    check_budget(cfg)
    cls = trainer_class(cfg)
    parts_needed = TRAINER_PARTS[cls]
    options = trainer_options(cfg, cls)
    device = resolve_device(cfg.device)
    seed = int(cfg.seed)
    seed_everything(seed)
    data = None
    if "dataset" in parts_needed:
        dataset, env_id = load_training_dataset(cfg.dataset, cfg.env.id, device=device, seed=seed)
        cfg.env.id = env_id  # offline presets say env.id: null, "the env the dataset names"
    elif cfg.env.get("id") is None:
        raise QlearnError("env.id is null: pass env.id=<gymnasium id>.")

    envs: list[gym.vector.VectorEnv] = []
    try:
        eval_env = build_env(cfg.env, seed + 1, num_envs=1)
        envs.append(eval_env)
        env = None
        if "env" in parts_needed:
            env = build_env(cfg.env, seed)
            envs.append(env)
        spec = EnvSpec.from_env(env if env is not None else eval_env)
        if "dataset" in parts_needed:
            data = prepare_dataset(dataset, spec, cfg.dataset, cfg.env.id)
            if data.obs_stats is not None:
                eval_env = normalize_env_observations(eval_env, *data.obs_stats)
                env = None if env is None else normalize_env_observations(env, *data.obs_stats)
            if env is not None and data.reward != (1.0, 0.0):  # learning sees the data's reward scale; eval, raw
                scale, shift = data.reward
                env = TransformReward(env, lambda r: r * scale + shift)

        agent = build_agent(cfg.agent, spec, device)
        parts: dict[str, Any] = {"env": env, "dataset": None if data is None else data.dataset}
        if "exploration" in parts_needed:
            parts["exploration"] = None
            if spec.discrete and cfg.get("exploration") is not None:
                parts["exploration"] = instantiate(cfg.exploration, num_actions=spec.num_actions, seed=seed)
        if "buffer" in parts_needed:
            parts["buffer"] = build_buffer(cfg, device, seed, gamma=getattr(agent, "gamma", None))
            if wrap_buffer is not None:
                parts["buffer"] = wrap_buffer(parts["buffer"])
        resolved = OmegaConf.to_container(cfg, resolve=True)
        config: dict[str, Any] = {"resolved": resolved, "composed": OmegaConf.to_container(cfg, resolve=False),
                                  "agent_name": agent_name, "experiment": experiment, "env": {"id": cfg.env.id}}
        scores = [instantiate(score) for score in cfg.get("scores") or []]  # e.g. Atari's human-normalised score
        if data is not None:
            config["dataset"] = str(cfg.dataset.path)
            if data.obs_stats is not None:  # qlearn-eval applies the same transform
                config["observation_normalization"] = {"mean": data.obs_stats[0].tolist(),
                                                       "std": data.obs_stats[1].tolist()}
            score = NormalizedScore.for_env(cfg.env.id, data.dataset.metadata)
            scores += [score] if score is not None else []
        extra: dict[str, Any] = {}
        if "env" in parts_needed:
            extra["clip_reward"] = bool(cfg.env.get("clip_reward", False))
            extra["terminal_on_life_loss"] = bool(cfg.env.get("terminal_on_life_loss", False))
            extra["on_evaluation"] = on_evaluation
        trainer = cls(agent=agent, **{k: parts[k] for k in parts_needed}, eval_env=eval_env, scores=scores,
                      run_dir=run_dir, seed=seed, config=config, **extra, **options)

        # Only now, with every setting accepted, is anything written into the run directory.
        run_dir.mkdir(parents=True, exist_ok=True)
        record_invocation(run_dir)
        (run_dir / "config.yaml").write_text(OmegaConf.to_yaml(resolved))
        phases = [trainer.offline, trainer.online] if isinstance(trainer, FinetuneTrainer) else [trainer]
        for phase in phases:
            phase.logger = build_logger(cfg.logger, phase.run_dir)
        phases[-1].logger.log_config(resolved)
    except BaseException:
        for opened in envs:
            opened.close()
        raise
    return Built(trainer, envs)


def build_buffer(cfg: DictConfig, device: torch.device, seed: int, gamma: float | None = None) -> Any:
    """The replay buffer: on the training device unless ``buffer.device`` says otherwise; Atari frames stored once
    (``frame_stack`` from the env config); ``gamma``: the agent's, for n-step returns."""
    if cfg.get("buffer") is None:
        raise QlearnError("this trainer needs a replay buffer: add buffer=replay (or buffer=prioritized).")
    buffer_cfg = OmegaConf.to_container(cfg.buffer, resolve=True)
    buffer_cfg["device"] = str(device) if buffer_cfg.get("device") in (None, "auto") else buffer_cfg["device"]
    if "frame_stack" not in buffer_cfg and is_atari(str(cfg.env.id)):
        buffer_cfg["frame_stack"] = cfg.env.get("frame_stack")
    buffer_cfg.setdefault("gamma", gamma)
    return instantiate(buffer_cfg, seed=seed)
