"""``qlearn-collect``: make D4RL-protocol datasets (random, medium, medium-replay, expert, medium-expert) locally."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path
from typing import Any

import hydra
import numpy as np
from hydra import compose
from omegaconf import DictConfig

from qlearn import __version__
from qlearn.cli.build import CONFIG_DIR, build_env, build_trainer, register_resolvers
from qlearn.cli.entry import hydra_command, run_main
from qlearn.errors import QlearnError
from qlearn.offline.collect import (
    KINDS,
    SnapshotRecorder,
    TransitionLog,
    agent_policy,
    concatenate,
    random_policy,
    rollout,
)
from qlearn.offline import minari_store
from qlearn.offline.io import save_dataset
from qlearn.trainers.controls import TrainingInterrupted

register_resolvers()


def output_paths(cfg: DictConfig) -> dict[str, Path]:
    """``{kind: <out_dir>/<env_id>-<kind>.hdf5}``; refuses unknown kinds and existing files before any work."""
    unknown = [k for k in cfg.kinds if k not in KINDS]
    if unknown:
        raise QlearnError(f"unknown dataset kinds {unknown}; choose from {list(KINDS)}.")
    slug = str(cfg.env_id).replace("/", "_")
    paths = {str(k): Path(str(cfg.out_dir)) / f"{slug}-{k}.hdf5" for k in cfg.kinds}
    existing = [str(p) for p in paths.values() if p.exists()]
    if existing:
        raise QlearnError(f"{existing} already exist; qlearn-collect never overwrites a dataset. Move them or set out_dir=.")
    return paths


def minari_ids(cfg: DictConfig) -> dict[str, str]:
    """``{kind: <minari_namespace>/<kind>-v0}`` when ``minari_namespace`` is set; refuses ids the local Minari store
    already holds, and a missing ``minari`` package, before any work."""
    namespace = cfg.get("minari_namespace")
    if not namespace:
        return {}
    if importlib.util.find_spec("minari") is None:
        raise QlearnError('minari_namespace= writes Minari datasets with Minari\'s own writer: pip install '
                          '"qlearn[minari]", or drop minari_namespace=.')
    ids = {str(k): f"{str(namespace).strip('/')}/{k}-v0" for k in cfg.kinds}
    taken = [i for i in ids.values() if minari_store.data_folder(minari_store.local_store() / i) is not None]
    if taken:
        raise QlearnError(f"the local Minari store ({minari_store.local_store()}) already holds {taken}; "
                          "qlearn-collect never overwrites a dataset. Choose another minari_namespace=.")
    return ids


def summary(arrays: dict[str, np.ndarray], returns: np.ndarray) -> dict[str, Any]:
    return {"transitions": int(arrays["rewards"].shape[0]), "episodes": int(returns.size),
            "return_mean": float(returns.mean()) if returns.size else None,
            "return_std": float(returns.std()) if returns.size else None}


def episode_returns(arrays: dict[str, np.ndarray]) -> np.ndarray:
    """Returns of the complete episodes in flat arrays (episodes end at a terminal or a timeout)."""
    ends = np.flatnonzero(arrays["terminals"] | arrays["timeouts"])
    sums = np.add.reduceat(arrays["rewards"].astype(np.float64), np.r_[0, ends[:-1] + 1]) if ends.size else []
    return np.asarray(sums, dtype=np.float64)


def medium_threshold(cfg: DictConfig, random_return: float, expert_return: float) -> float:
    """The medium level: ``R_random + medium_fraction * (R_expert - R_random)``."""
    return random_return + float(cfg.medium_fraction) * (expert_return - random_return)


def collect(cfg: DictConfig) -> dict[str, Any]:
    paths = output_paths(cfg)
    minari_targets = minari_ids(cfg)
    out_dir = Path(str(cfg.out_dir))
    seed = int(cfg.seed)
    train_cfg = compose(config_name="train", overrides=[
        f"experiment={cfg.behaviour}", f"env.id={cfg.env_id}", f"seed={seed}", f"total_steps={int(cfg.total_steps)}",
        f"eval.every={int(cfg.eval_every)}", f"eval.episodes={int(cfg.eval_episodes)}", f"device={cfg.device}",
        "env.num_envs=1", *[str(o) for o in cfg.overrides],
    ])
    run_dir = out_dir / f"{str(cfg.env_id).replace('/', '_')}-behaviour-seed{seed}"
    report_path = out_dir / f"{str(cfg.env_id).replace('/', '_')}-collect.json"
    if run_dir.exists():
        if report_path.is_file():  # a finished collection made its datasets from it
            raise QlearnError(f"{run_dir} already holds the behaviour run of {report_path}; choose another out_dir "
                              "or seed.")
        aside = set_aside(run_dir)  # a failed or interrupted attempt, which wrote no dataset
        print(f"qlearn-collect: {run_dir} is left from an attempt that wrote no dataset; moved it to {aside}.")
    env = build_env(train_cfg.env, seed + 2, num_envs=1)
    report: dict[str, Any] = {"env_id": str(cfg.env_id), "behaviour": str(cfg.behaviour), "seed": seed,
                              "qlearn_version": __version__, "datasets": {}}
    data: dict[str, tuple[dict[str, np.ndarray], np.ndarray]] = {}
    data["random"] = rollout(env, random_policy(env), int(cfg.transitions) if "random" in paths else 20_000, seed)
    random_return = float(data["random"][1].mean())

    needs_policy = any(k != "random" for k in paths)
    needs_expert = any(k in ("expert", "medium-expert") for k in paths)
    reference_expert = None if cfg.get("expert_return") is None else float(cfg.expert_return)
    if reference_expert is not None and reference_expert <= random_return:
        raise QlearnError(f"expert_return={reference_expert} is not above the random policy's return "
                          f"({random_return:.1f}); give the env's expert return or leave expert_return=null.")
    expert_return, medium_info = reference_expert, None
    if needs_policy:
        # With a reference expert return and no expert data wanted, training can stop at the medium level.
        stop_at = None
        if reference_expert is not None and not needs_expert:
            stop_at = medium_threshold(cfg, random_return, reference_expert)
        recorder = SnapshotRecorder(stop_at=stop_at)
        logs: list[TransitionLog] = []

        def log_transitions(buffer: Any) -> TransitionLog:
            logs.append(TransitionLog(buffer))
            return logs[0]

        built = build_trainer(train_cfg, run_dir, str(cfg.behaviour), wrap_buffer=log_transitions,
                              on_evaluation=[recorder])
        trainer, log = built.trainer, logs[0]
        try:
            results = trainer.run()
        except TrainingInterrupted as exc:
            raise QlearnError(
                f"interrupted while training the behaviour policy ({exc}). qlearn-collect cannot resume a behaviour "
                f"run yet: run the same command again (it starts over; nothing was written to {out_dir} but {run_dir})."
            ) from exc
        finally:
            built.close()
        agent = trainer.agent
        final_return = float(results["final_eval"]["mean"])
        if reference_expert is None and final_return <= random_return:
            raise QlearnError(
                f"the behaviour policy's final greedy return ({final_return:.1f}) is not above the random policy's "
                f"({random_return:.1f}), so there is no medium level between them: raise total_steps "
                f"(now {int(cfg.total_steps)}) or pick another behaviour preset. Its run is in {run_dir}."
            )
        expert_return = final_return if reference_expert is None else reference_expert
        threshold = medium_threshold(cfg, random_return, expert_return)
        medium = recorder.first_reaching(threshold)
        if medium is None:
            best = max(s.eval_return for s in recorder.snapshots)
            raise QlearnError(
                f"no evaluation of the behaviour run reached the medium level {threshold:.1f} (best {best:.1f}, "
                f"expert_return={reference_expert}): raise total_steps (now {int(cfg.total_steps)}), lower "
                f"medium_fraction or pick another behaviour preset. Its run is in {run_dir}."
            )
        medium_info = {"env_step": medium.env_step, "eval_return": medium.eval_return, "threshold": threshold}
        report["behaviour_final_return"] = final_return
        epsilon = float(cfg.epsilon)
        if needs_expert:
            data["expert"] = rollout(env, agent_policy(agent, epsilon, seed), int(cfg.transitions), seed + 10)
        agent.load_state_dict(medium.state)
        if "medium" in paths or needs_expert:
            data["medium"] = rollout(env, agent_policy(agent, epsilon, seed), int(cfg.transitions), seed + 20)
        replay = log.arrays(medium.env_step)
        data["medium-replay"] = (replay, episode_returns(replay))
        if needs_expert:
            both = concatenate(data["medium"][0], data["expert"][0])
            data["medium-expert"] = (both, np.concatenate([data["medium"][1], data["expert"][1]]))
    env.close()

    source = "behaviour final eval" if reference_expert is None else "expert_return"
    report.update({"random_return": random_return, "expert_return": expert_return, "expert_return_source": source,
                   "medium_snapshot": medium_info, "behaviour_run": str(run_dir) if needs_policy else None})
    for kind, path in paths.items():
        arrays, returns = data[kind]
        stats = summary(arrays, returns)
        metadata = {
            "env_id": str(cfg.env_id), "kind": kind, "behaviour_policy": str(cfg.behaviour), "seed": seed,
            "ref_min_score": random_return, "ref_max_score": expert_return if expert_return is not None else None,
            "behaviour_return_mean": stats["return_mean"], "behaviour_return_std": stats["return_std"],
            "episodes": stats["episodes"], "collected_by": f"qlearn-collect {__version__}",
        }
        if expert_return is None:
            metadata.pop("ref_max_score")
        save_dataset(path, arrays, {k: v for k, v in metadata.items() if v is not None})
        report["datasets"][kind] = {"path": str(path), **stats}
        if kind in minari_targets:
            minari_store.write(minari_targets[kind], arrays, metadata, source=str(path))
            report["datasets"][kind]["minari_id"] = minari_targets[kind]
            print(f"qlearn-collect: Minari dataset {minari_targets[kind]} in {minari_store.local_store()}")
        print(f"qlearn-collect: {path}: {stats['transitions']} transitions, {stats['episodes']} episodes, "
              f"mean return {stats['return_mean'] if stats['return_mean'] is not None else float('nan'):.1f}")
    report_path.write_text(json.dumps(report, indent=2))
    print(f"qlearn-collect: random return {random_return:.1f}, expert return "
          f"{expert_return if expert_return is not None else float('nan'):.1f}; report in {out_dir}")
    return report


def set_aside(run_dir: Path) -> Path:
    """Move a behaviour run that produced no dataset to ``<run_dir>.failed`` (replacing an older one), so a retry
    starts clean and the last failed attempt stays there to look at."""
    aside = run_dir.with_name(run_dir.name + ".failed")
    if aside.exists():
        shutil.rmtree(aside)
    run_dir.rename(aside)
    return aside


@hydra.main(config_path=str(CONFIG_DIR), config_name="collect", version_base="1.3")
@hydra_command("qlearn-collect")
def _hydra_main(cfg: DictConfig) -> None:
    collect(cfg)


def main() -> None:
    run_main("qlearn-collect", _hydra_main)


if __name__ == "__main__":
    main()
