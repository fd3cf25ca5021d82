"""TD3 and DDPG (qlearn presets ``td3_mujoco``, ``ddpg_mujoco``) against Stable-Baselines3's ``TD3`` and ``DDPG``,
update for update, on Hopper-v5's shapes.

SB3's own models are built with the presets' settings (256-256 ReLU actor and critics, Adam 3e-4, batch 256,
gamma 0.99, tau 0.005; TD3: two critics, target noise 0.2 clipped to 0.5, policy delay 2; DDPG: SB3's defaults,
one critic, no delay, target noise clipped to 0) and trained with their own ``model.train(gradient_steps=1, batch_size=256)``;
``replay_buffer.sample`` hands out the batches qlearn's agent gets too. The target-policy noise is one tape: qlearn
draws it through ``torch.randn``, SB3 through ``Tensor.normal_``. qlearn's agent is built as ``qlearn-train`` builds
it.

    python benchmarks/lockstep/td3_sb3.py [--updates 200] [overrides...]
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from actor_critic import (BATCH_SIZE, ACTION_DIM, HopperShapes, make_batches, copy_members, member_pairs,  # noqa: E402
                          qlearn_agent, command_line, pair_row)
from common import NormalTape, Row, copy_layers, largest_difference, layers, peer_module  # noqa: E402
from sac_sb3 import observations_as  # noqa: E402

# No differences to switch: SB3's TD3 and DDPG compute what the presets compute (sum of the critics' MSEs, actor on
# the first critic after the critic step, both targets moved when the actor steps).
DIFFERENCES: list[str] = []


def actor_layers(actor: torch.nn.Module) -> list[torch.nn.Module]:
    """qlearn's ``DeterministicActor`` as a list of linear layers (trunk, then head); its ``center + scale * tanh`` is
    SB3's ``tanh`` on a [-1, 1] box."""
    return [*layers(actor.trunk), actor.head]


def deterministic_actor_pairs(sides: dict[str, tuple[torch.nn.Module, torch.nn.Module]]) -> list[tuple]:
    """``(name, qlearn tensor, reference tensor)`` for every layer of each (qlearn actor, reference actor) pair."""
    pairs = []
    for name, (qlearn_net, reference_net) in sides.items():
        for i, (a, b) in enumerate(zip(actor_layers(qlearn_net), layers(reference_net))):
            pairs += [(f"{name}.{i}.weight", a.weight, b.weight), (f"{name}.{i}.bias", a.bias, b.bias)]
    return pairs


def compare(overrides: list[str], updates: int, trace: list[tuple[float, str]] | None = None,
            dtype: torch.dtype = torch.float32, algorithm: str = "TD3") -> tuple[float, str]:
    """Both sides from the same weights, ``updates`` updates on the same batches and noise; the largest relative
    parameter difference and where (``trace`` collects it after every update)."""
    sb3 = peer_module("stable_baselines3")
    from stable_baselines3.common.logger import Logger
    from stable_baselines3.common.type_aliases import ReplayBufferSamples

    torch.manual_seed(0)
    settings = {"policy_delay": 2, "target_policy_noise": 0.2, "target_noise_clip": 0.5} if algorithm == "TD3" else {}
    model = getattr(sb3, algorithm)("MlpPolicy", HopperShapes(), learning_rate=3e-4, buffer_size=1,
                                    batch_size=BATCH_SIZE, tau=0.005, gamma=0.99,
                                    policy_kwargs={"net_arch": [256, 256]}, device="cpu", **settings)
    model.set_logger(Logger(None, []))
    agent = qlearn_agent(overrides)
    sides = {"actor": (agent.actor, model.actor.mu), "actor_target": (agent.actor_target, model.actor_target.mu)}
    for qlearn_net, sb3_net in sides.values():
        copy_layers(layers(sb3_net), actor_layers(qlearn_net))
    members = [layers(q) for q in model.critic.q_networks]
    target_members = [layers(q) for q in model.critic_target.q_networks]
    copy_members(members, agent.critic)
    copy_members(target_members, agent.critic_target)
    if dtype != torch.float32:
        agent.to(dtype)
        model.policy.to(dtype)

    def difference() -> tuple[float, str]:
        pairs = deterministic_actor_pairs(sides)
        pairs += member_pairs("critic", agent.critic, members)
        pairs += member_pairs("critic_target", agent.critic_target, target_members)
        return largest_difference(pairs)

    batches = make_batches(updates, dtype=dtype)
    queue = [ReplayBufferSamples(b.obs, b.action, b.next_obs, b.terminated[:, None], b.reward[:, None])
             for b in batches]
    model.replay_buffer.sample = lambda batch_size, env=None: queue.pop(0)  # type: ignore[method-assign]
    tape = NormalTape([(BATCH_SIZE, ACTION_DIM)], updates)  # the target noise
    # SB3's DDPG draws target noise too (sigma 0.1) and clips it to [0, 0]; qlearn's (sigma 0) draws nothing
    qlearn_tape = tape if algorithm == "TD3" else NormalTape([], updates)
    with observations_as(dtype):
        for k, batch in enumerate(batches):
            qlearn_tape.load(k)
            with qlearn_tape.patch_randn():
                agent.update(batch)
            qlearn_tape.check_empty()
            tape.load(k)
            with tape.patch_normal_():
                model.train(gradient_steps=1, batch_size=BATCH_SIZE)
            tape.check_empty()
            if trace is not None:
                trace.append(difference())
    return difference()


def compare_ddpg(overrides: list[str], updates: int, trace: list[tuple[float, str]] | None = None,
                 dtype: torch.dtype = torch.float32) -> tuple[float, str]:
    return compare(overrides, updates, trace, dtype, algorithm="DDPG")


def main(updates: int = 200, overrides: list[str] | None = None) -> list[Row]:
    return [
        pair_row("TD3 (td3_mujoco) vs SB3 TD3", compare, overrides or ["experiment=td3_mujoco"], updates, DIFFERENCES,
                 noise_draws=1, draw="randn"),
        pair_row("DDPG (ddpg_mujoco) vs SB3 DDPG", compare_ddpg, overrides or ["experiment=ddpg_mujoco"], updates,
                 DIFFERENCES, noise_draws=0, draw="randn"),
    ]


if __name__ == "__main__":
    command_line(main)
