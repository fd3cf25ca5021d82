"""Discrete CQL against d3rlpy 2.8's ``DiscreteCQL`` (Double DQN + alpha * CQL(H)), update for update, CartPole shapes.

d3rlpy's own algorithm is built by ``DiscreteCQLConfig(...).create()`` and ``create_impl`` with the dataset's
shapes (its default encoder: 256-256 ReLU, a linear head; one critic), its Q-function and target weights are
copied from qlearn's, and both get the same batches: qlearn's as a ``Batch``, d3rlpy's as the
``TransitionMiniBatch`` its ``update`` takes (``intervals`` 1, so its ``gamma ** intervals`` is gamma). qlearn's
agent is the ``cql_discrete`` preset through ``qlearn.build_agent``.

d3rlpy's defaults and the preset's, and what the pair sets: TD loss Huber (d3rlpy's ``compute_huber_loss``,
beta 1) vs the preset's MSE -> ``agent.loss=huber``; learning rate 6.25e-5 vs 2.5e-4 -> ``agent.lr``; a hard
target copy every ``target_update_interval`` updates, the first after update 1 (``grad_step`` counts from 0), vs
Polyak 0.005 -> ``agent.target_updater.tau=1.0 every=<interval> offset=1``. The same: alpha 1, gamma 0.99, Adam
eps 1e-8 and betas, no gradient clipping, Double-DQN targets (the online network's argmax, valued by the target
network: d3rlpy's ``DoubleDQNImpl.compute_target``), the penalty's batch mean. d3rlpy's default
interval is 8000, which copies once in a 200-update run; the pair uses 50 on both sides, so the copy is exercised.
d3rlpy casts every batch to float32, so this pair has no float64 check.

    python benchmarks/lockstep/cql_discrete_d3rlpy.py
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import HEADER, Row, both_kernels, peer_module  # noqa: E402
from d3rlpy_discrete import FLOAT32_ONLY, HARD_COPY, compare_q_learning  # noqa: E402

TARGET_INTERVAL = 50


def reference_overrides(interval: int = TARGET_INTERVAL) -> list[str]:
    return ["agent.loss=huber", "agent.lr=6.25e-5", "agent.target_updater.tau=1.0",
            f"agent.target_updater.every={interval}", "agent.target_updater.offset=1"]


def compare(overrides: list[str], updates: int) -> tuple[float, str]:
    d3rlpy = peer_module("d3rlpy")
    config = d3rlpy.algos.DiscreteCQLConfig(target_update_interval=TARGET_INTERVAL)
    return compare_q_learning(config, ["experiment=cql_discrete", *overrides], updates)


def main(updates: int = 200) -> list[Row]:
    (worst, where), fused = both_kernels(lambda: compare(reference_overrides(), updates))
    return [Row("discrete CQL (cql_discrete) vs d3rlpy DiscreteCQL", updates, worst, where, fused, [
        "MSE -> agent.loss=huber", "lr 2.5e-4 -> agent.lr=6.25e-5",
        *HARD_COPY], note=FLOAT32_ONLY)]


if __name__ == "__main__":
    print(HEADER)
    for row in main():
        print(row.line())
