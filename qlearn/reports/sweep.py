"""Read the runs of a sweep directory (one ``results.json`` per run) into one table."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from qlearn.errors import QlearnError


@dataclass
class Run:
    """One finished training run: its identity, final evaluation and learning curve."""

    path: Path
    agent: str
    env_id: str
    seed: int
    dataset: str | None
    final: float                 # final greedy evaluation (raw return)
    normalized: float | None     # D4RL-normalised final score, offline runs only
    steps: np.ndarray            # evaluation points (env steps online, gradient updates offline)
    returns: np.ndarray          # mean greedy return at each point
    budget: int                  # env steps (online) or updates (offline) the run trained for
    wall_time_s: float

    @property
    def offline(self) -> bool:
        return self.dataset is not None

    @property
    def label(self) -> str:
        """``agent on env`` (``/dataset`` offline): runs with the same label are seeds of one experiment."""
        return f"{self.agent} on {self.env_id}" + (f" / {Path(self.dataset).name}" if self.dataset else "")


def read_run(results_path: Path) -> Run:
    """A :class:`Run` from one ``results.json`` written by ``qlearn-train``."""
    data: dict[str, Any] = json.loads(results_path.read_text())
    try:
        final = data["final_eval"]
        curve = data.get("evaluations") or []
        offline = data.get("dataset") is not None
        return Run(
            path=results_path.parent, agent=str(data["agent"]), env_id=str(data["env_id"]), seed=int(data["seed"]),
            dataset=data.get("dataset"), final=float(final["mean"]), normalized=final.get("normalized_score"),
            steps=np.array([e["step"] for e in curve], dtype=np.int64),
            returns=np.array([e["mean"] for e in curve], dtype=np.float64),
            budget=int(data["updates"] if offline else data["total_steps"]), wall_time_s=float(data["wall_time_s"]),
        )
    except (KeyError, TypeError) as exc:
        raise QlearnError(f"{results_path} is not a qlearn-train results.json (missing {exc}).") from exc


def behaviour_return(dataset: str | None) -> float | None:
    """The behaviour policy's mean episode return stored by ``qlearn-collect`` in a dataset, if readable."""
    if not dataset or not Path(dataset).is_file() or not str(dataset).endswith((".hdf5", ".h5")):
        return None
    import h5py

    from qlearn.offline.io import METADATA_ATTR

    try:
        with h5py.File(dataset, "r") as f:
            value = json.loads(f.attrs[METADATA_ATTR]).get("behaviour_return_mean")
    except (OSError, KeyError, ValueError):
        return None
    return None if value is None else float(value)


def read_sweep(directory: str | Path) -> list[Run]:
    """Every run under ``directory`` (any depth), sorted by label and seed; refuses an empty sweep."""
    directory = Path(directory)
    paths = sorted(directory.rglob("results.json"))
    paths = [p for p in paths if p.parent.name != "offline"]  # a finetune run's offline phase is not a run
    if not paths:
        raise QlearnError(f"no results.json under {directory}: did the runs finish? Their logs are in "
                          f"{directory}/*/ (and .submitit/ for SLURM).")
    return sorted((read_run(p) for p in paths), key=lambda r: (r.label, r.seed))


def group_runs(runs: list[Run]) -> dict[str, list[Run]]:
    """Runs grouped by :attr:`Run.label` (the seeds of each experiment)."""
    groups: dict[str, list[Run]] = {}
    for run in runs:
        groups.setdefault(run.label, []).append(run)
    return groups


def common_curve(runs: list[Run]) -> tuple[np.ndarray, np.ndarray]:
    """``(steps [T], returns [runs, T])`` on the evaluation points every run has."""
    shared = set(runs[0].steps.tolist())
    for run in runs[1:]:
        shared &= set(run.steps.tolist())
    steps = np.array(sorted(shared), dtype=np.int64)
    returns = np.stack([run.returns[np.searchsorted(run.steps, steps)] for run in runs]) if steps.size else \
        np.empty((len(runs), 0))
    return steps, returns
