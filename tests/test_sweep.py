"""Hydra's Optuna sweeper tunes any preset: qlearn-train returns the final evaluation's mean as the objective."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml


def test_an_optuna_sweep_over_the_learning_rate_reports_the_best_trial(tmp_path: Path) -> None:
    pytest.importorskip("hydra_plugins.hydra_optuna_sweeper")
    command = [sys.executable, "-m", "qlearn.cli.train", "--multirun", "hydra/sweeper=optuna",
               "hydra.sweeper.n_trials=4", "hydra.sweeper.direction=maximize", "hydra.sweeper.sampler.seed=0",
               "agent.lr=tag(log,interval(1e-4,1e-2))", "total_steps=1500", "eval.every=0", "eval.episodes=2",
               "trainer.learning_starts=200", "device=cpu", "logger=none", f"hydra.sweep.dir={tmp_path}"]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    best = yaml.safe_load((tmp_path / "optimization_results.yaml").read_text())
    finals = []
    for trial in range(4):
        results = yaml.safe_load((tmp_path / str(trial) / "results.json").read_text())  # JSON is YAML
        finals.append(results["final_eval"]["mean"])
    assert best["best_value"] == max(finals)
    assert 1e-4 <= best["best_params"]["agent.lr"] <= 1e-2
