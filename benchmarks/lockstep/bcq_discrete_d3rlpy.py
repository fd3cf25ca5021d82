"""Discrete BCQ against d3rlpy 2.8's ``DiscreteBCQ`` (Double DQN whose argmaxes are restricted by an imitation
model, plus that model's loss), update for update, CartPole shapes.

d3rlpy's own algorithm is built by ``DiscreteBCQConfig(...).create()`` and ``create_impl`` with the dataset's
shapes (its default encoder: 256-256 ReLU, a linear head; one critic); its Q-function, target and imitator weights
are copied from qlearn's, and both get the same batches (as in ``cql_discrete_d3rlpy.py``). qlearn's agent is the
``bcq_discrete`` preset (the authors' settings, sfujim/BCQ) through ``qlearn.build_agent``.

d3rlpy's defaults against the preset's, and what the pair sets: the imitator shares the Q-function's encoder
(``share_encoder=True``) vs a separate network of the same shape, as the authors' non-Atari ``FC_Q`` ->
d3rlpy ``share_encoder=False``; a penalty ``beta`` 0.5 on the squared normalised log-probabilities (its
``Categorical(logits=...).logits``) vs the authors' 1e-2 on the raw logits -> ``agent.imitation.logit_penalty=0.5
agent.imitation.penalize=log_probs``; learning rate 6.25e-5 vs 3e-4: 1e-3 on both sides (``agent.lr``), so that the imitator, fed a
behaviour it can learn (action 1 where the first observation is positive), makes the filter bind within 200
updates (with threshold 0, i.e. no filter, the pair differs by 0.49); a hard target copy every ``target_update_interval`` updates,
the first after update 1, vs Polyak 0.005 -> ``agent.target_updater.tau=1.0 every=<interval> offset=1``. The same:
threshold 0.3 on the probability relative to the likeliest action (d3rlpy compares log-ratios with log 0.3),
Huber TD loss, gamma 0.99, one Adam over both networks, no gradient clipping, the online network's filtered argmax
valued by the target network. d3rlpy's default interval is 8000; the pair uses 50 on both sides, so the copy is
exercised. d3rlpy casts every batch to float32, so this pair has no float64 check.

    python benchmarks/lockstep/bcq_discrete_d3rlpy.py
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import HEADER, Row, both_kernels, copy_layers, largest_difference, layers, peer_module  # noqa: E402
from d3rlpy_discrete import (CARTPOLE, FLOAT32_ONLY, HARD_COPY, NUM_ACTIONS, OBS_DIM, feed_both,  # noqa: E402
                             named_pairs)
from dqn_cleanrl import qlearn_config  # noqa: E402

from qlearn import build_agent  # noqa: E402

TARGET_INTERVAL = 50
LR = 1e-3  # both sides (d3rlpy's default 6.25e-5, the authors' 3e-4): the filter binds within 200 updates


def reference_overrides(interval: int = TARGET_INTERVAL) -> list[str]:
    return ["agent.imitation.logit_penalty=0.5", "agent.imitation.penalize=log_probs", f"agent.lr={LR}", "agent.target_updater.tau=1.0",
            f"agent.target_updater.every={interval}", "agent.target_updater.offset=1"]


def compare(overrides: list[str], updates: int) -> tuple[float, str]:
    d3rlpy = peer_module("d3rlpy")
    torch.manual_seed(0)
    algo = d3rlpy.algos.DiscreteBCQConfig(target_update_interval=TARGET_INTERVAL, share_encoder=False,
                                          learning_rate=LR).create(device="cpu:0")
    algo.create_impl((OBS_DIM,), NUM_ACTIONS)
    modules: Any = algo.impl._modules  # type: ignore[union-attr]
    q_funcs, targ_q_funcs, imitator = modules.q_funcs, modules.targ_q_funcs, modules.imitator

    cfg = qlearn_config(["experiment=bcq_discrete", *overrides])
    agent = build_agent(cfg.agent, CARTPOLE)
    copy_layers(layers(agent.q), layers(q_funcs))
    copy_layers(layers(agent.q_target), layers(targ_q_funcs))
    copy_layers(layers(agent.imitation.network), layers(imitator))

    feed_both(agent, algo, updates, behaviour=lambda obs, g: (obs[:, 0] > 0).long())  # learnable: the filter binds
    pairs = named_pairs(("q", agent.q, q_funcs), ("q_target", agent.q_target, targ_q_funcs),
                        ("imitation", agent.imitation.network, imitator))
    return largest_difference(pairs)


def main(updates: int = 200) -> list[Row]:
    (worst, where), fused = both_kernels(lambda: compare(reference_overrides(), updates))
    return [Row("discrete BCQ (bcq_discrete) vs d3rlpy DiscreteBCQ", updates, worst, where, fused, [
        "d3rlpy share_encoder=False (the authors' separate imitation network)",
        "penalty 1e-2 on logits^2 -> 0.5 on log_probs^2: agent.imitation.logit_penalty=0.5 penalize=log_probs "
        "(d3rlpy beta)", f"lr 3e-4 -> agent.lr={LR} (d3rlpy learning_rate={LR} here; its default 6.25e-5)",
        *HARD_COPY], note=FLOAT32_ONLY)]


if __name__ == "__main__":
    print(HEADER)
    for row in main():
        print(row.line())
