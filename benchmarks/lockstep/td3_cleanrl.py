"""TD3 (qlearn preset ``td3_mujoco``) against CleanRL's ``td3_continuous_action.py``, update for update, on Hopper-v5's
shapes.

As in ``sac_cleanrl.py``, the script's own code runs from the pinned snapshot: its ``Actor`` and ``QNetwork`` classes,
its ``__main__`` lines that build the networks, targets and optimizers, and its whole
``if global_step > args.learning_starts:`` block (smoothed target, critic step, the delayed actor step and the Polyak
updates), with ``rb.sample`` handing out the batches qlearn's agent gets too. The target-policy noise is one tape read
by qlearn's ``torch.randn`` and CleanRL's ``torch.randn_like``. CleanRL's first update is at
``global_step = learning_starts + 1`` (odd), so its actor steps on the 2nd, 4th, ... update, as qlearn's.

    python benchmarks/lockstep/td3_cleanrl.py [--updates 200] [overrides...]
"""

from __future__ import annotations

import contextlib
import io
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from actor_critic import (ACTION_DIM, BATCH_SIZE, cleanrl_scope, copy_members, member_pairs,  # noqa: E402
                          qlearn_agent, command_line, pair_row)
from common import NormalTape, Row, copy_layers, default_dtype, largest_difference, layers  # noqa: E402
from td3_sb3 import actor_layers, deterministic_actor_pairs  # noqa: E402

PRESET = ["experiment=td3_mujoco"]
# No differences to switch: CleanRL's defaults are the authors' (lr 3e-4 both, batch 256, tau 0.005, policy noise 0.2
# clipped to 0.5, policy_frequency 2, 256-256 nets), and its update is the preset's.
DIFFERENCES: list[str] = []
BUILD = ("actor =", "qf1 =", "qf2 =", "qf1_target =", "qf2_target =", "target_actor =", "target_actor.load_state_dict",
         "qf1_target.load_state_dict", "qf2_target.load_state_dict", "q_optimizer =", "actor_optimizer =")


def compare(overrides: list[str], updates: int, dtype: torch.dtype = torch.float32) -> tuple[float, str]:
    """Both sides from the same weights, ``updates`` updates on the same batches and noise; the largest relative
    parameter difference and where."""
    scope, batches, training_block = cleanrl_scope("td3_continuous_action.py", BUILD, updates, dtype)
    args = scope["args"]

    agent = qlearn_agent(overrides).to(dtype)
    actors = {"actor": (agent.actor, scope["actor"]), "actor_target": (agent.actor_target, scope["target_actor"])}
    for qlearn_net, cleanrl_net in actors.values():
        copy_layers(layers(cleanrl_net), actor_layers(qlearn_net))
    members = [layers(scope["qf1"]), layers(scope["qf2"])]
    target_members = [layers(scope["qf1_target"]), layers(scope["qf2_target"])]
    copy_members(members, agent.critic)
    copy_members(target_members, agent.critic_target)

    tape = NormalTape([(BATCH_SIZE, ACTION_DIM)], updates)  # the target-policy noise
    step = int(args.learning_starts) + 1
    for k, batch in enumerate(batches):
        scope["global_step"] = step + k
        tape.load(k)
        with tape.patch_randn():
            agent.update(batch)
        tape.check_empty()
        tape.load(k)
        with tape.patch_randn_like(), default_dtype(dtype), contextlib.redirect_stdout(io.StringIO()):
            exec(training_block, scope)  # (its every-100-steps "SPS:" line is not for the table)
        tape.check_empty()
    pairs = deterministic_actor_pairs(actors)
    pairs += member_pairs("critic", agent.critic, members)
    pairs += member_pairs("critic_target", agent.critic_target, target_members)
    return largest_difference(pairs)


def main(updates: int = 200, overrides: list[str] | None = None) -> list[Row]:
    return [pair_row("TD3 (td3_mujoco) vs CleanRL td3_continuous_action.py", compare, overrides or PRESET, updates,
                     DIFFERENCES, noise_draws=1, draw="randn")]


if __name__ == "__main__":
    command_line(main)
