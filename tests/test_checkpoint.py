"""Checkpoint files: atomic, tagged, loaded with weights_only=True, foreign files refused."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import torch

from qlearn.checkpoint import FORMAT, latest_checkpoint, load_buffer_state, load_checkpoint, save_checkpoint
from qlearn.errors import QlearnError


class Payload:
    """An arbitrary object: unpickling it could run code, so it must be refused."""

    def __reduce__(self):  # noqa: ANN204
        return (print, ("this would have run",))


def test_save_and_load_round_trip_keeps_only_the_newest(tmp_path: Path) -> None:
    for step in (10, 20, 30):
        save_checkpoint(tmp_path, step, {"agent": {"w": torch.full((2,), float(step))}}, {"obs": torch.ones(3)}, keep=2)
    latest = latest_checkpoint(tmp_path)
    assert latest is not None and latest.name == "step_000000030.pt"
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == [
        "replay_000000020.pt", "replay_000000030.pt", "step_000000020.pt", "step_000000030.pt"]
    state = load_checkpoint(tmp_path)  # a run directory resolves to its latest checkpoint
    assert state["format"] == FORMAT and state["step"] == 30
    assert torch.equal(state["agent"]["w"], torch.full((2,), 30.0))
    assert torch.equal(load_buffer_state(latest)["obs"], torch.ones(3))
    assert not list((tmp_path / "checkpoints").glob("*.tmp"))


def test_a_pickle_carrying_arbitrary_objects_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "evil.pt"
    torch.save({"format": FORMAT, "agent": Payload()}, path)
    with pytest.raises(QlearnError, match="refuses to unpickle|not a qlearn checkpoint"):
        load_checkpoint(path)
    raw = tmp_path / "raw.pkl"
    raw.write_bytes(pickle.dumps({"x": Payload()}))
    with pytest.raises(QlearnError):
        load_checkpoint(raw)


def test_files_that_are_not_qlearn_checkpoints_are_refused(tmp_path: Path) -> None:
    plain = tmp_path / "plain.pt"
    torch.save({"weights": torch.zeros(2)}, plain)
    with pytest.raises(QlearnError, match="not a qlearn checkpoint"):
        load_checkpoint(plain)
    truncated = tmp_path / "truncated.pt"
    save_checkpoint(tmp_path / "run", 5, {"agent": {"w": torch.zeros(1000)}})
    truncated.write_bytes((tmp_path / "run" / "checkpoints" / "step_000000005.pt").read_bytes()[:100])
    with pytest.raises(QlearnError):
        load_checkpoint(truncated)
    empty_run = tmp_path / "empty_run"
    empty_run.mkdir()
    with pytest.raises(QlearnError, match="no checkpoint"):
        load_checkpoint(empty_run)
    with pytest.raises(QlearnError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.pt")
