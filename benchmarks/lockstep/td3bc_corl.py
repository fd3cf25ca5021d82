"""TD3+BC (qlearn preset ``td3bc_mujoco``) against CORL's ``algorithms/offline/td3_bc.py`` (``TD3_BC.train``), update
for update, Hopper shapes.

From the pinned CORL snapshot this pair runs the script's own ``Actor`` (256-256, ``max_action * tanh``), two
``Critic`` nets with one Adam each (lr 3e-4, as its ``train()`` builds them) and ``TD3_BC.train`` with the script's
``TrainConfig`` values (policy noise 0.2 and clip 0.5 times ``max_action``, policy_freq 2, tau 0.005, alpha 2.5).
qlearn's agent is the preset through ``qlearn.build_agent``. The target-policy noise is one tape: qlearn draws it
through ``torch.randn``, CORL through ``torch.randn_like``. Observation normalisation is the dataset's, not the
update's, and is not part of the comparison.

    python benchmarks/lockstep/td3bc_corl.py
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import HEADER, NormalTape, Row, copy_layers, largest_difference, layers, script_namespace, snapshot  # noqa: E402
from dqn_cleanrl import qlearn_config  # noqa: E402
from offline_common import continuous_batches, load_members, member_pairs, offline_row, stub_corl_imports  # noqa: E402

from qlearn import build_agent  # noqa: E402
from qlearn.types import Batch, EnvSpec  # noqa: E402

OBS_DIM, ACTION_DIM = 11, 3  # Hopper; max_action = env.action_space.high[0] = 1
LR = 3e-4  # td3_bc.py's train(): torch.optim.Adam(..., lr=3e-4) for the actor and each critic


def compare(overrides: list[str], updates: int) -> tuple[float, str]:
    stub_corl_imports()  # d4rl, wandb: data loading and logging only
    ns: dict[str, Any] = script_namespace(snapshot("CORL") / "algorithms" / "offline" / "td3_bc.py")
    config = ns["TrainConfig"]()
    torch.manual_seed(0)
    actor = ns["Actor"](OBS_DIM, ACTION_DIM, 1.0)
    critics = [ns["Critic"](OBS_DIM, ACTION_DIM) for _ in range(2)]
    trainer = ns["TD3_BC"](
        max_action=1.0, actor=actor, actor_optimizer=torch.optim.Adam(actor.parameters(), lr=LR),
        critic_1=critics[0], critic_1_optimizer=torch.optim.Adam(critics[0].parameters(), lr=LR),
        critic_2=critics[1], critic_2_optimizer=torch.optim.Adam(critics[1].parameters(), lr=LR),
        discount=config.discount, tau=config.tau, policy_noise=config.policy_noise, noise_clip=config.noise_clip,
        policy_freq=config.policy_freq, alpha=config.alpha, device="cpu")

    cfg = qlearn_config(["experiment=td3bc_mujoco", *overrides])
    box = gym.spaces.Box(-1.0, 1.0, (ACTION_DIM,), dtype=np.float32)
    spec = EnvSpec.from_spaces(gym.spaces.Box(-np.inf, np.inf, (OBS_DIM,), dtype=np.float32), box)
    agent = build_agent(cfg.agent, spec).to(torch.get_default_dtype())
    for ours, theirs in ((agent.actor, actor), (agent.actor_target, trainer.actor_target)):
        copy_layers(layers(theirs), [*layers(ours.trunk), ours.head])
    load_members(agent.critic, [layers(c) for c in critics])
    load_members(agent.critic_target, [layers(trainer.critic_1_target), layers(trainer.critic_2_target)])

    tape = NormalTape([(config.batch_size, ACTION_DIM)], updates)
    for k, data in enumerate(continuous_batches(updates, config.batch_size, OBS_DIM, ACTION_DIM)):
        tape.load(k)
        with tape.patch_randn():
            agent.update(Batch(**data))
        tape.check_empty()
        tape.load(k)
        with tape.patch_randn_like():
            trainer.train([data["obs"], data["action"], data["reward"].unsqueeze(-1), data["next_obs"],
                           data["terminated"].unsqueeze(-1)])
        tape.check_empty()
    pairs = []
    for name, ours, theirs in (("actor", agent.actor, actor), ("actor_target", agent.actor_target, trainer.actor_target)):
        for i, (a, b) in enumerate(zip([*layers(ours.trunk), ours.head], layers(theirs))):
            pairs += [(f"{name}.{i}.weight", a.weight, b.weight), (f"{name}.{i}.bias", a.bias, b.bias)]
    pairs += member_pairs("critic", agent.critic, [layers(c) for c in critics])
    pairs += member_pairs("critic_target", agent.critic_target,
                          [layers(trainer.critic_1_target), layers(trainer.critic_2_target)])
    return largest_difference(pairs)


def main(updates: int = 200) -> list[Row]:
    return [offline_row("TD3+BC (td3bc_mujoco) vs CORL td3_bc.py", updates, lambda: compare([], updates), [
        "none (one Adam per critic in CORL, one over the stacked critics in qlearn: the same element-wise)"])]


if __name__ == "__main__":
    print(HEADER)
    for row in main():
        print(row.line())
