"""``qlearn-reproduce``: one preset over K seeds through Hydra multirun, then a report; ``qlearn-report``.

    qlearn-reproduce dqn_cartpole --seeds 5                    # local processes (joblib launcher)
    qlearn-reproduce sac_mujoco --seeds 5 --launcher submitit_slurm env.id=Hopper-v5 \
        hydra.launcher.partition=gpu hydra.launcher.timeout_min=600
    qlearn-reproduce dqn_cartpole --seeds 5 --launcher ray --ray-address 127.0.0.1:6379   # a running Ray cluster
    qlearn-report reports/dqn_cartpole                         # re-aggregate finished runs
"""

from __future__ import annotations

import argparse
import difflib
import importlib.util
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from hydra.core.override_parser.overrides_parser import OverridesParser

from qlearn.cli.build import CONFIG_DIR
from qlearn.errors import QlearnError
from qlearn.reports import load_references, read_sweep, write_report
from qlearn.reports.sweep import finished_runs

LAUNCHERS = {  # Hydra launcher -> (pip package, plugin module) that provide it
    "basic": None,
    "joblib": ("hydra-joblib-launcher", "hydra_plugins.hydra_joblib_launcher"),
    "submitit_local": ("hydra-submitit-launcher", "hydra_plugins.hydra_submitit_launcher"),
    "submitit_slurm": ("hydra-submitit-launcher", "hydra_plugins.hydra_submitit_launcher"),
    "ray": ("ray", "ray"),  # qlearn's own Ray path (qlearn/cli/ray_launch.py), not Hydra's Ray plugin
}
EXTRAS = {"joblib": "report", "submitit_local": "slurm", "submitit_slurm": "slurm", "ray": "ray"}
DEFAULT_REFERENCES = Path(__file__).resolve().parents[1] / "references"  # benchmarks/reference, shipped in the wheel


class Sweep(NamedTuple):
    """What the overrides sweep besides the seed: run-directory parts naming each job, and the number of
    combinations (``None`` when a sweep is not a list of values, e.g. an Optuna ``interval``)."""

    subdir: str
    combinations: int | None


def swept(overrides: list[str]) -> Sweep:
    """``env.id=Boxing...,Breakout...`` sweeps env.id too: each job's directory then names its value,
    ``<runs_dir>/BoxingNoFrameskip-v4/seed0``, so that no two jobs share one."""
    parts, combinations = [], 1
    for override in OverridesParser.create().parse_overrides(overrides):
        if not override.is_sweep_override():
            continue
        key = override.key_or_group
        group = (CONFIG_DIR / key).is_dir()  # a config group's value is its choice, not its config
        parts.append(f"${{hydra:runtime.choices.{key}}}" if group else f"${{{key}}}")
        if combinations is not None:
            combinations = len(list(override.sweep_string_iterator())) * combinations \
                if override.is_discrete_sweep() else None
    return Sweep("/".join([*parts, "seed${seed}"]), combinations)


def multirun_command(experiment: str, seeds: list[int], runs_dir: Path, launcher: str, jobs: int,
                     overrides: list[str]) -> list[str]:
    """The ``qlearn-train --multirun`` call: one job per seed (and per value of any other swept key), each in
    ``<runs_dir>/seed<k>`` (``<runs_dir>/<value>/seed<k>`` for each other swept key, see `swept`). For
    ``--launcher ray`` it is only recorded: `qlearn.cli.ray_launch` runs the same jobs as Ray tasks."""
    command = [sys.executable, "-m", "qlearn.cli.train", "--multirun", f"experiment={experiment}",
               f"seed={','.join(str(s) for s in seeds)}", f"hydra/launcher={launcher}",
               f"hydra.sweep.dir={runs_dir}", f"hydra.sweep.subdir={swept(overrides).subdir}"]
    if launcher == "joblib":
        command.append(f"hydra.launcher.n_jobs={jobs}")
    return command + overrides


