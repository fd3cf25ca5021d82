"""What every trainer writes into a run directory: evaluations.csv, results.json, finite-loss checks."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from qlearn.checkpoint import latest_checkpoint
from qlearn.errors import NonFiniteError


def append_evaluation(run_dir: Path | None, step: int, result: dict[str, Any], scores: Sequence[str] = ()) -> None:
    """Add one row ``step,mean,std,episodes[,<score>...]`` to ``run_dir/evaluations.csv``."""
    if run_dir is None:
        return
    path = run_dir / "evaluations.csv"
    columns = ["mean", "std", "episodes", *scores]
    new = not path.exists()
    with path.open("a") as f:
        if new:
            f.write(",".join(["step", *columns]) + "\n")
        f.write(",".join([str(step), *(str(result[c]) for c in columns)]) + "\n")


def write_results(run_dir: Path | None, results: dict[str, Any]) -> None:
    """Write ``run_dir/results.json`` atomically (a crash never leaves half a file)."""
    if run_dir is None:
        return
    tmp = run_dir / "results.json.tmp"
    tmp.write_text(json.dumps(results, indent=2))
    os.replace(tmp, run_dir / "results.json")


def mean_of(values: list[Tensor]) -> float:
    """The mean of scalar tensors as a float: one host sync for the lot."""
    return float(torch.stack(values).mean())


def check_finite(pending: list[tuple[int, Tensor, Tensor]], run_dir: Path | None, unit: str = "env step") -> None:
    """Raise :class:`NonFiniteError` if any ``(step, loss, q)`` in ``pending`` is NaN/inf; clears it.

    One host sync per call, however many updates are pending.
    """
    if not pending:
        return
    losses = torch.stack([loss for _, loss, _ in pending])  # [U]
    q_values = torch.stack([q for _, _, q in pending])  # [U]
    finite = torch.isfinite(losses) & torch.isfinite(q_values)  # [U]
    steps = [step for step, _, _ in pending]
    pending.clear()
    if not bool(finite.all()):
        first = int((~finite).nonzero()[0, 0])
        last_good = latest_checkpoint(run_dir) if run_dir is not None else None
        raise NonFiniteError(
            f"non-finite loss or Q-value at {unit} {steps[first]}: training stopped. "
            f"Last good checkpoint: {last_good or 'none'}. Lower the learning rate or enable "
            "gradient clipping (agent.max_grad_norm), then resume or restart."
        )
