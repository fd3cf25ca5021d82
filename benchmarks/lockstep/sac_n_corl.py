"""SAC-N and EDAC (qlearn presets ``sac_n_mujoco``, ``edac_mujoco``) against CORL's ``algorithms/offline/sac_n.py`` and
``edac.py`` (``SACN.update``, ``EDAC.update``), update for update, Hopper shapes, N = 5 critics on both sides.

From the pinned CORL snapshot this pair runs the scripts' own ``Actor`` (3x256 trunk, separate mean and log-std
heads, log-std clipped to [-5, 2], ``log(1 - tanh^2 + 1e-6)``), ``VectorizedCritic`` (stacked ``[N, in, out]``
weights, as qlearn's) and their ``update`` with the configs' learning rates (3e-4 for actor, critics and alpha),
gamma 0.99, tau 0.005 and, for EDAC, eta 1. Each side's Gaussian draws come from one tape, in the same order
(alpha's sample, the actor's, the next-state action's). qlearn's agent is the preset through ``qlearn.build_agent``
with ``agent.alpha_actor_critic=true`` (CORL's order) and ``agent.num_q=5``; the preset's N (200 and 50) costs only
time here, not a different update.

    python benchmarks/lockstep/sac_n_corl.py
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from actor_critic import actor_pairs, copy_actor  # noqa: E402
from common import (HEADER, NormalTape, Row, largest_difference, layers, promote_explicit_float32,  # noqa: E402
                    script_namespace, snapshot)
from dqn_cleanrl import qlearn_config  # noqa: E402
from offline_common import continuous_batches, offline_row, stub_corl_imports  # noqa: E402

from qlearn import build_agent  # noqa: E402
from qlearn.types import Batch, EnvSpec  # noqa: E402

OBS_DIM, ACTION_DIM, NUM_Q, BATCH_SIZE = 11, 3, 5, 256
LR = 3e-4  # configs/offline/{sac_n,edac}/hopper/medium_replay_v2.yaml: actor, critic and alpha learning rates
SWITCHES = ["agent.alpha_actor_critic=true", f"agent.num_q={NUM_Q}"]
DIFFERENCES = ["alpha, then the actor on the pre-step critic, then the critic with the updated actor and alpha "
               "-> agent.alpha_actor_critic=true",
               "CORL's initialisation (hidden biases 0.1, output layers uniform +-3e-3 / +-1e-3): weights are copied",
               f"N = 200 (SAC-N) / 50 (EDAC) -> agent.num_q={NUM_Q} on both sides, for time"]


def compare(algorithm: str, overrides: list[str], updates: int) -> tuple[float, str]:
    stub_corl_imports()  # d4rl, wandb: data loading and logging only
    script = "sac_n.py" if algorithm == "SACN" else "edac.py"
    ns: dict[str, Any] = script_namespace(snapshot("CORL") / "algorithms" / "offline" / script)
    torch.manual_seed(0)
    actor = ns["Actor"](OBS_DIM, ACTION_DIM, 256, 1.0)
    critic = ns["VectorizedCritic"](OBS_DIM, ACTION_DIM, 256, NUM_Q)
    extra = {"eta": 1.0} if algorithm == "EDAC" else {}
    trainer = ns[algorithm](actor=actor, actor_optimizer=torch.optim.Adam(actor.parameters(), lr=LR), critic=critic,
                            critic_optimizer=torch.optim.Adam(critic.parameters(), lr=LR), gamma=0.99, tau=0.005,
                            alpha_learning_rate=LR, device="cpu", **extra)
    promote_explicit_float32(trainer.log_alpha)  # float64 comparison: CORL makes log_alpha float32 explicitly
    trainer.alpha = trainer.log_alpha.exp().detach()
    preset = "sac_n_mujoco" if algorithm == "SACN" else "edac_mujoco"
    cfg = qlearn_config([f"experiment={preset}", *overrides])
    box = gym.spaces.Box(-1.0, 1.0, (ACTION_DIM,), dtype=np.float32)
    spec = EnvSpec.from_spaces(gym.spaces.Box(-np.inf, np.inf, (OBS_DIM,), dtype=np.float32), box)
    agent = build_agent(cfg.agent, spec).to(torch.get_default_dtype())
    copy_actor(layers(actor.trunk), actor.mu, actor.log_sigma, agent.actor)
    with torch.no_grad():
        for ours, theirs in ((agent.critic, critic), (agent.critic_target, trainer.target_critic)):
            for a, b in zip(ours.linear_layers(), layers(theirs, (ns["VectorizedLinear"],))):
                a.weight.copy_(b.weight)
                a.bias.copy_(b.bias)

    tape = NormalTape([(BATCH_SIZE, ACTION_DIM)] * 3, updates)  # alpha's sample, the actor's, the next action's
    for k, data in enumerate(continuous_batches(updates, BATCH_SIZE, OBS_DIM, ACTION_DIM)):
        tape.load(k)
        with tape.patch_randn_like():
            agent.update(Batch(**data))
        tape.check_empty()
        tape.load(k)
        with tape.patch_distributions():
            trainer.update([data["obs"], data["action"], data["reward"].unsqueeze(-1), data["next_obs"],
                            data["terminated"].unsqueeze(-1)])
        tape.check_empty()
    pairs = actor_pairs(agent.actor, layers(actor.trunk), actor.mu, actor.log_sigma)
    for name, ours, theirs in (("critic", agent.critic, critic), ("critic_target", agent.critic_target,
                                                                   trainer.target_critic)):
        for i, (a, b) in enumerate(zip(ours.linear_layers(), layers(theirs, (ns["VectorizedLinear"],)))):
            pairs += [(f"{name}.{i}.weight", a.weight, b.weight), (f"{name}.{i}.bias", a.bias, b.bias)]
    pairs.append(("log_alpha", agent.log_alpha.detach().reshape(1), trainer.log_alpha.detach()))
    return largest_difference(pairs)


def main(updates: int = 200) -> list[Row]:
    return [offline_row(f"{name} ({preset}) vs CORL {script}", updates, lambda a=algorithm: compare(a, SWITCHES, updates),
                        DIFFERENCES,
                        "CORL's explicit float32 log_alpha follows the float64 there")
            for name, preset, script, algorithm in (("SAC-N", "sac_n_mujoco", "sac_n.py", "SACN"),
                                                    ("EDAC", "edac_mujoco", "edac.py", "EDAC"))]


if __name__ == "__main__":
    print(HEADER)
    for row in main():
        print(row.line())
