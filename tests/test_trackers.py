"""Loggers as a list of back ends: a W&B run (offline) and an MLflow run (file store) hold the same scalars and
hyperparameters as TensorBoard; bad logger choices are one line."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from qlearn.errors import QlearnError
from qlearn.logging import CSVLogger, MultiLogger, NullLogger, build_logger, flat_hyperparameters

TRAIN = [sys.executable, "-m", "qlearn.cli.train"]
TINY = ["total_steps=1200", "eval.every=600", "eval.episodes=2", "trainer.learning_starts=200", "device=cpu"]


def test_flat_hyperparameters_keeps_scalars_and_writes_the_rest_as_text() -> None:
    flat = flat_hyperparameters({"agent": {"lr": 1e-4, "net": {"sizes": [64, 64]}, "clip": None}, "seed": 3,
                                 "cuda": False, "name": "dqn"})
    assert flat == {"agent.lr": 1e-4, "agent.net.sizes": "[64, 64]", "agent.clip": "None", "seed": 3,
                    "cuda": False, "name": "dqn"}


def test_build_logger_reads_the_list_form_and_the_recorded_boolean_form(tmp_path: Path) -> None:
    assert isinstance(build_logger({}, tmp_path), NullLogger)
    assert isinstance(build_logger({"csv": {}}, tmp_path), CSVLogger)
    assert isinstance(build_logger({"tensorboard": True, "csv": True}, tmp_path), MultiLogger)  # runs before the list
    assert isinstance(build_logger({"tensorboard": False, "csv": False}, tmp_path), NullLogger)
    with pytest.raises(QlearnError, match="did not compose into logger settings"):
        build_logger("wandb", tmp_path)  # type: ignore[arg-type]
    with pytest.raises(QlearnError, match="logger 'neptune' is unknown: choose from tensorboard, csv, wandb, mlflow"):
        build_logger({"neptune": {}}, tmp_path)
    with pytest.raises(QlearnError, match=r"logger\.csv: .*unexpected keyword argument 'every'"):
        build_logger({"csv": {"every": 3}}, tmp_path)


def tensorboard_run(run_dir: Path) -> tuple[dict[tuple[str, int], float], dict[str, object]]:
    """Every (tag, step) -> value and the HParams of the run's TensorBoard events."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2

    events = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
    events.Reload()
    scalars = {(tag, e.step): e.value for tag in events.Tags()["scalars"] for e in events.Scalars(tag)}
    content = events.PluginTagToContent("hparams")["_hparams_/session_start_info"]
    info = plugin_data_pb2.HParamsPluginData.FromString(content).session_start_info
    hparams = {k: getattr(v, v.WhichOneof("kind")) for k, v in info.hparams.items()}
    return scalars, hparams


def wandb_records(path: Path) -> Iterator[bytes]:
    """The records of a W&B ``.wandb`` file: LevelDB's log format (32 KiB blocks; each piece a 7-byte header of
    checksum, length and kind FULL=1 / FIRST=2 / MIDDLE=3 / LAST=4), after the 7-byte ``:W&B`` file header."""
    data, pos, block, pieces = path.read_bytes(), 7, 32768, b""
    assert data[:4] == b":W&B"
    while pos + 7 <= len(data):
        if block - pos % block < 7:  # a block's tail too short for a header is padding
            pos += block - pos % block
            continue
        _, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        piece, pos = data[pos + 7:pos + 7 + length], pos + 7 + length
        if kind in (1, 4):
            yield pieces + piece
            pieces = b""
        elif kind in (2, 3):
            pieces += piece


def wandb_run(run_dir: Path) -> tuple[dict[tuple[str, int], float], dict[str, object]]:
    from wandb.proto import wandb_internal_pb2

    (path,) = run_dir.glob("wandb/offline-run-*/run-*.wandb")
    scalars: dict[tuple[str, int], float] = {}
    config: dict[str, object] = {}
    for raw in wandb_records(path):
        record = wandb_internal_pb2.Record.FromString(raw)
        if record.WhichOneof("record_type") == "history":
            row = {item.key or "/".join(item.nested_key): json.loads(item.value_json) for item in record.history.item}
            scalars.update({(k, row["env_step"]): v for k, v in row.items() if not k.startswith("_") and k != "env_step"})
        elif record.WhichOneof("record_type") == "config":
            config.update({item.key or "/".join(item.nested_key): json.loads(item.value_json)
                           for item in record.config.update})
    return scalars, {k: v for k, v in config.items() if not k.startswith("_")}


def mlflow_run(run_dir: Path) -> tuple[dict[tuple[str, int], float], dict[str, str]]:
    import os

    from mlflow.tracking import MlflowClient

    os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"
    client = MlflowClient(tracking_uri=(run_dir / "mlruns").as_uri())
    (run,) = client.search_runs([client.get_experiment_by_name("qlearn").experiment_id])
    scalars = {(key, m.step): m.value for key in run.data.metrics for m in client.get_metric_history(run.info.run_id, key)}
    return scalars, run.data.params


def test_wandb_and_mlflow_hold_what_tensorboard_holds(tmp_path: Path) -> None:
    pytest.importorskip("wandb")
    pytest.importorskip("mlflow")
    run_dir = tmp_path / "run"
    proc = subprocess.run(TRAIN + TINY + ["logger=[tensorboard,csv,wandb,mlflow]", f"hydra.run.dir={run_dir}"],
                          capture_output=True, text=True, timeout=600,
                          env={**__import__("os").environ, "WANDB_SILENT": "true", "WANDB_MODE": "offline"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    tb_scalars, tb_hparams = tensorboard_run(run_dir)
    assert ("eval/episode_return", 1200) in tb_scalars and len(tb_scalars) > 20
    hyperparameters = flat_hyperparameters(yaml.safe_load((run_dir / "config.yaml").read_text()))
    assert tb_hparams == hyperparameters and hyperparameters["agent.lr"] == pytest.approx(2.5e-4)

    wb_scalars, wb_config = wandb_run(run_dir)
    assert wb_scalars.keys() == tb_scalars.keys()
    assert all(wb_scalars[k] == pytest.approx(tb_scalars[k], rel=1e-6) for k in tb_scalars)  # TB stores float32
    assert wb_config == hyperparameters

    ml_scalars, ml_params = mlflow_run(run_dir)
    assert ml_scalars.keys() == tb_scalars.keys()
    assert all(ml_scalars[k] == pytest.approx(tb_scalars[k], rel=1e-6) for k in tb_scalars)
    assert ml_params == {k: str(v) for k, v in hyperparameters.items()}


def test_a_tracker_without_its_client_library_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "wandb", None)  # import wandb now raises ImportError
    with pytest.raises(QlearnError, match=r'logger wandb needs its client library: pip install "qlearn\[wandb\]"'):
        build_logger({"csv": {}, "wandb": {}}, tmp_path)
