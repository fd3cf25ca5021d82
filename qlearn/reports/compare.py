"""Comparisons between experiments in a report (Agarwal et al., 2021, Sec. 4.2-4.3): the probability of improvement
of every experiment over every other one run on the same task, and performance profiles (run-score distributions)
of the presets aggregated over Atari games."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from qlearn.reports.stats import performance_profile, probability_of_improvement_ci

if TYPE_CHECKING:
    from qlearn.reports.games import GameAggregate
    from qlearn.reports.report import Summary

PROFILE_POINTS = 101  # thresholds from 0 to the largest score


def same_task_groups(summaries: list[Summary]) -> list[list[Summary]]:
    """Experiments that ran on the same env and dataset (by file name, as the labels show it) with the same metric,
    two or more per group."""
    groups: dict[tuple[str, str | None, str], list[Summary]] = {}
    for summary in summaries:
        first = summary.runs[0]
        dataset = Path(first.dataset).name if first.dataset else None
        groups.setdefault((first.env_id, dataset, summary.metric), []).append(summary)
    return [group for group in groups.values() if len(group) >= 2]


def improvement_lines(summaries: list[Summary], reps: int = 2000) -> list[str]:
    """A table per task with P(row > column) and its 95% CI, for every pair of experiments on that task."""
    lines: list[str] = []
    for group in same_task_groups(summaries):
        first = group[0].runs[0]
        task = first.env_id + (f" / {Path(first.dataset).name}" if first.dataset else "")
        lines += [f"## Probability of improvement on {task}", "",
                  (f"P(row > column): the chance that a seed of the row's experiment ends above a seed of the "
                   f"column's ({group[0].metric}; ties count one half), with a 95% bootstrap CI resampling each "
                   "side's seeds (Agarwal et al., 2021, Sec. 4.3). Above 0.5 with the CI clear of 0.5: the row is "
                   "better beyond seed noise."), "",
                  "| P(row > column) | " + " | ".join(s.label for s in group) + " |",
                  "|---|" + "---|" * len(group)]
        for row in group:
            cells = []
            for column in group:
                if column is row:
                    cells.append("")
                    continue
                point, low, high = probability_of_improvement_ci(row.scores, column.scores, reps=reps)
                cells.append(f"{point:.2f} [{low:.2f}, {high:.2f}]")
            lines.append(f"| {row.label} | " + " | ".join(cells) + " |")
        lines.append("")
    return lines


def profile_lines(aggregates: list[GameAggregate], out_dir: Path) -> list[str]:
    """``performance_profile.csv`` (and ``.png``): for each preset aggregated over games, the fraction of runs whose
    human-normalised score is above each threshold, games weighted equally."""
    if not aggregates:
        return []
    top = max(max(max(runs) for runs in a.runs.values()) for a in aggregates)
    taus = np.linspace(0.0, max(top, 1.0), PROFILE_POINTS)
    profiles = {a.label: performance_profile(list(a.runs.values()), taus) for a in aggregates}
    with open(out_dir / "performance_profile.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["human_normalized_score", *profiles])
        writer.writerows([[float(t), *(float(p[i]) for p in profiles.values())] for i, t in enumerate(taus)])
    plot_profiles(taus, profiles, out_dir / "performance_profile.png")
    at_100 = "; ".join(f"{label} {performance_profile(list(a.runs.values()), [100.0])[0]:.2f}"
                       for label, a in zip(profiles, aggregates))
    return ["## Performance profile over games", "",
            ("Fraction of runs whose final human-normalised score is above each threshold, every game weighted "
             "equally (run-score distribution; Agarwal et al., 2021, Sec. 4.2): `performance_profile.csv`, "
             f"![performance profile](performance_profile.png). Above human (100): {at_100}."), ""]


def plot_profiles(taus: np.ndarray, profiles: dict[str, np.ndarray], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=120)
    for label, fractions in profiles.items():
        ax.step(taus, fractions, where="post", label=label)
    ax.set_xlabel("human-normalised score threshold")
    ax.set_ylabel("fraction of runs above")
    ax.set_ylim(0.0, 1.02)
    ax.legend(fontsize=7, loc="best")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
