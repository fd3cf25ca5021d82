"""D4RL normalized scores: 100 * (return - ref_min) / (ref_max - ref_min) (Fu et al., 2020; papers report x100).

Reference returns per MuJoCo family are D4RL's (Farama-Foundation/D4RL ``d4rl/infos.py``, where the v1/v2
datasets reuse the ``-random-v0`` entries); see shared/REFERENCES.md "2e. D4RL normalization constants".
"""

from __future__ import annotations

from typing import Any

import numpy as np

from qlearn.offline.dataset import DatasetError

__all__ = ["D4RL_REFERENCE_SCORES", "NormalizedScore", "normalized_score", "reference_scores"]

# (REF_MIN_SCORE, REF_MAX_SCORE), Farama-Foundation/D4RL d4rl/infos.py
D4RL_REFERENCE_SCORES: dict[str, tuple[float, float]] = {
    "hopper": (-20.272305, 3234.3),
    "halfcheetah": (-280.178953, 12135.0),
    "walker2d": (1.629008, 4592.3),
    "ant": (-325.6, 3879.7),
}


def normalized_score(returns: float | np.ndarray, ref_min: float, ref_max: float) -> float | np.ndarray:
    """100 * (R - ref_min) / (ref_max - ref_min): 0 is the random policy, 100 the reference (expert) policy."""
    if not ref_max > ref_min:
        raise DatasetError(f"reference scores need ref_max > ref_min, got ref_min={ref_min}, ref_max={ref_max}.")
    score = 100.0 * (np.asarray(returns, dtype=np.float64) - ref_min) / (ref_max - ref_min)
    return float(score) if score.ndim == 0 else score


def d4rl_family(env_id: str) -> str | None:
    """The D4RL family named by an env or dataset id: ``Hopper-v5`` and ``hopper-medium-v2`` -> ``hopper``.

    Each ``/``-separated part is cut at its first ``-`` and compared case-insensitively with the family names,
    so ``mujoco/walker2d/expert-v0`` -> ``walker2d`` while ``antmaze-umaze-v2`` matches nothing (not ``ant``).
    """
    for part in env_id.split("/"):
        head = part.split("-")[0].lower()
        if head in D4RL_REFERENCE_SCORES:
            return head
    return None


def reference_scores(env_id: str | None, metadata: dict[str, Any] | None = None) -> tuple[float, float] | None:
    """(ref_min, ref_max) for normalizing returns on ``env_id``, or None when nothing is known.

    D4RL's constants win for the families in `D4RL_REFERENCE_SCORES`, so scores stay comparable with published
    D4RL numbers (the offline RL issue: "D4RL's reference constants for hopper, halfcheetah and walker2d"). For
    any other env the dataset's own ``ref_min_score``/``ref_max_score`` metadata is used (collected datasets,
    Minari's metadata.json).
    """
    family = d4rl_family(env_id) if env_id else None
    if family is not None:
        return D4RL_REFERENCE_SCORES[family]
    meta = metadata or {}
    lo, hi = meta.get("ref_min_score"), meta.get("ref_max_score")
    if lo is not None and hi is not None:
        return float(lo), float(hi)
    return None


class NormalizedScore:
    """The D4RL normalised score of an evaluation's mean return, as a trainer `Score` (``qlearn.trainers.Score``):
    ``NormalizedScore(ref_min, ref_max)(R) = 100 (R - ref_min) / (ref_max - ref_min)``."""

    name = "normalized_score"

    def __init__(self, ref_min: float, ref_max: float) -> None:
        normalized_score(0.0, ref_min, ref_max)  # refuses ref_max <= ref_min
        self.reference = [float(ref_min), float(ref_max)]

    @classmethod
    def for_env(cls, env_id: str | None, metadata: dict[str, Any] | None = None) -> NormalizedScore | None:
        """The score for ``env_id`` with `reference_scores`' constants, or ``None`` when none are known."""
        scores = reference_scores(env_id, metadata)
        return None if scores is None else cls(*scores)

    def __call__(self, mean_return: float) -> float:
        return float(normalized_score(mean_return, *self.reference))
