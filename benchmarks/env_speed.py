"""Env throughput: Atari (and MuJoCo) vector envs on gymnasium (sync and async) against EnvPool, through qlearn's own
``make_env`` (``env.backend=gymnasium|envpool``), so every side keeps the SAME_STEP autoreset guarantee. Prints agent
steps per second (random actions; medians over interleaved rounds). Not a test.

    pip install envpool
    OMP_NUM_THREADS=1 python benchmarks/env_speed.py                   # PongNoFrameskip-v4, 8 envs
    OMP_NUM_THREADS=1 python benchmarks/env_speed.py --env Hopper-v5 --steps 2000
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import numpy as np

from qlearn.envs import make_env


def rate(env_id: str, backend: str, vectorization: str, num_envs: int, steps: int) -> float:
    """Agent steps per second (summed over the sub-envs) for ``steps`` vector steps after a reset."""
    env = make_env(env_id, num_envs=num_envs, seed=0, backend=backend, vectorization=vectorization)
    env.reset(seed=0)
    actions = [env.action_space.sample() for _ in range(steps)]
    start = time.perf_counter()
    for action in actions:
        env.step(np.asarray(action))
    elapsed = time.perf_counter() - start
    env.close()
    return steps * num_envs / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default="PongNoFrameskip-v4")
    parser.add_argument("--num-envs", type=int, default=8)
    parser.add_argument("--steps", type=int, default=500, help="vector steps per round")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    sides = {"gymnasium sync": ("gymnasium", "sync"), "gymnasium async": ("gymnasium", "async"),
             "envpool": ("envpool", "sync")}
    rates: dict[str, list[float]] = {name: [] for name in sides}
    for _ in range(args.repeats):  # interleaved, so load changes hit every side alike
        for name, (backend, vectorization) in sides.items():
            rates[name].append(rate(args.env, backend, vectorization, args.num_envs, args.steps))
    base = statistics.median(rates["gymnasium sync"])
    print(f"{args.env}, {args.num_envs} envs, {args.steps} vector steps x {args.repeats} rounds; "
          f"{platform.node()}, {os.cpu_count()} CPUs, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}")
    print("| vector env | agent steps/s (median) | vs gymnasium sync |\n|---|---|---|")
    for name, values in rates.items():
        median = statistics.median(values)
        print(f"| {name} | {median:,.0f} | {median / base:.2f}x |")


if __name__ == "__main__":
    main()
