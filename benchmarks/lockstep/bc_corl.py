"""BC against CORL's ``algorithms/offline/any_percent_bc.py`` (``BC.train``), update for update, Hopper shapes.

From the pinned CORL snapshot this pair runs the script's own ``Actor`` (256-256, tanh output times
``max_action``), an Adam with the script's learning rate and its ``BC.train`` (``F.mse_loss`` of the actor's
action against the dataset's). qlearn's agent is the ``bc_mujoco`` preset through ``qlearn.build_agent``; its
``GaussianActor``'s mean is ``center + scale * tanh(.)``, which is CORL's action on a [-1, 1] box. The keep-the-best
``frac`` of trajectories is data selection, not the update, and is not part of the comparison.

    python benchmarks/lockstep/bc_corl.py
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import HEADER, Row, copy_layers, largest_difference, layers, script_namespace, snapshot  # noqa: E402
from dqn_cleanrl import qlearn_config  # noqa: E402
from offline_common import continuous_batches, offline_row, parameter_pairs, stub_corl_imports  # noqa: E402

from qlearn import build_agent  # noqa: E402
from qlearn.types import Batch, EnvSpec  # noqa: E402

OBS_DIM, ACTION_DIM = 11, 3  # Hopper
REFERENCE_OVERRIDES = ["agent.loss=mse"]
ACTOR_LR = 3e-4  # any_percent_bc.py's train(): torch.optim.Adam(actor.parameters(), lr=3e-4)


def compare(overrides: list[str], updates: int) -> tuple[float, str]:
    stub_corl_imports()  # d4rl, wandb: data loading and logging only
    ns: dict[str, Any] = script_namespace(snapshot("CORL") / "algorithms" / "offline" / "any_percent_bc.py")
    config = ns["TrainConfig"]()
    torch.manual_seed(0)
    actor = ns["Actor"](OBS_DIM, ACTION_DIM, 1.0)  # max_action = env.action_space.high[0] = 1 on Hopper
    trainer = ns["BC"](max_action=1.0, actor=actor, actor_optimizer=torch.optim.Adam(actor.parameters(), lr=ACTOR_LR),
                       discount=config.discount, device="cpu")

    cfg = qlearn_config(["experiment=bc_mujoco", *overrides])
    box = gym.spaces.Box(-1.0, 1.0, (ACTION_DIM,), dtype=np.float32)
    spec = EnvSpec.from_spaces(gym.spaces.Box(-np.inf, np.inf, (OBS_DIM,), dtype=np.float32), box)
    agent = build_agent(cfg.agent, spec)
    copy_layers(layers(actor), layers(agent.actor))
    log_std = agent.actor.log_std.detach().clone()

    for data in continuous_batches(updates, config.batch_size, OBS_DIM, ACTION_DIM):
        agent.update(Batch(**data))
        trainer.train([data["obs"], data["action"], data["reward"].unsqueeze(-1), data["next_obs"],
                       data["terminated"].unsqueeze(-1)])
    # CORL's actor has no std: qlearn's must be where it started (the MSE does not train it)
    pairs = parameter_pairs("actor", agent.actor, [log_std, *[p for m in layers(actor) for p in m.parameters()]])
    return largest_difference(pairs)


def main(updates: int = 200) -> list[Row]:
    return [offline_row("BC (bc_mujoco) vs CORL any_percent_bc.py", updates,
                        lambda: compare(REFERENCE_OVERRIDES, updates), [
        "Gaussian negative log-likelihood with a learned std (qlearn) vs MSE of a deterministic tanh actor "
        "-> agent.loss=mse"])]


if __name__ == "__main__":
    print(HEADER)
    for row in main():
        print(row.line())
