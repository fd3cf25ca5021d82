"""Aggregate scores over runs: the interquartile mean, stratified bootstrap confidence intervals, the probability
of improvement and performance profiles.

Agarwal et al., 2021, "Deep Reinforcement Learning at the Edge of the Statistical Precipice"
(NeurIPS): report the IQM (the mean of the middle 50% of runs) with 95% percentile intervals from a
bootstrap that resamples runs *within* each task (stratified), rather than the mean ± std of a
handful of seeds.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

Scores = Sequence[Sequence[float]] | np.ndarray  # [tasks][runs]; a single task may be a flat list


def _as_tasks(scores: Scores) -> list[np.ndarray]:
    """``scores`` as one 1-D float array per task; a flat sequence of numbers is one task."""
    if len(scores) == 0:
        raise ValueError("no scores to aggregate")
    if np.isscalar(scores[0]):
        tasks = [np.asarray(scores, dtype=np.float64)]
    else:
        tasks = [np.asarray(task, dtype=np.float64).ravel() for task in scores]
    if any(task.size == 0 for task in tasks):
        raise ValueError("every task needs at least one run's score")
    if any(not np.isfinite(task).all() for task in tasks):
        raise ValueError("scores must be finite")
    return tasks


def iqm(scores: Scores) -> float:
    """Interquartile mean of all runs pooled over tasks (Agarwal et al., 2021, Sec. 4.3).

    Drops ``floor(n / 4)`` runs from each end of the sorted ``n`` scores and averages the rest, the
    same cut as ``scipy.stats.trim_mean(x, 0.25)``; with fewer than 4 runs nothing is dropped.
    """
    pooled = np.sort(np.concatenate(_as_tasks(scores)))
    cut = pooled.size // 4
    return float(pooled[cut: pooled.size - cut].mean())


def mean(scores: Scores) -> float:
    """Plain mean of all runs pooled over tasks."""
    return float(np.concatenate(_as_tasks(scores)).mean())


def stratified_bootstrap_ci(
    scores: Scores,
    statistic: Callable[[Scores], float] = iqm,
    *,
    confidence: float = 0.95,
    reps: int = 2000,
    seed: int = 0,
) -> tuple[float, float, float]:
    """``(point, low, high)``: ``statistic`` on the scores and its percentile bootstrap interval.

    Each bootstrap replicate resamples, with replacement, the runs of every task separately (the
    stratified bootstrap of Agarwal et al., 2021, Sec. 4.1) and recomputes ``statistic``; the interval
    is the ``(1 - confidence) / 2`` and ``(1 + confidence) / 2`` quantiles of the replicates.
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if reps < 1:
        raise ValueError(f"reps must be >= 1, got {reps}")
    tasks = _as_tasks(scores)
    rng = np.random.default_rng(seed)
    replicates = np.empty(reps)
    for r in range(reps):
        replicates[r] = statistic([task[rng.integers(0, task.size, task.size)] for task in tasks])
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(replicates, [tail, 1.0 - tail])
    return statistic(tasks), float(low), float(high)


def probability_of_improvement(x: Scores, y: Scores) -> float:
    """P(X > Y): the probability that a run of X beats a run of Y on a task drawn uniformly (Agarwal et al., 2021,
    Sec. 4.3). Per task, the Mann-Whitney U statistic over all ``N x K`` pairs of runs divided by ``N K`` (a tie
    counts one half); then the mean over tasks. ``x`` and ``y`` hold the same tasks in the same order."""
    xs, ys = _as_tasks(x), _as_tasks(y)
    if len(xs) != len(ys):
        raise ValueError(f"X has {len(xs)} tasks and Y {len(ys)}: compare them on the same tasks")
    per_task = [(np.sum(a[:, None] > b[None, :]) + 0.5 * np.sum(a[:, None] == b[None, :])) / (a.size * b.size)
                for a, b in zip(xs, ys)]
    return float(np.mean(per_task))


def probability_of_improvement_ci(x: Scores, y: Scores, *, confidence: float = 0.95, reps: int = 2000,
                                  seed: int = 0) -> tuple[float, float, float]:
    """``(point, low, high)`` of `probability_of_improvement`: each replicate resamples the runs of X and of Y within
    every task, independently (rliable's stratified independent bootstrap), and the interval is the percentile one."""
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    xs, ys = _as_tasks(x), _as_tasks(y)
    rng = np.random.default_rng(seed)
    replicates = np.empty(reps)
    for r in range(reps):
        replicates[r] = probability_of_improvement([a[rng.integers(0, a.size, a.size)] for a in xs],
                                                   [b[rng.integers(0, b.size, b.size)] for b in ys])
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(replicates, [tail, 1.0 - tail])
    return probability_of_improvement(xs, ys), float(low), float(high)


def performance_profile(scores: Scores, thresholds: Sequence[float] | np.ndarray) -> np.ndarray:
    """The run-score distribution (Agarwal et al., 2021, Sec. 4.2): for each threshold ``tau``, the fraction of runs
    whose score is above ``tau``, each task weighted equally (the mean over tasks of the per-task fraction, which is
    rliable's pooled fraction when every task has the same number of runs)."""
    tasks = _as_tasks(scores)
    taus = np.asarray(thresholds, dtype=np.float64)
    return np.mean([np.mean(task[None, :] > taus[:, None], axis=1) for task in tasks], axis=0)
