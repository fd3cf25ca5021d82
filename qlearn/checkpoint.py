"""Checkpoints: one ``torch.save``d dict of tensors and plain values, loaded with ``weights_only=True``.

Layout inside a run directory::

    checkpoints/step_000010000.pt      agent + trainer counters + RNG states + resolved config
    checkpoints/replay_000010000.pt    the replay buffer at the same step (optional)

Files are written to a temporary name and renamed into place, so a crash never leaves a
half-written checkpoint; the replay file is written first, so a complete ``step_*.pt`` always
has its buffer beside it. Nothing is ever unpickled beyond tensors and plain containers.
"""

from __future__ import annotations

import os
import pickle
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from qlearn import __version__
from qlearn.errors import QlearnError

FORMAT = "qlearn-checkpoint-v1"
_STEP_RE = re.compile(r"^step_(\d+)\.pt$")


def atomic_save(obj: Any, path: Path) -> None:
    """``torch.save`` to ``path`` through a temporary file and an atomic rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def checkpoint_dir(run_dir: str | Path) -> Path:
    return Path(run_dir) / "checkpoints"


def save_checkpoint(
    run_dir: str | Path,
    step: int,
    state: dict[str, Any],
    buffer_state: dict[str, Any] | None = None,
    keep: int = 2,
) -> Path:
    """Write ``state`` (and the buffer) for ``step``; keep only the ``keep`` newest checkpoints."""
    directory = checkpoint_dir(run_dir)
    if buffer_state is not None:
        atomic_save(buffer_state, directory / f"replay_{step:09d}.pt")
    path = directory / f"step_{step:09d}.pt"
    atomic_save({"format": FORMAT, "qlearn_version": __version__, "step": step, **state}, path)
    for old in list_checkpoints(run_dir)[:-keep] if keep > 0 else []:
        old.unlink(missing_ok=True)
        (old.parent / old.name.replace("step_", "replay_")).unlink(missing_ok=True)
    return path


def list_checkpoints(run_dir: str | Path) -> list[Path]:
    """Complete checkpoints of a run, oldest first."""
    directory = checkpoint_dir(run_dir)
    if not directory.is_dir():
        return []
    found = [p for p in directory.iterdir() if _STEP_RE.match(p.name)]
    return sorted(found, key=lambda p: int(_STEP_RE.match(p.name).group(1)))  # type: ignore[union-attr]


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    found = list_checkpoints(run_dir)
    return found[-1] if found else None


class CheckpointUnreadable(QlearnError):
    """A checkpoint file that cannot be read: damaged (truncated, corrupt) or not a qlearn checkpoint."""


def _safe_load(path: Path, map_location: str | torch.device) -> Any:
    """``torch.load(weights_only=True)``, telling a damaged file from one that holds forbidden objects."""
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:  # readable, but holds objects other than tensors and plain values
        raise CheckpointUnreadable(
            f"{path} holds objects other than tensors and plain values, which qlearn refuses to unpickle "
            f"({str(exc).splitlines()[0][:200]})"
        ) from exc
    except (RuntimeError, EOFError, ValueError, OSError) as exc:  # truncated zip, bad header, I/O error
        raise CheckpointUnreadable(
            f"{path} is damaged: it cannot be read as a checkpoint ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0][:200]})"
        ) from exc


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a qlearn checkpoint safely (``weights_only=True``); a run directory means its newest readable one."""
    path = Path(path)
    if path.is_dir():
        return load_resume_point(path, map_location, with_buffer=False).state
    if not path.is_file():
        raise QlearnError(f"checkpoint {path} does not exist.")
    state = _safe_load(path, map_location)
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointUnreadable(f"{path} is not a qlearn checkpoint (missing format tag {FORMAT!r}).")
    return state


def load_buffer_state(checkpoint_path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any] | None:
    """The replay buffer saved beside ``checkpoint_path``, or ``None`` if none was saved."""
    path = Path(checkpoint_path)
    replay = path.parent / path.name.replace("step_", "replay_")
    if not replay.is_file():
        return None
    return _safe_load(replay, map_location)


@dataclass
class ResumePoint:
    """The checkpoint a run continues from, and the newer ones passed over because they could not be read."""

    path: Path
    state: dict[str, Any]
    buffer_state: dict[str, Any] | None = None
    skipped: list[tuple[Path, str]] = field(default_factory=list)


def load_resume_point(where: str | Path, map_location: str | torch.device = "cpu", *,
                      with_buffer: bool = False) -> ResumePoint:
    """The newest readable checkpoint of run directory ``where`` (or the file ``where`` itself).

    A damaged newer checkpoint is passed over and named in ``skipped``. ``with_buffer``: the replay buffer
    saved beside it must load too (a checkpoint whose buffer file is damaged is passed over alike).
    """
    where = Path(where)
    if not where.exists():
        raise QlearnError(f"{where} does not exist: pass a run directory (one holding checkpoints/) or a step_*.pt file.")
    candidates = [where] if where.is_file() else list(reversed(list_checkpoints(where)))
    if not candidates:
        raise QlearnError(f"no checkpoint in {where}: {checkpoint_dir(where)} holds no step_*.pt file.")
    skipped: list[tuple[Path, str]] = []
    for path in candidates:
        try:
            state = load_checkpoint(path, map_location)
            buffer_state = load_buffer_state(path, "cpu") if with_buffer else None
        except CheckpointUnreadable as exc:
            skipped.append((path, str(exc)))
            continue
        return ResumePoint(path, state, buffer_state, skipped)
    if len(skipped) == 1:
        raise QlearnError(skipped[0][1] + ".")
    listed = "; ".join(reason for _, reason in skipped)
    raise QlearnError(f"none of the {len(skipped)} checkpoints in {checkpoint_dir(where)} can be read: {listed}.")
