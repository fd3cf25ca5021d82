"""Aggregates over Atari games: the IQM of human-normalised scores over every game a preset ran on, with a 95%
stratified bootstrap CI (runs resampled within each game), beside the same aggregate of a published agent's runs on
the same games (Agarwal et al., 2021, "Deep RL at the Edge of the Statistical Precipice", Sec. 4: tasks = games).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from qlearn.atari_scores import ATARI_100K_SCORES, HumanNormalizedScore, atari_game
from qlearn.reports.reference import Reference, matching
from qlearn.reports.stats import iqm, stratified_bootstrap_ci
from qlearn.reports.sweep import Run

SCORE = HumanNormalizedScore.name


@dataclass
class GameAggregate:
    """One preset's runs over several games, and the published runs of the same games where the source has them."""

    label: str                                  # "<agent> <experiment>"
    runs: dict[str, list[float]]                # game -> our runs' human-normalised scores
    point: float
    ci: tuple[float, float]
    reference: tuple[float, float, float] | None  # (IQM, low, high) of the published runs on the same games
    reference_runs: dict[str, int]              # game -> number of published runs used
    sources: list[str]


def human_normalized(game: str, returns: tuple[float, ...] | list[float]) -> list[float]:
    """``100 (R - R_random) / (R_human - R_random)`` of each return, with the table of `qlearn.atari_scores`."""
    random, human = ATARI_100K_SCORES[game]
    return [100.0 * (r - random) / (human - random) for r in returns]


def game_aggregates(runs: list[Run], references: list[Reference], reps: int = 2000) -> list[GameAggregate]:
    """One aggregate per (agent, experiment) whose runs carry a final human-normalised score."""
    groups: dict[tuple[str, str | None], list[Run]] = {}
    for run in runs:
        if SCORE in run.scores:
            groups.setdefault((run.agent, run.experiment), []).append(run)
    aggregates = []
    for (agent, experiment), members in sorted(groups.items(), key=lambda item: str(item[0])):
        ours: dict[str, list[float]] = {}
        published: dict[str, list[float]] = {}
        sources: list[str] = []
        for run in members:
            ours.setdefault(atari_game(run.env_id), []).append(run.scores[SCORE])
        for game in ours:
            with_runs = [r for r in matching(references, agent, game, None, experiment) if r.runs]
            if with_runs:
                published[game] = human_normalized(game, with_runs[0].runs)
                sources.append(with_runs[0].source)
        games = sorted(ours)
        point, low, high = stratified_bootstrap_ci([ours[g] for g in games], iqm, reps=reps)
        reference = None
        if set(published) == set(games):  # only on exactly the games we ran
            reference = stratified_bootstrap_ci([published[g] for g in games], iqm, reps=reps)
        aggregates.append(GameAggregate(
            f"{agent} {experiment or ''}".strip(), {g: ours[g] for g in games}, point, (low, high), reference,
            {g: len(published[g]) for g in games if g in published}, sorted(set(sources))))
    return aggregates


def aggregate_lines(aggregates: list[GameAggregate]) -> list[str]:
    """The report's section: one table row per aggregate, then the per-game inputs."""
    if not aggregates:
        return []
    lines = ["## Over games: IQM of human-normalised scores", "",
             "Each run's final human-normalised score (0: random play, 100: the human tester; Dopamine's table, "
             "`qlearn/atari_scores.py`), pooled over games and seeds; 95% stratified bootstrap CI, runs resampled "
             "within each game (Agarwal et al., 2021). The published agent's aggregate is computed the same way from "
             "its per-run scores on the same games.", "",
             "| preset | games | runs | IQM [95% CI] | published runs, same games: IQM [95% CI] |", "|---|---|---|---|---|"]
    for a in aggregates:
        ref = (f"{a.reference[0]:.1f} [{a.reference[1]:.1f}, {a.reference[2]:.1f}] "
               f"({sum(a.reference_runs.values())} runs)") if a.reference else "not available for every game run"
        lines.append(f"| {a.label} | {', '.join(a.runs)} | {sum(len(v) for v in a.runs.values())} | "
                     f"{a.point:.1f} [{a.ci[0]:.1f}, {a.ci[1]:.1f}] | {ref} |")
    lines.append("")
    for a in aggregates:
        per_game = "; ".join(f"{g} {np.mean(v):.1f} ({len(v)} runs)" for g, v in a.runs.items())
        lines.append(f"- {a.label}: mean human-normalised score per game: {per_game}")
        if a.sources:
            lines.append(f"  - published runs from: {'; '.join(a.sources)}")
    return lines + [""]
