"""A reproduction report: seeds aggregated with IQM and bootstrap CIs, curves, and the gap to references."""

from __future__ import annotations

import csv
import os
import platform
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from qlearn.reports.compare import improvement_lines, profile_lines
from qlearn.reports.games import aggregate_lines, game_aggregates
from qlearn.reports.reference import Reference, matching
from qlearn.reports.stats import iqm, mean, stratified_bootstrap_ci
from qlearn.reports.sweep import Run, behaviour_return, common_curve, group_runs


@dataclass
class Summary:
    """The seeds of one experiment, aggregated (Agarwal et al., 2021: IQM with a 95% stratified bootstrap CI)."""

    label: str
    runs: list[Run]
    metric: str          # "return" or "normalized score"
    scores: np.ndarray   # [runs] final score per seed
    iqm: float
    ci: tuple[float, float]
    mean: float
    references: list[Reference]

    def gap(self, reference: Reference) -> str:
        """How far the IQM is from ``reference``, and whether the reference lies inside the CI."""
        diff = self.iqm - reference.value
        relative = f" ({100 * diff / abs(reference.value):+.1f}%)" if reference.value else ""
        where = ("inside our 95% CI" if self.ci[0] <= reference.value <= self.ci[1]
                 else "below our 95% CI" if reference.value < self.ci[0] else "above our 95% CI")
        return f"{diff:+.2f}{relative}; the reference is {where}"


def summarize(runs: list[Run], references: list[Reference], reps: int = 2000) -> list[Summary]:
    """One :class:`Summary` per experiment (runs whose configs differ only in the seed, see `group_runs`)."""
    summaries = []
    for label, group in group_runs(runs).items():
        offline = group[0].offline and all(r.normalized is not None for r in group)
        scores = np.array([r.normalized if offline else r.final for r in group], dtype=np.float64)
        point, low, high = stratified_bootstrap_ci(scores, iqm, reps=reps)
        refs = [ref for ref in matching(references, group[0].agent, group[0].env_id, group[0].dataset,
                                        group[0].experiment) if ref.normalized == offline]
        summaries.append(Summary(label, group, "normalized score" if offline else "return", scores, point,
                                 (low, high), mean(scores), refs))
    return summaries


def curve_table(runs: list[Run], reps: int = 1000) -> tuple[list[str], list[list[float]]]:
    """Columns and rows of the aggregated learning curve: step, IQM, CI, mean, then one column per seed."""
    steps, returns = common_curve(runs)
    header = ["step", "iqm", "ci_low", "ci_high", "mean"] + [f"seed{r.seed}" for r in runs]
    rows = []
    for t, step in enumerate(steps):
        point, low, high = stratified_bootstrap_ci(returns[:, t], iqm, reps=reps, seed=t)
        rows.append([int(step), point, low, high, float(returns[:, t].mean()), *returns[:, t].tolist()])
    return header, rows


def slug(label: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in label).strip("_")