def check_launcher(launcher: str) -> None:
    """Refuse an unknown launcher, or one whose Hydra plugin is not installed, naming the pip package."""
    if launcher not in LAUNCHERS:
        raise QlearnError(f"unknown launcher {launcher!r}; choose from {sorted(LAUNCHERS)}.")
    if LAUNCHERS[launcher] is None:
        return
    package, module = LAUNCHERS[launcher]
    if importlib.util.find_spec(module) is None:
        raise QlearnError(f"--launcher {launcher} needs {package}: pip install 'qlearn[{EXTRAS[launcher]}]' "
                          f"(or pip install {package}).")


def check_experiment(name: str) -> None:
    """Refuse a name that is not a ``configs/experiment`` preset, naming the close matches and every preset."""
    root = CONFIG_DIR / "experiment"
    presets = sorted(p.relative_to(root).with_suffix("").as_posix() for p in root.rglob("*.yaml"))
    if name in presets:
        return
    close = difflib.get_close_matches(name, presets, n=3)
    hint = f" (closest: {', '.join(close)})" if close else ""
    raise QlearnError(f"unknown experiment preset {name!r}{hint}; nothing was run. Pass one of: {', '.join(presets)}.")


def _discard(out: Path, made: list[Path]) -> None:
    """Remove what a failed attempt wrote: ``out`` and the parents it created (``made``, innermost first,
    removed only while empty), or the contents of the empty ``out`` it was given."""
    if not made:
        for child in out.iterdir():
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child, ignore_errors=True)
            else:
                child.unlink(missing_ok=True)
        return
    shutil.rmtree(out, ignore_errors=True)
    for parent in made[1:]:
        try:
            parent.rmdir()
        except OSError:  # another command's output lives there too
            break


