"""Published reference numbers (``benchmarks/reference/*.yaml``) and how a run is matched to them."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from qlearn.errors import QlearnError

REQUIRED = ("agent", "env_id", "value", "statistic", "budget", "budget_unit", "source")
STATISTICS = ("final", "best", "at_budget")
BUDGET_UNITS = ("env_steps", "frames", "gradient_steps")


@dataclass(frozen=True)
class Reference:
    """One published number: what was measured, how it was aggregated, and where it comes from."""

    agent: str
    env_id: str
    value: float
    statistic: str
    budget: int
    budget_unit: str
    source: str
    dataset: str | None = None
    std: float | None = None
    normalized: bool = False
    aggregate: str | None = None
    seeds: int | None = None
    note: str | None = None
    experiment: str | None = None  # set: only runs of this preset match (e.g. drq_eps_atari100k)
    runs: tuple[float, ...] | None = None  # the source's per-run scores where it publishes them (value = their mean)
    file: str = ""

    def describe(self) -> str:
        """A one-line citation: value, statistic, budget and source."""
        spread = f" ± {self.std:g}" if self.std is not None else ""
        what = f"{self.statistic}, {self.aggregate}" if self.aggregate else self.statistic
        return (f"{self.value:g}{spread} ({what}; {self.env_id}{'/' + self.dataset if self.dataset else ''}, "
                f"{self.budget:,} {self.budget_unit.replace('_', ' ')}; {self.source})")


def load_references(directory: str | Path) -> list[Reference]:
    """Every entry of every ``*.yaml`` file in ``directory``, checked for the required keys."""
    directory = Path(directory)
    if not directory.is_dir():
        raise QlearnError(f"reference directory {directory} does not exist; pass --references <dir> "
                          f"(the repository's benchmarks/reference) or --no-references.")
    references = []
    for path in sorted(directory.glob("*.yaml")):
        document = yaml.safe_load(path.read_text()) or {}
        for i, entry in enumerate(document.get("entries", [])):
            references.append(_parse(entry, f"{path.name} entry {i}"))
    return references


def _parse(entry: dict[str, Any], where: str) -> Reference:
    missing = [k for k in REQUIRED if entry.get(k) is None]
    if missing:
        raise QlearnError(f"{where}: missing {missing}")
    if entry["statistic"] not in STATISTICS or entry["budget_unit"] not in BUDGET_UNITS:
        raise QlearnError(f"{where}: statistic must be one of {STATISTICS} and budget_unit one of {BUDGET_UNITS}")
    known = set(Reference.__dataclass_fields__) - {"file"}
    fields = {k: v for k, v in entry.items() if k in known}
    fields["value"] = float(fields["value"])
    fields["budget"] = int(fields["budget"])
    if fields.get("std") is not None:
        fields["std"] = float(fields["std"])
    if fields.get("runs") is not None:
        fields["runs"] = tuple(float(x) for x in fields["runs"])
    return Reference(**fields, file=where.split(" entry")[0])


def env_family(env_id: str) -> str:
    """The env's name without namespace, version or ``NoFrameskip``: ``ALE/Pong-v5`` and
    ``PongNoFrameskip-v4`` are both ``pong``; ``Hopper-v5`` and ``hopper-medium-replay-v2`` are ``hopper``."""
    name = env_id.split("/")[-1]
    name = re.sub(r"-v\d+$", "", name)
    name = name.replace("NoFrameskip", "").replace("Deterministic", "")
    return name.split("-")[0].lower()


def dataset_kind(dataset: str | None) -> str | None:
    """``hopper-medium-replay-v2`` -> ``medium-replay``; ``Hopper-v5-medium-replay.hdf5`` -> ``medium-replay``."""
    if not dataset:
        return None
    stem = Path(dataset).name.removesuffix(".hdf5").removesuffix(".npz")
    stem = re.sub(r"-v\d+", "", stem).lower()
    for kind in ("medium-replay", "medium-expert", "full-replay", "medium", "expert", "random"):
        if stem.endswith(kind):
            return kind
    return None


def matching(references: list[Reference], agent: str, env_id: str, dataset: str | None = None,
             experiment: str | None = None) -> list[Reference]:
    """References for this agent on the same env family (and, offline, the same dataset kind); a reference that
    names an ``experiment`` (a preset) matches only runs of that preset."""
    family, kind = env_family(env_id), dataset_kind(dataset)
    return [r for r in references
            if r.agent == agent and env_family(r.env_id) == family and dataset_kind(r.dataset) == kind
            and r.experiment in (None, experiment)]