def plot_curve(summary: Summary, header: list[str], rows: list[list[float]], path: Path) -> None:
    """PNG of the IQM curve with its CI band, every seed faintly, and each raw-return reference as a line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    table = np.array(rows, dtype=np.float64).reshape(len(rows), len(header))
    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=120)
    if len(rows):
        steps = table[:, 0]
        for column in range(5, table.shape[1]):
            ax.plot(steps, table[:, column], color="tab:blue", alpha=0.2, linewidth=0.8)
        ax.fill_between(steps, table[:, 2], table[:, 3], color="tab:blue", alpha=0.25, label="95% CI")
        ax.plot(steps, table[:, 1], color="tab:blue", linewidth=2, label=f"qlearn IQM ({len(summary.runs)} seeds)")
    offline = summary.metric != "return"
    for ref, color in zip(summary.references, ("tab:red", "tab:orange", "tab:green", "tab:purple")):
        if not offline:  # the curve is raw return; normalised references are drawn only in the offline table
            ax.axhline(ref.value, color=color, linestyle="--", linewidth=1.2,
                       label=f"{ref.value:g} ({ref.statistic}, {ref.budget:,} {ref.budget_unit}; {ref.file})")
    ax.set_xlabel("gradient updates" if offline else "env steps")
    ax.set_ylabel("greedy evaluation return")
    ax.set_title(summary.label, fontsize=10)
    ax.legend(fontsize=7, loc="best")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def machine() -> str:
    """A short description of where the runs were aggregated (the runs' own device is in their results)."""
    return f"{platform.node()}, {os.cpu_count()} CPUs, {platform.system()} {platform.release()}"


FEW_SEEDS = 5  # below this, a bootstrap CI of the IQM over seeds is little more than the range of the scores


def few_seeds_warning(label: str, seeds: int) -> str | None:
    """One line saying a CI over ``seeds`` seeds cannot be read as an interval, or ``None`` when there are enough."""
    if seeds >= FEW_SEEDS:
        return None
    return (f"warning: {label}: {seeds} seed{'s' if seeds != 1 else ''}; with fewer than {FEW_SEEDS} the 95% CI of "
            f"the IQM is little more than the range of the scores: run more seeds (--seeds {FEW_SEEDS} or more) "
            f"before reading it as an interval.")


def seconds_spread(seconds: list[float], note: str = "") -> str:
    """``median X s (min a, max b<note>)``: how long runs took."""
    return f"median {np.median(seconds):.0f} s (min {min(seconds):.0f}, max {max(seconds):.0f}{note})"


def eval_time_note(runs: list[Run]) -> str:
    """The final evaluation's time per run (outside ``wall_time_s``), for the runs whose results.json has it."""
    times = [r.eval_time_s for r in runs if r.eval_time_s is not None]
    if not times:
        return ""
    counted = "" if len(times) == len(runs) else f", {len(times)} of {len(runs)} runs recorded it"
    return f", then the final evaluation: {seconds_spread(times, counted)}"


def write_report(runs: list[Run], references: list[Reference], out_dir: str | Path, *, command: str | None = None,
                 reps: int = 2000) -> Path:
    """Write ``report.md``, ``runs.csv`` and, per experiment, ``<label>.csv`` and ``<label>.png`` into ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    summaries = summarize(runs, references, reps)
    with open(out_dir / "runs.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["experiment", "seed", "final_return", "normalized_score", "budget", "wall_time_s",
                         "final_eval_time_s", "path"])
        for summary in summaries:
            for run in summary.runs:
                writer.writerow([summary.label, run.seed, run.final, run.normalized, run.budget,
                                 round(run.wall_time_s, 1), "" if run.eval_time_s is None else round(run.eval_time_s, 1),
                                 os.path.relpath(run.path, out_dir)])
    lines = ["# qlearn reproduction report", ""]
    if command:
        lines += ["```bash", command, "```", ""]
    lines += [(f"Aggregated on {machine()}. Scores are each seed's final greedy evaluation; the point estimate is "
               "the interquartile mean (IQM) over seeds with a 95% stratified bootstrap confidence interval "
               f"({reps} resamples; Agarwal et al., 2021)."), ""]
    lines += ["| experiment | seeds | IQM [95% CI] | mean |", "|---|---|---|---|"]
    lines += [f"| {s.label} | {len(s.runs)} | {s.iqm:.2f} [{s.ci[0]:.2f}, {s.ci[1]:.2f}] ({s.metric}) | {s.mean:.2f} |"
              for s in summaries]
    lines.append("")
    aggregates = game_aggregates(runs, references, reps)
    lines += aggregate_lines(aggregates)  # Atari: over games, beside the published
    lines += profile_lines(aggregates, out_dir)
    lines += improvement_lines(summaries, reps)  # experiments run on the same task, pairwise
    for summary in summaries:
        header, rows = curve_table(summary.runs)
        name = slug(summary.label)
        with open(out_dir / f"{name}.csv", "w", newline="") as f:
            csv.writer(f).writerows([header, *rows])
        plot_curve(summary, header, rows, out_dir / f"{name}.png")
        budgets = sorted({r.budget for r in summary.runs})
        returns = ", ".join(f"{r.final:.1f}" for r in summary.runs)
        unit = "updates" if summary.runs[0].offline else "env steps"
        walls = [r.wall_time_s for r in summary.runs]
        lines += [f"## {summary.label}", "",
                  (f"- seeds: {', '.join(str(r.seed) for r in summary.runs)}; budget {', '.join(f'{b:,}' for b in budgets)} "
                   f"{unit}; wall time per run {seconds_spread(walls)}{eval_time_note(summary.runs)}"),
                  f"- final {summary.metric} per seed: {', '.join(f'{s:.2f}' for s in summary.scores)}"
                  + (f" (returns {returns})" if summary.metric != "return" else ""),
                  f"- **IQM {summary.iqm:.2f} [95% CI {summary.ci[0]:.2f}, {summary.ci[1]:.2f}]**, mean {summary.mean:.2f}",
                  f"- curve: `{name}.csv`, ![{summary.label}]({name}.png)", ""]
        warning = few_seeds_warning(summary.label, len(summary.runs))
        if warning is not None:
            lines += [f"- {warning}", ""]
            print(f"qlearn-report: {warning}", file=sys.stderr)
        behaviour = behaviour_return(summary.runs[0].dataset)
        if behaviour is not None:
            lines += [f"- the dataset's behaviour policy: mean episode return {behaviour:.1f}", ""]
        if summary.references:
            lines += ["| reference | value | ours - reference |", "|---|---|---|"]
            for ref in summary.references:
                lines.append(f"| {ref.describe()} | {ref.value:g} | {summary.gap(ref)} |")
            notes = [f"{ref.file}: {ref.note}" for ref in summary.references if ref.note]
            lines += [""] + [f"- note: {n}" for n in notes] + ([""] if notes else [])
        else:
            lines += ["No published reference for this agent, env and dataset in the reference files.", ""]
    path = out_dir / "report.md"
    path.write_text("\n".join(lines))
    return path
