"""Reproduction reports: IQM and stratified bootstrap on known answers, reference matching, the report
files, and qlearn-reproduce's Hydra multirun on a tiny preset (the CI check of the multirun path)."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from qlearn.errors import QlearnError
from qlearn.reports import (
    group_runs, iqm, load_references, matching, read_sweep, stratified_bootstrap_ci, write_report,
)
from qlearn.reports.reference import dataset_kind, env_family
from qlearn.reports.stats import performance_profile, probability_of_improvement, probability_of_improvement_ci

REPO = Path(__file__).resolve().parents[1]


def test_iqm_drops_a_quarter_from_each_end() -> None:
    assert iqm([1, 2, 3, 4, 5, 6, 7, 8]) == pytest.approx(4.5)  # mean of 3, 4, 5, 6
    assert iqm([0, 0, 0, 100]) == pytest.approx(0.0)  # the outlier is cut
    assert iqm([1.0, 2.0, 9.0]) == pytest.approx(4.0)  # fewer than 4 runs: nothing to cut
    assert iqm([[1, 2, 3, 4], [5, 6, 7, 8]]) == pytest.approx(4.5)  # pooled over tasks
    with pytest.raises(ValueError, match="finite"):
        iqm([1.0, float("nan")])


def test_bootstrap_resamples_within_tasks() -> None:
    # Each task is constant, so every stratified replicate has the same pooled mean; a bootstrap over the
    # pooled runs would mix tasks and spread.
    point, low, high = stratified_bootstrap_ci([[1.0, 1.0, 1.0], [5.0, 5.0, 5.0]], statistic=lambda s: float(
        np.concatenate([np.asarray(t) for t in s]).mean()), reps=300)
    assert point == low == high == pytest.approx(3.0)


def test_bootstrap_interval_of_a_mean_has_the_normal_width() -> None:
    rng = np.random.default_rng(1)
    sample = rng.normal(10.0, 2.0, size=400)
    point, low, high = stratified_bootstrap_ci(sample, statistic=lambda s: float(np.mean(s[0])), reps=2000)
    half_width = 1.96 * sample.std() / np.sqrt(sample.size)  # the normal-theory 95% interval
    assert point == pytest.approx(sample.mean())
    assert (high - low) / 2 == pytest.approx(half_width, rel=0.15)
    assert low < point < high
    p2 = stratified_bootstrap_ci(sample, reps=50, seed=3)
    assert p2 == stratified_bootstrap_ci(sample, reps=50, seed=3)  # seeded


def test_env_family_and_dataset_kind() -> None:
    assert env_family("PongNoFrameskip-v4") == env_family("ALE/Pong-v5") == "pong"
    assert env_family("Hopper-v5") == env_family("hopper-medium-replay-v2") == "hopper"
    assert env_family("CartPole-v1") == "cartpole"
    assert dataset_kind("hopper-medium-replay-v2") == "medium-replay"
    assert dataset_kind("/data/Hopper-v5-medium-replay.hdf5") == "medium-replay"
    assert dataset_kind("Hopper-v5-medium.hdf5") == "medium"
    assert dataset_kind(None) is None


def write_references(directory: Path) -> Path:
    directory.mkdir()
    (directory / "refs.yaml").write_text("""
entries:
  - {agent: dqn, env_id: CartPole-v1, value: 400.0, std: 10.0, statistic: final, aggregate: "mean over 3 seeds",
     seeds: 3, budget: 500000, budget_unit: env_steps, source: "somewhere:docs.md", normalized: false}
  - {agent: dqn, env_id: MountainCar-v0, value: -195.0, statistic: final, budget: 500000, budget_unit: env_steps,
     source: "somewhere:docs.md"}
  - {agent: iql, env_id: hopper-medium-replay-v2, dataset: hopper-medium-replay-v2, value: 94.7, normalized: true,
     statistic: final, budget: 1000000, budget_unit: gradient_steps, source: "IQL paper, Table 1"}
