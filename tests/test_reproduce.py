"""qlearn-reproduce refuses what it cannot run before creating anything, and a failed attempt leaves nothing that
blocks the retry. The multirun is replaced by a stand-in here; tests/test_reports.py runs the real one."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from qlearn.cli import reproduce as cli
from qlearn.errors import QlearnError

ARGS = ["--seeds", "1", "--launcher", "basic", "--references", "no-references"]


def sweep_dir(command: list[str]) -> Path:
    return Path(next(a for a in command if a.startswith("hydra.sweep.dir=")).split("=", 1)[1])


def failing_multirun(command: list[str], **_: Any) -> subprocess.CompletedProcess:
    """A multirun whose only job crashed after writing its logs (as Hydra and submitit do)."""
    logs = sweep_dir(command) / "seed0" / ".submitit"
    logs.mkdir(parents=True)
    (logs / "job.err").write_text("Traceback ...\n")
    return subprocess.CompletedProcess(command, 1)


def interrupted_multirun(command: list[str], **_: Any) -> subprocess.CompletedProcess:
    (sweep_dir(command) / "seed0").mkdir(parents=True)
    raise KeyboardInterrupt


def finished_multirun(command: list[str], **_: Any) -> subprocess.CompletedProcess:
    run = sweep_dir(command) / "seed0"
    run.mkdir(parents=True)
    (run / "results.json").write_text(json.dumps({
        "agent": "dqn", "env_id": "CartPole-v1", "seed": 0, "total_steps": 100, "updates": 0, "wall_time_s": 1.0,
        "final_eval": {"mean": 9.0, "std": 0.0, "episodes": 2}, "evaluations": [{"step": 100, "mean": 9.0}]}))
    return subprocess.CompletedProcess(command, 0)


def test_an_unknown_preset_is_refused_in_one_line_before_anything_is_created(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(cli.subprocess, "run", failing_multirun)
    monkeypatch.setattr("sys.argv", ["qlearn-reproduce", "dqn_cartpol", *ARGS])
    with pytest.raises(SystemExit) as exit_info:
        cli.main()
    assert exit_info.value.code == 2
    message = capsys.readouterr().err
    assert message.count("\n") == 1 and message.startswith("qlearn-reproduce: error: unknown experiment preset")
    assert "'dqn_cartpol' (closest: dqn_cartpole," in message and "sac_mujoco" in message  # then every preset
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("multirun", [failing_multirun, interrupted_multirun])
@pytest.mark.parametrize("given_out", [False, True])
def test_a_multirun_that_finishes_no_run_leaves_nothing_and_the_retry_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, multirun: Any, given_out: bool
) -> None:
    monkeypatch.chdir(tmp_path)
    out = ["--out", "mine"] if given_out else []
    if given_out:
        (tmp_path / "mine").mkdir()  # an empty --out is accepted and stays as it was
    monkeypatch.setattr(cli.subprocess, "run", multirun)
    with pytest.raises(QlearnError if multirun is failing_multirun else KeyboardInterrupt) as err:
        cli.reproduce(["dqn_cartpole", *ARGS, *out])
    if multirun is failing_multirun:
        assert "no run finished (multirun exit 1)" in str(err.value) and "can run again" in str(err.value)
    assert [p.name for p in tmp_path.rglob("*")] == (["mine"] if given_out else [])
    monkeypatch.setattr(cli.subprocess, "run", finished_multirun)
    assert cli.reproduce(["dqn_cartpole", *ARGS, *out]) == 0
    assert (tmp_path / ("mine" if given_out else "reports/dqn_cartpole") / "report.md").is_file()


def test_a_key_swept_beside_the_seed_gets_its_own_run_directories() -> None:
    """``env.id=A,B`` gives every (game, seed) job its own directory (they shared runs/seed<k> and collided)."""
    sweep = cli.swept(["env.id=BoxingNoFrameskip-v4,BreakoutNoFrameskip-v4", "agent=dqn,double_dqn", "total_steps=5"])
    assert sweep.subdir == "${env.id}/${hydra:runtime.choices.agent}/seed${seed}"
    assert sweep.combinations == 4
    assert cli.swept(["total_steps=5"]) == cli.Sweep("seed${seed}", 1)
    assert cli.swept(["agent.lr=interval(0.0001,0.001)"]).combinations is None  # not a list: count unknown
    command = cli.multirun_command("dqn_cartpole", [0, 1], Path("/r"), "basic", 1, ["env.id=A,B"])
    assert "hydra.sweep.subdir=${env.id}/seed${seed}" in command


def test_the_published_references_ship_inside_the_package() -> None:
    """qlearn-reproduce compares outside a checkout: its default references live under the installed package."""
    from qlearn.reports import load_references

    assert cli.DEFAULT_REFERENCES.parent.name == "qlearn" and cli.DEFAULT_REFERENCES.is_dir()
    assert any(r.experiment == "drq_eps_atari100k" for r in load_references(cli.DEFAULT_REFERENCES))
