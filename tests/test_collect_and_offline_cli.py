"""qlearn-collect and offline qlearn-train through real subprocesses, on CartPole with tiny budgets."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from qlearn.offline import load_dataset

COLLECT = [sys.executable, "-m", "qlearn.cli.collect"]
TRAIN = [sys.executable, "-m", "qlearn.cli.train"]
EVAL = [sys.executable, "-m", "qlearn.cli.evaluate"]


def run(args: list[str], timeout: float = 300, **env_vars: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1", **env_vars}
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout, env=env)


@pytest.fixture(scope="module")
def cartpole_datasets(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every kind as HDF5 in the returned folder, and with Minari installed also as Minari datasets
    qlearn-test/cartpole/<kind>-v0 in the local store <folder>/minari."""
    out = tmp_path_factory.mktemp("datasets")
    minari = ["minari_namespace=qlearn-test/cartpole"] if importlib.util.find_spec("minari") else []
    proc = run(COLLECT + ["env_id=CartPole-v1", "behaviour=dqn_cartpole", "total_steps=5000", "eval_every=1000",
                          "eval_episodes=2", "transitions=400", "epsilon=0.1", "device=cpu", f"out_dir={out}",
                          "overrides=['trainer.learning_starts=500','logger=none']", *minari],
               MINARI_DATASETS_PATH=str(out / "minari"))
    assert proc.returncode == 0, proc.stderr
    return out


def test_collect_writes_minari_datasets_that_minari_opens_and_iql_trains_on_by_id(
        cartpole_datasets: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    minari = pytest.importorskip("minari")
    store = cartpole_datasets / "minari"
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(store))
    report = json.loads((cartpole_datasets / "CartPole-v1-collect.json").read_text())
    for kind in ("random", "medium-replay"):
        dataset_id = f"qlearn-test/cartpole/{kind}-v0"
        assert report["datasets"][kind]["minari_id"] == dataset_id
        opened = minari.load_dataset(dataset_id)
        hdf5 = load_dataset(cartpole_datasets / f"CartPole-v1-{kind}.hdf5")
        assert opened.total_steps == len(hdf5) and opened.spec.env_spec.id == "CartPole-v1"
        by_id = load_dataset(dataset_id)
        for key in ("observations", "next_observations", "actions", "rewards", "terminals", "timeouts"):
            np.testing.assert_array_equal(getattr(by_id, key).numpy(), getattr(hdf5, key).numpy())
    run_dir = tmp_path / "run"
    proc = run(TRAIN + ["experiment=iql_discrete", "dataset.path=qlearn-test/cartpole/medium-replay-v0",
                        "trainer.total_updates=40", "eval.every=20", "eval.episodes=2", "device=cpu", "logger=none",
                        f"hydra.run.dir={run_dir}"], MINARI_DATASETS_PATH=str(store))
    assert proc.returncode == 0, proc.stderr
    results = json.loads((run_dir / "results.json").read_text())
    assert results["updates"] == 40 and results["env_id"] == "CartPole-v1"  # the env id from Minari's metadata
    proc = run(COLLECT + ["env_id=CartPole-v1", "kinds=[random]", "transitions=10", f"out_dir={tmp_path / 'again'}",
                          "minari_namespace=qlearn-test/cartpole"], MINARI_DATASETS_PATH=str(store))
    assert proc.returncode == 2 and "already holds ['qlearn-test/cartpole/random-v0']" in proc.stderr
    assert not (tmp_path / "again").exists()  # refused before any work


def test_collect_writes_every_kind_with_consistent_metadata(cartpole_datasets: Path) -> None:
    report = json.loads((cartpole_datasets / "CartPole-v1-collect.json").read_text())
    snapshot = report["medium_snapshot"]
    assert snapshot["eval_return"] >= snapshot["threshold"]
    sizes = {}
    for kind in ("random", "medium", "medium-replay", "expert", "medium-expert"):
        data = load_dataset(cartpole_datasets / f"CartPole-v1-{kind}.hdf5")
        sizes[kind] = len(data)
        assert data.metadata["env_id"] == "CartPole-v1" and data.metadata["kind"] == kind
        assert data.metadata["ref_min_score"] == pytest.approx(report["random_return"])
        assert data.metadata["ref_max_score"] == pytest.approx(report["expert_return"])
        assert data.discrete
    assert sizes["random"] == sizes["medium"] == sizes["expert"] == 400
    assert sizes["medium-expert"] == 800
    assert sizes["medium-replay"] == snapshot["env_step"]  # the behaviour run's transitions up to the snapshot
    with h5py.File(cartpole_datasets / "CartPole-v1-random.hdf5") as f:
        obs, nxt = f["observations"][:], f["next_observations"][:]
        ends = f["terminals"][:] | f["timeouts"][:]
    # within an episode each next observation is the following observation
    inside = np.flatnonzero(~ends[:-1])
    np.testing.assert_array_equal(nxt[inside], obs[inside + 1])
    assert ends[-1]


def test_collect_refuses_to_overwrite(cartpole_datasets: Path) -> None:
    before = (cartpole_datasets / "CartPole-v1-random.hdf5").read_bytes()
    proc = run(COLLECT + ["env_id=CartPole-v1", "kinds=[random]", "transitions=10", f"out_dir={cartpole_datasets}"])
    assert proc.returncode == 2 and "never overwrites" in proc.stderr and "Traceback" not in proc.stderr
    assert (cartpole_datasets / "CartPole-v1-random.hdf5").read_bytes() == before


