"""Double DQN against d3rlpy 2.8's ``DoubleDQN`` (van Hasselt et al., 2016, Eq. 4), update for update, CartPole shapes.

CleanRL ships no Double DQN script, so the double-Q target is checked against d3rlpy's ``DoubleDQNImpl`` (the
online network's argmax at s', valued by the target network). d3rlpy's algorithm is built by
``DoubleDQNConfig(...).create()`` and ``create_impl`` (its default encoder: 256-256 ReLU, a linear head, as the
preset's MLP); its weights are copied from qlearn's and both get the same batches (``d3rlpy_discrete.feed_both``).
qlearn's agent is ``agent=double_dqn`` with the default job's settings (``dqn_cartpole``), through
``qlearn.build_agent``.

What the pair sets on qlearn's side: d3rlpy's Huber TD loss -> ``agent.loss=huber``; its learning rate 6.25e-5 ->
``agent.lr``; gamma 0.99 (the preset's 0.998) -> ``agent.gamma``; its hard copy every ``target_update_interval``
updates from update 1 -> ``agent.target_updater.every=50 +agent.target_updater.offset=1`` (50 on both sides, so
the copy is exercised in 200 updates). The same: Adam eps 1e-8 and betas, no gradient clipping, 1-step targets (``intervals`` 1).
d3rlpy casts every batch to float32, so this pair has no float64 check. It can fail: with ``agent=dqn`` (the max
of the target network instead of the online argmax) the pair differs: 2.7e-2 after 200 updates
(``--mutation``; 2026-12-04, d3rlpy 2.8.1, where the pair is bit-identical).

    python benchmarks/lockstep/double_dqn_d3rlpy.py
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import HEADER, Row, both_kernels, peer_module  # noqa: E402
from d3rlpy_discrete import FLOAT32_ONLY, compare_q_learning  # noqa: E402

TARGET_INTERVAL = 50
REFERENCE_OVERRIDES = ["agent=double_dqn", "agent.loss=huber", "agent.lr=6.25e-5", "agent.gamma=0.99",
                       "agent.target_updater.tau=1.0", f"agent.target_updater.every={TARGET_INTERVAL}",
                       "+agent.target_updater.offset=1"]


def compare(overrides: list[str], updates: int) -> tuple[float, str]:
    d3rlpy = peer_module("d3rlpy")
    config = d3rlpy.algos.DoubleDQNConfig(target_update_interval=TARGET_INTERVAL)
    return compare_q_learning(config, ["experiment=dqn_cartpole", *overrides], updates)


def main(updates: int = 200) -> list[Row]:
    (worst, where), fused = both_kernels(lambda: compare(REFERENCE_OVERRIDES, updates))
    return [Row("Double DQN (agent=double_dqn, dqn_cartpole) vs d3rlpy DoubleDQN", updates, worst, where, fused, [
        "MSE -> agent.loss=huber", "lr 2.5e-4 -> agent.lr=6.25e-5", "gamma 0.998 -> agent.gamma=0.99",
        "a hard copy every 50 updates on both sides (d3rlpy target_update_interval=50 here; its default 8000 is "
        "every=8000)", "first copy after update `every` -> after update 1: +agent.target_updater.offset=1"],
        note=FLOAT32_ONLY + "; with agent=dqn (max target) 2.7e-2")]


if __name__ == "__main__":
    if "--mutation" in sys.argv:  # the pair can fail: DQN's max target instead of the double-Q one
        print("agent=dqn:", compare(["agent=dqn", *REFERENCE_OVERRIDES[1:]], 200))
        sys.exit(0)
    print(HEADER)
    for row in main():
        print(row.line())
