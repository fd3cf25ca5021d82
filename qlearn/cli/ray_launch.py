"""``qlearn-reproduce --launcher ray``: each seed's ``qlearn-train`` as a Ray task, on a running cluster or on a Ray
instance started for the command.

Ray core (``ray.init`` + ``@ray.remote``), not Hydra's Ray launcher plugin: hydra-ray-launcher 1.2.2 always passes
``object_store_memory`` to ``ray.init``, which Ray refuses when connecting to an existing cluster (Hydra issue
#2893, fixed in Hydra's source, not released), and it pins ``cloudpickle`` below what joblib 1.6 needs. Each task runs
``python -m qlearn.cli.train`` with the worker's own Python, so the workers need qlearn installed, and the run
directories must be on a file system the driver can read (the report is aggregated there).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from qlearn.errors import QlearnError


def seed_command(experiment: str, seed: int, runs_dir: Path, overrides: list[str]) -> list[str]:
    """One seed's ``qlearn-train`` arguments (the worker prepends its Python); ``<runs_dir>/seed<k>``, as multirun."""
    return ["-m", "qlearn.cli.train", f"experiment={experiment}", f"seed={seed}",
            f"hydra.run.dir={runs_dir / f'seed{seed}'}", *overrides]


def _train(arguments: list[str], env: dict[str, str]) -> tuple[int, str]:
    """Run on a Ray worker: one ``qlearn-train`` with the worker's Python; its exit status and the end of stderr."""
    proc = subprocess.run([sys.executable, *arguments], capture_output=True, text=True,
                          env={**os.environ, **env}, check=False)
    return proc.returncode, proc.stderr[-2000:]


def run_seeds(experiment: str, seeds: list[int], runs_dir: Path, overrides: list[str], address: str | None,
              env: dict[str, str], cpus_per_run: float = 1.0) -> int:
    """Run every seed as a Ray task (``address``: a running cluster, e.g. ``127.0.0.1:6379``; ``None``: a Ray
    instance for this command only) and wait for all; 0 when every seed finished, else 1 (failures printed)."""
    try:
        import ray
    except ImportError:
        raise QlearnError("--launcher ray needs Ray: pip install 'qlearn[ray]'.") from None
    try:
        local = {} if address else {"include_dashboard": False}  # a running cluster refuses node settings
        ray.init(address=address, log_to_driver=False, configure_logging=False, **local)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise QlearnError(f"--launcher ray could not reach the Ray cluster at {address}: {exc}. Start one with "
                          "`ray start --head` or drop --ray-address to run on a local Ray instance.") from None
    try:
        task = ray.remote(num_cpus=cpus_per_run)(_train)
        futures: dict[int, Any] = {s: task.remote(seed_command(experiment, s, runs_dir, overrides), env)
                                   for s in seeds}
        failed = 0
        for seed, future in futures.items():
            code, stderr = ray.get(future)
            if code != 0:
                failed += 1
                print(f"qlearn-reproduce: seed {seed} failed on Ray (exit {code}):\n{stderr}", file=sys.stderr)
        return 1 if failed else 0
    finally:
        ray.shutdown()