@pytest.mark.parametrize("experiment", ["iql_discrete", "cql_discrete", "bc_discrete", "bcq_discrete"])
def test_offline_presets_train_and_evaluate_from_a_collected_dataset(cartpole_datasets: Path, tmp_path: Path,
                                                                     experiment: str) -> None:
    run_dir = tmp_path / "run"
    data = cartpole_datasets / "CartPole-v1-medium-replay.hdf5"
    proc = run(TRAIN + [f"experiment={experiment}", f"dataset.path={data}", "trainer.total_updates=60",
                        "eval.every=30", "eval.episodes=2", "dataset.normalize_observations=true",
                        "device=cpu", f"hydra.run.dir={run_dir}"])
    assert proc.returncode == 0, proc.stderr
    results = json.loads((run_dir / "results.json").read_text())
    assert results["updates"] == 60 and results["env_id"] == "CartPole-v1"  # env id read from the dataset
    low, high = results["scores"]["normalized_score"]
    final = results["final_eval"]
    assert final["normalized_score"] == pytest.approx(100 * (final["mean"] - low) / (high - low))
    proc = run(EVAL + [f"checkpoint={run_dir}", "episodes=2"])  # qlearn-eval re-applies the obs normalisation
    assert proc.returncode == 0, proc.stderr


def test_offline_training_refuses_a_dataset_for_another_env(cartpole_datasets: Path, tmp_path: Path) -> None:
    data = cartpole_datasets / "CartPole-v1-random.hdf5"
    proc = run(TRAIN + ["experiment=iql_discrete", f"dataset.path={data}", "env.id=Acrobot-v1",
                        f"hydra.run.dir={tmp_path / 'run'}"])
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "Acrobot-v1" in proc.stderr
    proc = run(TRAIN + ["experiment=iql_discrete", f"hydra.run.dir={tmp_path / 'run2'}"])
    assert proc.returncode == 2 and "dataset.path=" in proc.stderr


def test_iql_finetune_runs_offline_then_online_from_the_dataset(cartpole_datasets: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    data = cartpole_datasets / "CartPole-v1-medium-replay.hdf5"
    args = [f"dataset.path={data}", "trainer.offline_updates=40", "total_steps=300", "trainer.learning_starts=32",
            "trainer.batch_size=32", "buffer.capacity=20000", "eval.every=100", "eval.episodes=2", "device=cpu",
            "logger=none", f"hydra.run.dir={run_dir}"]
    proc = run(TRAIN + ["experiment=iql_finetune", *args])
    assert proc.returncode == 0, proc.stderr
    offline = json.loads((run_dir / "offline" / "results.json").read_text())
    online = json.loads((run_dir / "results.json").read_text())
    assert offline["updates"] == 40 and online["total_steps"] == 300 and online["env_id"] == "CartPole-v1"
    assert online["updates"] == 300 - 32  # one update per env step after learning_starts
    replay = sorted((run_dir / "checkpoints").glob("replay_*.pt"))[-1]
    import torch

    state = torch.load(replay, weights_only=True)
    assert int(state["storage"]["count"]) == len(load_dataset(data)) + 300  # the dataset, then the online steps
    proc = run(TRAIN + ["experiment=iql_finetune", *args])  # the run directory is never overwritten
    assert proc.returncode == 2 and "already holds a run" in proc.stderr


def test_snapshot_recorder_stops_the_trainer_at_the_first_return_reaching_stop_at() -> None:
    from types import SimpleNamespace

    import torch

    from qlearn.offline.collect import SnapshotRecorder

    stopped: list[int] = []
    trainer = SimpleNamespace(agent=torch.nn.Linear(2, 1), env_step=0)
    trainer.stop = lambda: stopped.append(trainer.env_step)
    recorder = SnapshotRecorder(stop_at=50.0)
    for step, ret in ((1000, 10.0), (2000, 49.9), (3000, 50.0), (4000, 80.0)):
        trainer.env_step = step
        recorder(trainer, {"mean": ret})
    assert stopped == [3000, 4000]  # every call at or above the level asks to stop; the trainer stops at the first
    assert recorder.first_reaching(50.0).env_step == 3000
    assert SnapshotRecorder().stop_at is None


def test_collect_with_an_unreachable_reference_expert_fails_clearly_and_the_retry_is_not_blocked(
        tmp_path: Path) -> None:
    args = COLLECT + ["env_id=CartPole-v1", "behaviour=dqn_cartpole", "total_steps=1000", "eval_every=500",
                      "eval_episodes=1", "transitions=200", "expert_return=100000", "kinds=[medium-replay]",
                      "device=cpu", f"out_dir={tmp_path}", "overrides=['trainer.learning_starts=500','logger=none']"]
    proc = run(args)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "no evaluation of the behaviour run reached the medium level" in proc.stderr
    assert not list(tmp_path.glob("*.hdf5"))  # nothing half-made is left as a dataset
    # the retry runs again (the failed attempt's behaviour run is moved aside, not in the way)
    proc = run(args)
    assert proc.returncode == 2 and "no evaluation of the behaviour run reached the medium level" in proc.stderr
    assert "moved it to" in proc.stdout and (tmp_path / "CartPole-v1-behaviour-seed0.failed").is_dir()

