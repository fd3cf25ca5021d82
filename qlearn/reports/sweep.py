"""Read the runs of a sweep directory (one ``results.json`` per run) into one table, grouped into experiments.

An experiment is every run with the same resolved config (``config.yaml``) except its seed: a sweep over
``agent.lr=1e-3,1e-4`` is two experiments, not two seeds of one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from qlearn.errors import QlearnError

# Config keys that differ between runs of one experiment without changing what is trained (besides any
# ``*.seed``, e.g. ``agent.seed: ${seed}``): where a resumed run came from, and what is logged or kept on disk.
NOT_SETTINGS = ("resume", "logger", "trainer.keep_checkpoints", "trainer.save_buffer")


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
    wall_time_s: float           # training to the budget (results.json's ``wall_time_s``)
    settings: dict[str, Any] = field(default_factory=dict)  # flat config.yaml without seeds and NOT_SETTINGS
    experiment: str | None = None  # the preset the run follows (``experiment=`` of qlearn-train), if any
    scores: dict[str, float] = field(default_factory=dict)  # the final evaluation's Scores, e.g. Atari's HNS
    eval_time_s: float | None = None  # the final evaluation's own time (runs written before 2026-12-05 lack it)

    @property
    def offline(self) -> bool:
        return self.dataset is not None

    @property
    def label(self) -> str:
        """``agent on env`` (``/dataset`` offline); `group_runs` adds the settings that tell experiments apart."""
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
            settings=read_settings(results_path.parent / "config.yaml"), experiment=data.get("experiment"),
            scores={name: float(final[name]) for name in data.get("scores") or {} if final.get(name) is not None},
            eval_time_s=None if final.get("wall_time_s") is None else float(final["wall_time_s"]),
        )
    except (KeyError, TypeError) as exc:
        raise QlearnError(f"{results_path} is not a qlearn-train results.json (missing {exc}).") from exc


def _flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(tree, dict):
        return {prefix: tree}
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        flat.update(_flatten(value, f"{prefix}{key}" if not prefix else f"{prefix}.{key}"))
    return flat


def _is_setting(key: str) -> bool:
    return key.rsplit(".", 1)[-1] != "seed" and not any(key == k or key.startswith(k + ".") for k in NOT_SETTINGS)


def read_settings(config_path: Path) -> dict[str, Any]:
    """A run's resolved config as ``{"agent.lr": 0.001, ...}`` without seeds, `NOT_SETTINGS` and null values
    (empty when the run has no ``config.yaml``)."""
    if not config_path.is_file():
        return {}
    flat = _flatten(yaml.safe_load(config_path.read_text()) or {})
    # a null setting is the same run as one recorded before the setting existed (new settings default to null)
    return {key: value for key, value in flat.items() if _is_setting(key) and value is not None}


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


def finished_runs(directory: Path) -> list[Path]:
    """The ``results.json`` of every finished run under ``directory`` (any depth)."""
    paths = sorted(directory.rglob("results.json"))
    return [p for p in paths if p.parent.name != "offline"]  # a finetune run's offline phase is not a run


def read_sweep(directory: str | Path) -> list[Run]:
    """Every run under ``directory`` (any depth), sorted by label and seed; refuses an empty sweep."""
    directory = Path(directory)
    paths = finished_runs(directory)
    if not paths:
        raise QlearnError(f"no results.json under {directory}: did the runs finish? Their logs are in "
                          f"{directory}/*/ (and .submitit/ for SLURM).")
    return sorted((read_run(p) for p in paths), key=lambda r: (r.label, r.seed))


def _differing(settings: list[dict[str, Any]]) -> list[str]:
    """Keys whose values tell ``settings`` apart; of keys that always move together (``total_steps`` and its
    copy ``trainer.total_steps``, ``network.*`` and ``agent.network.*``) only the shortest is kept."""
    keys = sorted({k for s in settings for k in s}, key=lambda k: (len(k), k))
    kept: dict[tuple[str, ...], str] = {}  # a key's values across settings -> the shortest key with them
    for key in keys:
        column = tuple(json.dumps(s.get(key), default=str) for s in settings)
        if len(set(column)) > 1:
            kept.setdefault(column, key)
    return sorted(kept.values())


def group_runs(runs: list[Run]) -> dict[str, list[Run]]:
    """Runs grouped into experiments (same :attr:`Run.label` and settings; the seeds of each), by name.

    A name is the label plus the settings that differ from the label's other experiments:
    ``dqn on CartPole-v1 agent.lr=0.001``.
    """
    by_config: dict[tuple[str, str], list[Run]] = {}
    for run in runs:
        by_config.setdefault((run.label, json.dumps(run.settings, sort_keys=True, default=str)), []).append(run)
    groups: dict[str, list[Run]] = {}
    for (label, _), members in by_config.items():
        siblings = [g[0].settings for (other, _), g in by_config.items() if other == label]
        shown = " ".join(f"{key}={members[0].settings.get(key)}" for key in _differing(siblings))
        name = f"{label} {shown}" if shown else label
        if name in groups:  # never drop runs: settings that differ only in form still get their own name
            name = f"{name} (config {sum(1 for g in groups if g.startswith(name)) + 1})"
        groups[name] = members
    return dict(sorted(groups.items()))


def common_curve(runs: list[Run]) -> tuple[np.ndarray, np.ndarray]:
    """``(steps [T], returns [runs, T])`` on the evaluation points every run has."""
    shared = set(runs[0].steps.tolist())
    for run in runs[1:]:
        shared &= set(run.steps.tolist())
    steps = np.array(sorted(shared), dtype=np.int64)
    returns = np.stack([run.returns[np.searchsorted(run.steps, steps)] for run in runs]) if steps.size else \
        np.empty((len(runs), 0))
    return steps, returns
