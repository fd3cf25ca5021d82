"""``qlearn-train``: the Hydra entry point. ``qlearn-train experiment=dqn_atari env.id=BreakoutNoFrameskip-v4``."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any, NamedTuple

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from qlearn.checkpoint import latest_checkpoint, list_checkpoints, load_resume_point
from qlearn.cli.build import CONFIG_DIR, build_trainer, register_resolvers
from qlearn.cli.entry import hydra_command, run_main
from qlearn.cli.provenance import log_to_file
from qlearn.cli.resume import config_for_resume
from qlearn.errors import QlearnError

register_resolvers()
log = logging.getLogger("qlearn")


class RunNames(NamedTuple):
    """What a run is called in ``results.json`` and reports: the agent config and the preset (``experiment``)."""

    agent: str
    experiment: str | None = None


def _holds_a_run(run_dir: Path) -> bool:
    phases = (run_dir, run_dir / "offline")  # trainer=finetune runs its offline phase in <run_dir>/offline
    return any((d / "results.json").exists() or bool(list_checkpoints(d)) for d in phases)


def resolve_run(cfg: DictConfig, hydra_dir: Path, overrides: list[str]) -> tuple[DictConfig, Path, RunNames | None]:
    """Pick the run directory and the config; when resuming, also return the stored run's names (the command
    line's ``agent`` and ``experiment`` choices are not the run's when ``resume=<run_dir>`` is given alone).

    ``resume=null``: fresh run in Hydra's run dir, which must not hold a run already.
    ``resume=auto``: continue the run dir's latest checkpoint if there is one, else start fresh.
    ``resume=<run_dir>``: continue that run with its stored config plus this command's overrides.
    Overrides that cannot take effect on a resumed run (network and buffer shapes, the agent's settings, the
    seed, ...) are refused with one line (`qlearn.cli.resume.config_for_resume`).
    """
    resume = cfg.get("resume")
    if resume is None:
        if _holds_a_run(hydra_dir):
            raise QlearnError(
                f"run directory {hydra_dir} already holds a run (checkpoints/ or results.json); "
                "qlearn never overwrites one. Pass resume=auto to continue it, or choose a new hydra.run.dir."
            )
        return cfg, hydra_dir, None
    run_dir = hydra_dir if resume == "auto" else Path(str(resume)).expanduser()
    if latest_checkpoint(run_dir) is None:
        if resume == "auto":
            return cfg, hydra_dir, None
        raise QlearnError(
            f"resume={resume}: no checkpoint found in {run_dir / 'checkpoints'}. Point resume= at a run "
            "directory that holds checkpoints/step_*.pt, or drop resume= to start a fresh run."
        )
    stored = load_resume_point(run_dir).state["config"]
    merged = config_for_resume(stored, cfg if resume == "auto" else None, overrides)
    merged.resume = str(resume) if resume == "auto" else str(run_dir)
    return merged, run_dir, RunNames(str(stored.get("agent_name", "agent")), stored.get("experiment"))


def train(cfg: DictConfig, hydra_dir: Path, overrides: list[str], names: RunNames) -> dict[str, Any]:
    cfg, run_dir, resumed = resolve_run(cfg, hydra_dir, overrides)
    names = resumed or names
    agent_name = names.agent
    built = build_trainer(cfg, run_dir, agent_name, experiment=names.experiment)
    trainer = built.trainer
    handler = log_to_file(run_dir)
    try:
        if resumed is not None:
            path = trainer.resume_from(run_dir)
            print(f"qlearn-train: resuming {run_dir} from {path.name}", file=sys.stderr)
        results = trainer.run()
    finally:
        built.close()
        log.removeHandler(handler)
        handler.close()
    final = results.get("final_eval") or {}
    scores = "".join(f", {name} {final[name]:.1f}" for name in results.get("scores", {}) if name in final)
    source = f" on {cfg.dataset.path}" if results.get("dataset") else ""
    print(
        f"qlearn-train: {agent_name} on {cfg.env.id}{source} seed {cfg.seed}: {results['total_steps']} env steps, "
        f"{results['updates']} updates in {results['wall_time_s']:.1f} s; final eval "
        f"{final.get('mean', float('nan')):.2f} ± {final.get('std', float('nan')):.2f} over "
        f"{final.get('episodes', 0)} episodes{scores}. Results: {run_dir / 'results.json'}"
    )
    return results


_HELD_BACK: list[str] = []  # resume=<run_dir>: overrides checked against the stored run, not composed by Hydra


@hydra.main(config_path=str(CONFIG_DIR), config_name="train", version_base="1.3")
@hydra_command("qlearn-train")
def _hydra_main(cfg: DictConfig) -> float | None:
    hydra_cfg = HydraConfig.get()
    choices = hydra_cfg.runtime.choices
    names = RunNames(choices.get("agent", "agent"), choices.get("experiment"))
    results = train(cfg, Path(hydra_cfg.runtime.output_dir), list(hydra_cfg.overrides.task) + _HELD_BACK, names)
    final = results.get("final_eval") or {}
    return final.get("mean")  # what a Hydra sweeper (e.g. Optuna) optimises


def hold_back_resume_overrides(argv: list[str]) -> tuple[list[str], list[str]]:
    """``(argv for Hydra, held-back overrides)``. With ``resume=<run_dir>`` the run's settings come from its
    checkpoint, so Hydra composing this command's overrides onto the default job would fail on keys the default
    agent lacks (``agent.num_q`` on a REDQ run) before the resume check could name them; those overrides go to
    `qlearn.cli.resume.config_for_resume` only. Hydra keeps ``resume=``, ``hydra.*`` and flags."""
    resume = [a for a in argv[1:] if a.startswith("resume=")]
    if not resume or resume[-1].split("=", 1)[1] in ("auto", "null", "") or any(a in ("-m", "--multirun") for a in argv):
        return argv, []
    held = [a for a in argv[1:] if _is_job_override(a)]
    return [a for a in argv if a not in held], held


def _is_job_override(arg: str) -> bool:
    """``key=value``, ``+key=value`` or ``~key`` for the job's config (not ``resume=``, ``hydra.*``, a flag or a
    flag's value such as ``-cd <dir>``'s)."""
    if arg.startswith("-") or not ("=" in arg or arg.startswith("~")):
        return False
    return not arg.lstrip("+~").startswith(("resume=", "hydra.", "hydra/"))


def main() -> None:
    sys.argv, held = hold_back_resume_overrides(sys.argv)
    _HELD_BACK[:] = held
    run_main("qlearn-train", _hydra_main)


if __name__ == "__main__":
    main()
