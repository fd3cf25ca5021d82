"""Offline agents against BC on a dataset made by qlearn-collect: final eval return and normalised score per seed.

    python benchmarks/offline_compare.py --dataset datasets/CartPole-v1-medium.hdf5 \
        --experiments bc_discrete cql_discrete iql_discrete --seeds 0 1 2 --out runs/offline_cartpole

Runs ``qlearn-train experiment=<e> dataset.path=<dataset> seed=<s>`` for every pair (one process at a
time, so wall times are comparable), then prints a markdown table: per experiment the final greedy
return and normalised score of each seed, their mean, and the dataset's behaviour return.
Extra ``qlearn-train`` overrides go after ``--``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from qlearn.offline import load_dataset


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--experiments", nargs="+", required=True)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--out", required=True, help="parent directory of the run directories")
    parser.add_argument("overrides", nargs="*", help="extra qlearn-train overrides (after --)")
    args = parser.parse_args()

    data = load_dataset(args.dataset)
    behaviour = data.metadata.get("behaviour_return_mean")
    rows = []
    for experiment in args.experiments:
        finals, scores, walls = [], [], []
        for seed in args.seeds:
            run_dir = Path(args.out) / f"{experiment}_seed{seed}"
            if not (run_dir / "results.json").exists():
                cmd = [sys.executable, "-m", "qlearn.cli.train", f"experiment={experiment}",
                       f"dataset.path={args.dataset}", f"seed={seed}", f"hydra.run.dir={run_dir}", *args.overrides]
                print("+", " ".join(cmd[2:]), flush=True)
                subprocess.run(cmd, check=True)
            results = json.loads((run_dir / "results.json").read_text())
            finals.append(results["final_eval"]["mean"])
            scores.append(results["final_eval"].get("normalized_score", float("nan")))
            walls.append(results["wall_time_s"])
        rows.append((experiment, finals, scores, walls))

    print(f"\ndataset {args.dataset}: {len(data)} transitions, behaviour return {behaviour}")
    print("| experiment | final return per seed | mean return | mean normalised score | wall s per run |")
    print("|---|---|---|---|---|")
    for experiment, finals, scores, walls in rows:
        per_seed = " / ".join(f"{f:.1f}" for f in finals)
        print(f"| {experiment} | {per_seed} | {np.mean(finals):.1f} | {np.mean(scores):.1f} | {np.median(walls):.0f} |")


if __name__ == "__main__":
    main()
