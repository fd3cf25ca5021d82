"""``qlearn-train``: the Hydra entry point. ``qlearn-train experiment=dqn_atari env.id=BreakoutNoFrameskip-v4``."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium as gym
import hydra
from gymnasium.wrappers.vector import TransformReward
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from qlearn.checkpoint import latest_checkpoint, list_checkpoints, load_checkpoint
from qlearn.cli.build import CONFIG_DIR, build_agent, build_env, build_logger, register_resolvers
from qlearn.errors import QlearnError
from qlearn.offline import OfflineDataset, load_dataset, normalize_env_observations, reference_scores
from qlearn.trainers.offline import OfflineTrainer
from qlearn.trainers.online import OnlineTrainer, TrainingInterrupted
from qlearn.types import EnvSpec
from qlearn.utils import resolve_device, seed_everything

register_resolvers()


def _holds_a_run(run_dir: Path) -> bool:
    phases = (run_dir, run_dir / "offline")  # trainer=finetune runs its offline phase in <run_dir>/offline
    return any((d / "results.json").exists() or bool(list_checkpoints(d)) for d in phases)


def resolve_run(cfg: DictConfig, hydra_dir: Path, overrides: list[str]) -> tuple[DictConfig, Path, Path | None]:
    """Pick the run directory, the config and the checkpoint to resume from (if any).

    ``resume=null``: fresh run in Hydra's run dir, which must not hold a run already.
    ``resume=auto``: continue from the run dir's latest checkpoint if there is one, else start fresh.
    ``resume=<run_dir>``: continue that run with its stored config plus this command's overrides.
    """
    resume = cfg.get("resume")
    if resume is None:
        if _holds_a_run(hydra_dir):
            raise QlearnError(
                f"run directory {hydra_dir} already holds a run (checkpoints/ or results.json); "
                "qlearn never overwrites one. Pass resume=auto to continue it, or choose a new hydra.run.dir."
            )
        return cfg, hydra_dir, None
    if resume == "auto":
        return cfg, hydra_dir, latest_checkpoint(hydra_dir)
    run_dir = Path(str(resume)).expanduser()
    checkpoint = latest_checkpoint(run_dir)
    if checkpoint is None:
        raise QlearnError(
            f"resume={resume}: no checkpoint found in {run_dir / 'checkpoints'}. Point resume= at a run "
            "directory that holds checkpoints/step_*.pt, or drop resume= to start a fresh run."
        )
    stored = OmegaConf.create(load_checkpoint(checkpoint)["config"]["resolved"])
    kept = [o for o in overrides if not o.split("=", 1)[0].lstrip("+~").startswith(("resume", "hydra"))]
    merged = OmegaConf.merge(stored, OmegaConf.from_dotlist(kept))
    merged.resume = str(run_dir)
    return merged, run_dir, checkpoint


def train(cfg: DictConfig, hydra_dir: Path, overrides: list[str], agent_name: str) -> dict[str, Any]:
    cfg, run_dir, checkpoint = resolve_run(cfg, hydra_dir, overrides)
    mode = cfg.trainer.get("mode", "online")
    if mode == "offline":
        return train_offline(cfg, run_dir, checkpoint, agent_name)
    if mode == "finetune":
        return train_finetune(cfg, run_dir, checkpoint, agent_name)
    trainer = build_online_trainer(cfg, run_dir, agent_name)
    env, eval_env = trainer.env, trainer.eval_env
    seed = trainer.seed
    if checkpoint is not None:
        trainer.resume_from(checkpoint)
        print(f"qlearn-train: resuming {run_dir} from {checkpoint.name} (env step {trainer.env_step})", file=sys.stderr)
    try:
        results = trainer.run()
    finally:
        env.close()
        if eval_env is not None:
            eval_env.close()
    final = results.get("final_eval") or {}
    print(
        f"qlearn-train: {agent_name} on {cfg.env.id} seed {seed}: {results['total_steps']} steps in "
        f"{results['wall_time_s']:.1f} s ({results['steps_per_sec']:.0f} steps/s); "
        f"final eval {final.get('mean', float('nan')):.2f} ± {final.get('std', float('nan')):.2f} "
        f"over {final.get('episodes', 0)} episodes. Results: {run_dir / 'results.json'}"
    )
    return results


def build_online_trainer(
    cfg: DictConfig,
    run_dir: Path,
    agent_name: str,
    wrap_env: Callable[[gym.vector.VectorEnv, bool], gym.vector.VectorEnv] | None = None,
    **extra: Any,
) -> OnlineTrainer:
    """Seed, write ``run_dir/config.yaml`` and build envs, agent, buffer and logger into an :class:`OnlineTrainer`.

    ``wrap_env(env, is_eval)`` wraps the training and evaluation envs (fine-tuning applies the
    dataset's observation and reward transforms this way).
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    device = resolve_device(cfg.device)
    seed = int(cfg.seed)
    seed_everything(seed)
    resolved = OmegaConf.to_container(cfg, resolve=True)
    (run_dir / "config.yaml").write_text(OmegaConf.to_yaml(resolved))

    env = build_env(cfg.env, seed)
    eval_env = build_env(cfg.env, seed + 1, num_envs=1)
    if wrap_env is not None:
        env, eval_env = wrap_env(env, False), wrap_env(eval_env, True)
    spec = EnvSpec.from_env(env)
    agent = build_agent(cfg.agent, spec, device)
    exploration = None
    if spec.discrete and cfg.get("exploration") is not None:
        exploration = instantiate(cfg.exploration, num_actions=spec.num_actions, seed=seed)
    buffer_cfg = OmegaConf.to_container(cfg.buffer, resolve=True)
    buffer_cfg["device"] = str(device) if buffer_cfg.get("device") in (None, "auto") else buffer_cfg["device"]
    buffer = instantiate(buffer_cfg, seed=seed)
    logger = build_logger(cfg.logger, run_dir)
    logger.log_config(resolved)
    options = OmegaConf.to_container(cfg.trainer, resolve=True)
    for key in ("mode", "offline_updates"):
        options.pop(key, None)
    return OnlineTrainer(
        agent,
        env,
        buffer,
        eval_env=eval_env,
        exploration=exploration,
        logger=logger,
        run_dir=run_dir,
        seed=seed,
        clip_reward=bool(cfg.env.get("clip_reward", False)),
        terminal_on_life_loss=bool(cfg.env.get("terminal_on_life_loss", False)),
        config={"resolved": resolved, "agent_name": agent_name, "env": {"id": cfg.env.id}},
        **options,
        **extra,
    )


def train_offline(cfg: DictConfig, run_dir: Path, checkpoint: Path | None, agent_name: str) -> dict[str, Any]:
    """``trainer=offline``: gradient steps on ``dataset.path``, evaluation in ``env.id`` (default: the dataset's env)."""
    device = resolve_device(cfg.device)
    seed = int(cfg.seed)
    seed_everything(seed)
    dataset, obs_stats, _ = prepare_dataset(cfg, device, seed)
    run_dir.mkdir(parents=True, exist_ok=True)
    resolved = OmegaConf.to_container(cfg, resolve=True)
    (run_dir / "config.yaml").write_text(OmegaConf.to_yaml(resolved))
    eval_env = build_env(cfg.env, seed + 1, num_envs=1)
    spec = EnvSpec.from_env(eval_env)
    dataset.validate(spec, env_id=cfg.env.id)
    if obs_stats is not None:
        eval_env = normalize_env_observations(eval_env, *obs_stats)
    agent = build_agent(cfg.agent, spec, device)
    logger = build_logger(cfg.logger, run_dir)
    logger.log_config(resolved)
    options = OmegaConf.to_container(cfg.trainer, resolve=True)
    options.pop("mode")
    config = {"resolved": resolved, "agent_name": agent_name, "env": {"id": cfg.env.id},
              "dataset": str(cfg.dataset.path)}
    if obs_stats is not None:  # qlearn-eval applies the same transform
        config["observation_normalization"] = {"mean": obs_stats[0].tolist(), "std": obs_stats[1].tolist()}
    trainer = OfflineTrainer(agent, dataset, eval_env=eval_env, logger=logger, run_dir=run_dir, seed=seed,
                             reference_scores=reference_scores(cfg.env.id, dataset.metadata), config=config, **options)
    if checkpoint is not None:
        trainer.resume_from(checkpoint)
        print(f"qlearn-train: resuming {run_dir} from {checkpoint.name} (update {trainer.updates_done})", file=sys.stderr)
    try:
        results = trainer.run()
    finally:
        eval_env.close()
    final = results.get("final_eval") or {}
    score = final.get("normalized_score")
    print(
        f"qlearn-train: {agent_name} on {cfg.dataset.path} ({cfg.env.id}) seed {seed}: {results['updates']} updates in "
        f"{results['wall_time_s']:.1f} s ({results['updates_per_sec']:.0f} updates/s); final eval "
        f"{final.get('mean', float('nan')):.2f} ± {final.get('std', float('nan')):.2f}"
        + (f", normalized score {score:.1f}" if score is not None else "")
        + f". Results: {run_dir / 'results.json'}"
    )
    return results


def train_finetune(cfg: DictConfig, run_dir: Path, checkpoint: Path | None, agent_name: str) -> dict[str, Any]:
    """``trainer=finetune``: ``trainer.offline_updates`` on the dataset (in ``<run_dir>/offline``), then the
    dataset becomes the start of the replay buffer and training continues online for ``total_steps``.

    The env gets the dataset's observation normalisation and reward scaling (rewards only while
    training; evaluation reports raw returns). Resuming continues whichever phase was interrupted.
    """
    device = resolve_device(cfg.device)
    seed = int(cfg.seed)
    seed_everything(seed)
    dataset, obs_stats, (scale, shift) = prepare_dataset(cfg, device, seed)

    def wrap(env: gym.vector.VectorEnv, is_eval: bool) -> gym.vector.VectorEnv:
        if obs_stats is not None:
            env = normalize_env_observations(env, *obs_stats)
        if not is_eval and (scale, shift) != (1.0, 0.0):
            env = TransformReward(env, lambda r: r * scale + shift)
        return env

    trainer = build_online_trainer(cfg, run_dir, agent_name, wrap_env=wrap)
    if trainer.num_envs != 1:
        raise QlearnError("trainer=finetune continues the dataset's single stream in the replay buffer: use env.num_envs=1.")
    dataset.validate(EnvSpec.from_env(trainer.env), env_id=cfg.env.id)
    if obs_stats is not None:
        trainer.config["observation_normalization"] = {"mean": obs_stats[0].tolist(), "std": obs_stats[1].tolist()}
    try:
        if checkpoint is not None:  # the online phase had started: everything is in its checkpoint
            trainer.resume_from(checkpoint)
        else:
            offline_dir = run_dir / "offline"
            offline = OfflineTrainer(
                trainer.agent, dataset, total_updates=int(cfg.trainer.offline_updates), batch_size=trainer.batch_size,
                eval_env=trainer.eval_env, eval_every=trainer.eval_every, eval_episodes=trainer.eval_episodes,
                reference_scores=reference_scores(cfg.env.id, dataset.metadata), logger=build_logger(cfg.logger, offline_dir),
                run_dir=offline_dir, checkpoint_every=trainer.checkpoint_every, seed=seed, config=trainer.config,
            )
            done = latest_checkpoint(offline_dir)
            if done is not None:
                offline.resume_from(done)
            if offline.updates_done < offline.total_updates:
                offline.run()
            dataset.to_replay_buffer(trainer.buffer)
        results = trainer.run()
    finally:
        trainer.env.close()
        if trainer.eval_env is not None:
            trainer.eval_env.close()
    final = results.get("final_eval") or {}
    print(f"qlearn-train: {agent_name} fine-tuned on {cfg.env.id} seed {seed}: final eval "
          f"{final.get('mean', float('nan')):.2f} ± {final.get('std', float('nan')):.2f}. Results: {run_dir / 'results.json'}")
    return results


def prepare_dataset(
    cfg: DictConfig, device: Any, seed: int
) -> tuple[OfflineDataset, tuple[Any, Any] | None, tuple[float, float]]:
    """Load ``dataset.path``, fill ``env.id`` from it when null, and apply reward/observation scaling.

    Returns the dataset, the observation ``(mean, std)`` (or ``None``) and the reward ``(scale, shift)``
    applied, which online fine-tuning applies to the env's rewards too.
    """
    options = cfg.dataset
    if options.get("path") is None:
        raise QlearnError(
            "trainer=offline needs a dataset: pass dataset.path=<file.hdf5 | file.npz | minari dataset dir> "
            "(qlearn-collect makes one)."
        )
    dataset = load_dataset(str(options.path), next_observations=str(options.next_observations), device=device, seed=seed)
    data_env = dataset.metadata.get("env_id")
    if cfg.env.id is None:
        if not data_env:
            raise QlearnError(f"{options.path} does not say which env it comes from; pass env.id=<gymnasium id>.")
        cfg.env.id = data_env
    scale = options.get("reward_scale")
    # Kostrikov et al., 2022: rewards * 1000 / (max return - min return) on locomotion
    reward = (dataset.iql_reward_scale() if scale == "iql" else 1.0 if scale is None else float(scale),
              float(options.get("reward_shift", 0.0)))
    if reward != (1.0, 0.0):
        dataset.scale_rewards(*reward)
    stats = dataset.normalize_observations() if options.get("normalize_observations", False) else None
    return dataset, stats, reward


@hydra.main(config_path=str(CONFIG_DIR), config_name="train", version_base="1.3")
def _hydra_main(cfg: DictConfig) -> None:
    hydra_cfg = HydraConfig.get()
    agent_name = hydra_cfg.runtime.choices.get("agent", "agent")
    try:
        train(cfg, Path(hydra_cfg.runtime.output_dir), list(hydra_cfg.overrides.task), agent_name)
    except TrainingInterrupted as exc:
        print(f"qlearn-train: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except QlearnError as exc:
        print(f"qlearn-train: error: {exc}", file=sys.stderr)
        sys.exit(2)


def main() -> None:
    _hydra_main()


if __name__ == "__main__":
    main()