""")
    return directory


def test_references_load_match_and_refuse_a_bad_entry(tmp_path: Path) -> None:
    refs = load_references(write_references(tmp_path / "refs"))
    assert [r.value for r in matching(refs, "dqn", "CartPole-v1")] == [400.0]
    assert matching(refs, "double_dqn", "CartPole-v1") == []
    assert [r.value for r in matching(refs, "iql", "Hopper-v5", "x/Hopper-v5-medium-replay.hdf5")] == [94.7]
    assert matching(refs, "iql", "Hopper-v5", "x/Hopper-v5-medium.hdf5") == []
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "b.yaml").write_text("entries:\n  - {agent: dqn, env_id: CartPole-v1, value: 1.0}\n")
    with pytest.raises(QlearnError, match="missing"):
        load_references(bad)


def test_the_repository_reference_files_load() -> None:
    refs = load_references(REPO / "benchmarks" / "reference")
    assert matching(refs, "dqn", "CartPole-v1"), "CleanRL's CartPole number must be there"
    assert all(r.source for r in refs)


def fake_run(directory: Path, seed: int, final: float, curve: list[tuple[int, float]], agent: str = "dqn",
             config: dict | None = None, env_id: str = "CartPole-v1", experiment: str | None = None,
             scores: dict[str, float] | None = None, eval_time_s: float | None = None) -> None:
    directory.mkdir(parents=True)
    if config is not None:
        (directory / "config.yaml").write_text(yaml.safe_dump(config))
    (directory / "results.json").write_text(json.dumps({
        "agent": agent, "experiment": experiment, "env_id": env_id, "seed": seed, "total_steps": curve[-1][0],
        "updates": 0, "final_eval": {"mean": final, "std": 0.0, "episodes": 10, **(scores or {}),
                                     **({} if eval_time_s is None else {"wall_time_s": eval_time_s})},
        "scores": {name: [0.0, 1.0] for name in scores or {}},
        "evaluations": [{"step": s, "mean": m, "std": 0.0} for s, m in curve], "wall_time_s": 10.0 + seed,
    }))


def test_report_aggregates_seeds_and_states_the_gap(tmp_path: Path) -> None:
    finals = [300.0, 500.0, 500.0, 500.0, 100.0]  # IQM over 5 runs cuts one from each end: mean(300, 500, 500)
    for seed, final in enumerate(finals):
        fake_run(tmp_path / "runs" / f"seed{seed}", seed, final, [(1000, 10.0 * seed), (2000, final)])
    fake_run(tmp_path / "runs" / "other", 0, 50.0, [(1000, 1.0), (2000, 50.0)], agent="double_dqn")
    runs = read_sweep(tmp_path / "runs")
    assert len(runs) == 6
    refs = load_references(write_references(tmp_path / "refs"))
    report = write_report(runs, refs, tmp_path / "out", command="qlearn-reproduce dqn_cartpole", reps=500)
    text = report.read_text()
    expected_iqm = np.mean([300.0, 500.0, 500.0])
    assert f"IQM {expected_iqm:.2f}" in text
    assert f"{expected_iqm - 400.0:+.2f}" in text  # the gap to the 400 reference
    assert "No published reference" in text  # double_dqn has none in this file
    with open(tmp_path / "out" / "dqn_on_CartPole-v1.csv") as f:
        rows = list(csv.reader(f))
    assert rows[0][:5] == ["step", "iqm", "ci_low", "ci_high", "mean"] and len(rows) == 3
    assert float(rows[1][4]) == pytest.approx(np.mean([0.0, 10.0, 20.0, 30.0, 40.0]))
    assert (tmp_path / "out" / "dqn_on_CartPole-v1.png").stat().st_size > 1000
    assert len((tmp_path / "out" / "runs.csv").read_text().splitlines()) == 7
    # 5 seeds of dqn are enough; the single double_dqn run gets the too-few-seeds warning
    assert "warning: dqn on CartPole-v1" not in text
    assert "warning: double_dqn on CartPole-v1: 1 seed; with fewer than 5" in text


def test_atari_runs_are_aggregated_over_games_beside_the_published_runs_of_the_same_games(tmp_path: Path) -> None:
    """IQM of human-normalised scores pooled over games (4 runs: the middle two), and the same for the source's runs
    (Boxing: random 0.1, human 12.1; Breakout: 1.7, 30.5, so those returns are HNS 0 and 100)."""
    preset = "drq_eps_atari100k"
    for seed, (game, hns) in enumerate([("Boxing", 10.0), ("Boxing", 20.0), ("Boxing", 30.0), ("Breakout", 40.0)]):
        fake_run(tmp_path / "runs" / f"{game}{seed}", seed, 1.0, [(100, 1.0)], agent="double_dqn",
                 env_id=f"{game}NoFrameskip-v4", experiment=preset, scores={"human_normalized_score": hns})
    fake_run(tmp_path / "runs" / "other", 0, 1.0, [(100, 1.0)], agent="double_dqn", env_id="PongNoFrameskip-v4",
             experiment="double_dqn_atari", scores={"human_normalized_score": 5.0})
    refs = tmp_path / "refs"
    refs.mkdir()
    common = {"agent": "double_dqn", "experiment": preset, "statistic": "final", "budget": 100000,
              "budget_unit": "env_steps", "source": "test"}
    (refs / "a.yaml").write_text(yaml.safe_dump({"entries": [
        {**common, "env_id": "Boxing", "value": 6.1, "runs": [0.1, 12.1]},
        {**common, "env_id": "Breakout", "value": 16.1, "runs": [1.7, 30.5]},
        {**common, "env_id": "Pong", "value": 0.0, "runs": [14.6], "experiment": "another_preset"}]}))
    text = write_report(read_sweep(tmp_path / "runs"), load_references(refs), tmp_path / "out", reps=200).read_text()
    row = next(line for line in text.splitlines() if line.startswith(f"| double_dqn {preset} |"))
    assert "| Boxing, Breakout | 4 | 25.0 [" in row
    assert "| 50.0 [" in row and "(4 runs)" in row
    other = next(line for line in text.splitlines() if line.startswith("| double_dqn double_dqn_atari |"))
    assert "| 5.0 [5.0, 5.0] | not available" in other  # the Pong reference belongs to another preset
    assert "6.1 (final; Boxing" in text  # the per-game section cites the game's published mean
    with open(tmp_path / "out" / "performance_profile.csv") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["human_normalized_score", "double_dqn double_dqn_atari", f"double_dqn {preset}"]
    at_zero, at_10 = [float(v) for v in rows[1]], [float(v) for v in rows[26]]  # thresholds 0..40 (the top) in 100
    assert at_zero == [0.0, 1.0, 1.0] and at_10[0] == pytest.approx(10.0)
    assert at_10[1:] == [0.0, pytest.approx((2 / 3 + 1) / 2)]  # Pong's 5 is below; Boxing 2 of 3 above, Breakout 1 of 1
    assert (tmp_path / "out" / "performance_profile.png").stat().st_size > 0


def test_probability_of_improvement_is_the_mann_whitney_statistic_averaged_over_tasks() -> None:
    assert probability_of_improvement([1.0, 2.0, 3.0], [2.0, 2.0]) == pytest.approx(0.5)  # 0 + 2 x 0.5 + 2, of 6
    rng = np.random.default_rng(0)
    x = [rng.integers(0, 5, 7).astype(float), rng.normal(size=4)]
    y = [rng.integers(0, 5, 5).astype(float), rng.normal(size=6)]  # ties in the first task
    scipy_stats = pytest.importorskip("scipy.stats")
    per_task = [scipy_stats.mannwhitneyu(a, b).statistic / (a.size * b.size) for a, b in zip(x, y)]
    assert probability_of_improvement(x, y) == pytest.approx(np.mean(per_task))
    assert probability_of_improvement(y, x) == pytest.approx(1.0 - np.mean(per_task))
    point, low, high = probability_of_improvement_ci(x, y, reps=300)
    assert low <= point <= high and (low, high) == probability_of_improvement_ci(x, y, reps=300)[1:]
    assert probability_of_improvement_ci([5.0, 6.0], [1.0, 2.0], reps=100) == (1.0, 1.0, 1.0)
    with pytest.raises(ValueError, match="same tasks"):
        probability_of_improvement([[1.0], [2.0]], [[1.0]])


def test_performance_profile_weights_every_task_equally() -> None:
    profile = performance_profile([[0.0, 50.0, 100.0], [10.0, 20.0]], [0.0, 15.0, 60.0])
    np.testing.assert_allclose(profile, [(2 / 3 + 1) / 2, (2 / 3 + 1 / 2) / 2, (1 / 3 + 0) / 2])


def test_experiments_on_the_same_task_get_a_probability_of_improvement_table(tmp_path: Path) -> None:
    for lr, finals in ((1e-3, (100.0, 200.0, 300.0)), (1e-4, (150.0, 400.0, 500.0))):
        for seed, final in enumerate(finals):
            fake_run(tmp_path / "runs" / f"lr{lr}_seed{seed}", seed, final, [(2000, final)], config=dqn_config(seed, lr))
    text = write_report(read_sweep(tmp_path / "runs"), [], tmp_path / "out", reps=200).read_text()
    assert "## Probability of improvement on CartPole-v1\n" in text
    section = text.split("## Probability of improvement on CartPole-v1\n")[1]
    row = next(line for line in section.splitlines() if line.startswith("| dqn on CartPole-v1 agent.lr=0.0001 |"))
    assert row.startswith("| dqn on CartPole-v1 agent.lr=0.0001 |  | 0.78 [")  # 7 of 9 pairs above (150 > 100 only)


def dqn_config(seed: int, lr: float, total_steps: int = 2000, **top: object) -> dict:
    """A resolved config as qlearn-train stores it: the seed copied into agent.seed, total_steps into trainer."""
    return {"seed": seed, "device": "cpu", "total_steps": total_steps, "resume": None, "logger": {"csv": False},
            "agent": {"lr": lr, "gamma": 0.99, "seed": seed}, "trainer": {"total_steps": total_steps}, **top}


def test_runs_are_grouped_by_every_setting_but_the_seed(tmp_path: Path) -> None:
    for lr in (1e-3, 1e-4):
        fake_run(tmp_path / "runs" / f"lr{lr}_seed0", 0, 100.0, [(2000, 100.0)], config=dqn_config(0, lr))
        fake_run(tmp_path / "runs" / f"lr{lr}_seed1", 1, 200.0, [(2000, 200.0)],  # resumed, logged otherwise
                 config=dqn_config(1, lr, resume="/somewhere/else", logger={"csv": True}))
    groups = group_runs(read_sweep(tmp_path / "runs"))
    assert {name: [r.seed for r in runs] for name, runs in groups.items()} == {
        "dqn on CartPole-v1 agent.lr=0.0001": [0, 1], "dqn on CartPole-v1 agent.lr=0.001": [0, 1]}
    text = write_report(read_sweep(tmp_path / "runs"), [], tmp_path / "out", reps=50).read_text()
    assert "## dqn on CartPole-v1 agent.lr=0.001\n" in text and "seeds: 0, 1;" in text and "seeds: 0, 0" not in text
    with open(tmp_path / "out" / "runs.csv") as f:
        assert sorted(row[0] for row in list(csv.reader(f))[1:]) == ["dqn on CartPole-v1 agent.lr=0.0001"] * 2 + [
            "dqn on CartPole-v1 agent.lr=0.001"] * 2


def test_a_setting_added_later_with_a_null_default_does_not_split_the_seeds(tmp_path: Path) -> None:
    """Seed 0 ran before ``network.noisy_sigma0`` existed, seed 1 records it as null: one experiment, two seeds."""
    fake_run(tmp_path / "s0", 0, 100.0, [(2000, 100.0)], config=dqn_config(0, 1e-3))
    fake_run(tmp_path / "s1", 1, 200.0, [(2000, 200.0)], config=dqn_config(1, 1e-3, network={"noisy_sigma0": None}))
    assert {name: [r.seed for r in runs] for name, runs in group_runs(read_sweep(tmp_path)).items()} == {
        "dqn on CartPole-v1": [0, 1]}


def test_a_setting_and_its_interpolated_copies_are_named_once(tmp_path: Path) -> None:
    for steps in (1000, 2000):
        fake_run(tmp_path / f"s{steps}", 0, 1.0, [(steps, 1.0)], config=dqn_config(0, 1e-3, total_steps=steps))
    assert list(group_runs(read_sweep(tmp_path))) == ["dqn on CartPole-v1 total_steps=1000",
                                                      "dqn on CartPole-v1 total_steps=2000"]


def test_read_sweep_refuses_an_empty_directory(tmp_path: Path) -> None:
    with pytest.raises(QlearnError, match="no results.json"):
        read_sweep(tmp_path)


def test_reproduce_runs_seeds_through_hydra_multirun_and_writes_a_report(tmp_path: Path) -> None:
    out = tmp_path / "report"
    command = [sys.executable, "-m", "qlearn.cli.reproduce", "dqn_cartpole", "--seeds", "2", "--jobs", "2",
               "--out", str(out), "--references", str(REPO / "benchmarks" / "reference"),
               "total_steps=1500", "trainer.learning_starts=500", "eval.every=500", "eval.episodes=2",
               "logger=none", "device=cpu"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    results = [json.loads((out / "runs" / f"seed{s}" / "results.json").read_text()) for s in (0, 1)]
    assert [r["seed"] for r in results] == [0, 1]
    assert all(r["total_steps"] == 1500 for r in results)
    text = (out / "report.md").read_text()
    assert "dqn on CartPole-v1" in text and "IQM" in text and "488.69" in text  # CleanRL's reference is cited
    assert (out / "dqn_on_CartPole-v1.png").exists()
    assert json.loads((out / "reproduce.json").read_text())["seeds"] == [0, 1]
    again = subprocess.run(command, capture_output=True, text=True, timeout=60, env=env, cwd=tmp_path)
    assert again.returncode == 2 and "already exists" in again.stderr and "qlearn-report" in again.stderr


def test_behaviour_return_is_read_from_a_collected_dataset(tmp_path: Path) -> None:
    from qlearn.offline.io import save_dataset
    from qlearn.reports.sweep import behaviour_return

    n = 4
    arrays = {"observations": np.zeros((n, 2), np.float32), "actions": np.zeros(n, np.int64),
              "rewards": np.ones(n, np.float32), "next_observations": np.zeros((n, 2), np.float32),
              "terminals": np.array([0, 0, 0, 1], bool), "timeouts": np.zeros(n, bool)}
    with_meta = save_dataset(tmp_path / "a.hdf5", arrays, {"behaviour_return_mean": 35.9})
    without = save_dataset(tmp_path / "b.hdf5", arrays, {})
    assert behaviour_return(str(with_meta)) == pytest.approx(35.9)
    assert behaviour_return(str(without)) is None
    assert behaviour_return(str(tmp_path / "missing.hdf5")) is None and behaviour_return(None) is None


def test_unknown_launcher_is_refused_with_the_choices() -> None:
    from qlearn.cli.reproduce import check_launcher

    check_launcher("joblib")  # installed with the dev extras
    with pytest.raises(QlearnError, match="choose from"):
        check_launcher("slurmish")


def test_the_final_evaluation_time_is_reported_for_the_runs_that_recorded_it(tmp_path: Path) -> None:
    for seed, eval_time in enumerate([30.0, 50.0, None]):
        fake_run(tmp_path / "runs" / f"seed{seed}", seed, 100.0, [(1000, 100.0)], eval_time_s=eval_time)
    runs = read_sweep(tmp_path / "runs")
    text = write_report(runs, [], tmp_path / "out", reps=100).read_text()
    assert "then the final evaluation: median 40 s (min 30, max 50, 2 of 3 runs recorded it)" in text
    with open(tmp_path / "out" / "runs.csv") as f:
        rows = sorted(csv.DictReader(f), key=lambda row: row["seed"])
    assert [row["final_eval_time_s"] for row in rows] == ["30.0", "50.0", ""]
    assert [row["wall_time_s"] for row in rows] == ["10.0", "11.0", "12.0"]