def reproduce(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="qlearn-reproduce", description=(
        "Run a qlearn-train experiment preset over several seeds in parallel (Hydra multirun) and write a report: "
        "IQM and 95%% bootstrap CIs over seeds, learning curves (CSV, PNG) and the gap to published references."))
    parser.add_argument("experiment", help="a configs/experiment preset, e.g. dqn_cartpole")
    parser.add_argument("overrides", nargs="*", help="qlearn-train overrides for every seed, e.g. total_steps=50000")
    parser.add_argument("--seeds", type=int, default=5, help="number of seeds (default 5)")
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--out", type=Path, help="report directory (default reports/<experiment>); must not exist")
    parser.add_argument("--launcher", default="joblib", help=f"Hydra launcher: {', '.join(LAUNCHERS)} (default joblib)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="parallel local jobs (joblib)")
    parser.add_argument("--ray-address", default=os.environ.get("RAY_ADDRESS"),
                        help="--launcher ray: a running cluster (e.g. 127.0.0.1:6379; default $RAY_ADDRESS); "
                             "unset: a Ray instance for this command")
    parser.add_argument("--references", type=Path, default=DEFAULT_REFERENCES,
                        help="directory of reference YAML files (default: the ones shipped with qlearn, benchmarks/reference)")
    args = parser.parse_intermixed_args(argv)
    if args.seeds < 1 or args.jobs < 1:
        raise QlearnError("--seeds and --jobs must be >= 1.")
    check_experiment(args.experiment)
    check_launcher(args.launcher)
    out = args.out if args.out is not None else Path("reports") / args.experiment
    if out.exists() and any(out.iterdir()):
        raise QlearnError(f"{out} already exists and is not empty; nothing was run. Choose another --out, or "
                          f"re-aggregate its finished runs with: qlearn-report {out}")
    references = load_references(args.references) if args.references.is_dir() else []
    if not references:
        print(f"qlearn-reproduce: no reference files in {args.references}; the report will have no reference "
              f"column (pass --references <dir of reference YAML files>).", file=sys.stderr)
    seeds = list(range(args.first_seed, args.first_seed + args.seeds))
    runs_dir = (out / "runs").resolve()
    overrides = list(args.overrides)
    if args.launcher == "ray" and swept(overrides).subdir != "seed${seed}":
        raise QlearnError("--launcher ray runs one job per seed; sweep other keys with one qlearn-reproduce per "
                          "value, or use --launcher joblib / submitit_slurm. Nothing was run.")
    command = multirun_command(args.experiment, seeds, runs_dir, args.launcher, min(args.jobs, args.seeds), overrides)
    env = dict(os.environ)
    if "OMP_NUM_THREADS" not in env:  # parallel local jobs share the cores instead of oversubscribing them
        env["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // min(args.jobs, args.seeds)))

    def launch() -> int:
        if args.launcher != "ray":
            return subprocess.run(command, env=env, check=False).returncode
        from qlearn.cli.ray_launch import run_seeds

        return run_seeds(args.experiment, seeds, runs_dir, overrides, args.ray_address,
                         {"OMP_NUM_THREADS": env["OMP_NUM_THREADS"]})

    typed = "qlearn-reproduce " + shlex.join(sys.argv[1:] if argv is None else argv)
    shown = shlex.join(command) if args.launcher != "ray" else (
        f"on Ray ({args.ray_address or 'a local instance'}), one task per seed: qlearn-train experiment={args.experiment} "
        f"seed={','.join(map(str, seeds))} hydra.run.dir={runs_dir}/seed<seed> {shlex.join(overrides)}")
    print(f"qlearn-reproduce: {shown}", file=sys.stderr)
    made = [p for p in (out, *out.parents) if not p.exists()]  # what mkdir creates, innermost first
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    finished = False
    try:
        returncode = launch()
        finished = bool(finished_runs(out / "runs"))
    finally:  # no run finished (a failure, Ctrl-C): leave nothing that would block the retry
        if not finished:
            _discard(out, made)
    if not finished:
        raise QlearnError(f"no run finished (multirun exit {returncode}); its output is above. Nothing was kept in "
                          f"{out}, so the same command can run again once the cause is fixed.")
    wall = time.perf_counter() - start
    (out / "reproduce.json").write_text(json.dumps(
        {"command": typed, "multirun": command, "seeds": seeds, "launcher": args.launcher, "wall_time_s": wall,
         "returncode": returncode}, indent=2))
    runs = read_sweep(out / "runs")
    path = write_report(runs, references, out, command=typed)
    print(f"qlearn-reproduce: {len(runs)} runs in {wall:.0f} s; report: {path}", file=sys.stderr)
    combinations = swept(list(args.overrides)).combinations
    expected = None if combinations is None else len(seeds) * combinations
    if returncode or (expected is not None and len(runs) < expected):
        missing = f"{expected - len(runs)} of {expected} runs" if expected is not None else "some runs"
        print(f"qlearn-reproduce: error: {missing} did not finish (multirun exit {returncode}); the report covers "
              f"the finished ones.", file=sys.stderr)
        return 1
    return 0


def report(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="qlearn-report", description=(
        "Aggregate finished qlearn-train runs (every results.json under a directory) into a report."))
    parser.add_argument("directory", type=Path, help="a qlearn-reproduce output, or any directory of runs")
    parser.add_argument("--out", type=Path, help="where to write the report (default: the directory itself)")
    parser.add_argument("--references", type=Path, default=DEFAULT_REFERENCES)
    args = parser.parse_args(argv)
    runs = read_sweep(args.directory)
    references = load_references(args.references) if args.references.is_dir() else []
    path = write_report(runs, references, args.out or args.directory,
                        command="qlearn-report " + shlex.join(sys.argv[1:] if argv is None else argv))
    print(f"qlearn-report: {len(runs)} runs; report: {path}", file=sys.stderr)
    return 0


def _run(prog: str, entry: Callable[[list[str] | None], int]) -> None:
    try:
        sys.exit(entry(None))
    except QlearnError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        sys.exit(2)


def main() -> None:
    _run("qlearn-reproduce", reproduce)


def report_main() -> None:
    _run("qlearn-report", report)


if __name__ == "__main__":
    main()
