"""Run every lockstep pair and print the table (benchmarks/README.md keeps the last one, with peer versions).

    python benchmarks/lockstep/run_all.py [--updates 200] [--only dqn_cleanrl]

Each module in ``PAIRS`` has ``main(updates) -> list[Row]``; a pair whose peer is missing prints a row that says
how to install it, and the others still run. Exit status 1 when a pair that ran does not agree.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import HEADER, PeerMissing, Row, missing_row  # noqa: E402

PAIRS = ["dqn_cleanrl", "qrdqn_sb3", "sac_sb3", "sac_cleanrl", "redq_authors", "droq_authors",  # add each new pair's module here
         "iql_corl", "bc_corl", "cql_discrete_d3rlpy", "bcq_discrete_d3rlpy", "double_dqn_d3rlpy",
         "cql_corl", "td3_sb3", "td3_cleanrl", "td3bc_corl", "sac_n_corl"]


def versions() -> str:
    """The versions a table was made with."""
    import torch

    found = [f"python {sys.version.split()[0]}", f"torch {torch.__version__}"]
    for name in ("stable_baselines3", "d3rlpy"):
        try:
            found.append(f"{name} {importlib.import_module(name).__version__}")
        except ImportError:
            pass
    return ", ".join(found)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--updates", type=int, default=200)
    parser.add_argument("--only", nargs="*", default=None, help="pair modules to run (default: all)")
    args = parser.parse_args()
    rows: list[Row] = []
    for name in args.only or PAIRS:
        try:
            rows += importlib.import_module(name).main(args.updates)
        except PeerMissing as exc:
            rows.append(missing_row(name, str(exc)))
    print(f"lockstep ({versions()})")
    print(HEADER)
    for row in rows:
        print(row.line())
    return 0 if all(row.agrees for row in rows if row.updates) else 1


if __name__ == "__main__":
    sys.exit(main())
