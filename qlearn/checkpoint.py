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


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a qlearn checkpoint safely (``weights_only=True``); refuse anything else clearly."""
    path = Path(path)
    if path.is_dir():
        found = latest_checkpoint(path)
        if found is None:
            raise QlearnError(f"{path} holds no checkpoint (looked for {checkpoint_dir(path)}/step_*.pt).")
        path = found
    if not path.is_file():
        raise QlearnError(f"checkpoint {path} does not exist.")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError) as exc:
        raise QlearnError(
            f"{path} is not a qlearn checkpoint, or holds objects other than tensors and plain values, "
            f"which qlearn refuses to unpickle. ({type(exc).__name__}: {str(exc).splitlines()[0]})"
        ) from exc
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise QlearnError(f"{path} is not a qlearn checkpoint (missing format tag {FORMAT!r}).")
    return state


def load_buffer_state(checkpoint_path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any] | None:
    """The replay buffer saved beside ``checkpoint_path``, or ``None`` if none was saved."""
    path = Path(checkpoint_path)
    replay = path.parent / path.name.replace("step_", "replay_")
    if not replay.is_file():
        return None
    return torch.load(replay, map_location=map_location, weights_only=True)
