"""qlearn-reproduce --launcher ray against a running Ray head (started here on the loopback interface), as a cluster
user runs it: every seed a Ray task, then the report."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

PORT = 6391


def test_reproduce_on_a_running_ray_head_gets_a_report_with_every_seed(tmp_path: Path) -> None:
    pytest.importorskip("ray")
    ray_cli = Path(sys.executable).with_name("ray")
    temp = tempfile.mkdtemp(prefix="qlray", dir="/tmp")  # short: Ray's socket paths must fit in 107 bytes
    # loopback only: without this Ray resolves 127.0.0.1 to the machine's public address and binds every interface
    # (ray/_private/services.py resolve_ip_for_localhost; the variable is Ray's switch for single-machine clusters)
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
    start = subprocess.run([str(ray_cli), "start", "--head", "--node-ip-address=127.0.0.1", f"--port={PORT}",
                            "--num-cpus=2", "--include-dashboard=false", "--disable-usage-stats", f"--temp-dir={temp}"],
                           capture_output=True, text=True, timeout=180, env=env)
    assert start.returncode == 0, start.stderr[-3000:]
    try:
        out = tmp_path / "report"
        proc = subprocess.run([sys.executable, "-m", "qlearn.cli.reproduce", "dqn_cartpole", "--seeds", "2",
                               "--launcher", "ray", "--ray-address", f"127.0.0.1:{PORT}", "--out", str(out),
                               "total_steps=400", "trainer.learning_starts=200", "eval.every=200", "eval.episodes=1",
                               "logger=none", "device=cpu"], capture_output=True, text=True, timeout=600, env=env)
        assert proc.returncode == 0, proc.stderr[-4000:]
        assert "on Ray (127.0.0.1:6391), one task per seed" in proc.stderr
        assert "| dqn on CartPole-v1 | 2 |" in (out / "report.md").read_text()
        assert sorted(p.name for p in (out / "runs").iterdir()) == ["seed0", "seed1"]
    finally:
        subprocess.run([str(ray_cli), "stop", "--force"], capture_output=True, timeout=120, env=env)
        shutil.rmtree(temp, ignore_errors=True)


def test_ray_refuses_a_sweep_beside_the_seed_before_running_anything(tmp_path: Path) -> None:
    pytest.importorskip("ray")
    proc = subprocess.run([sys.executable, "-m", "qlearn.cli.reproduce", "dqn_cartpole", "--seeds", "2", "--launcher",
                           "ray", "--out", str(tmp_path / "r"), "agent.lr=1e-3,1e-4"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "--launcher ray runs one job per seed" in proc.stderr
    assert not (tmp_path / "r").exists()
