"""SAC (qlearn preset ``sac_mujoco``) against CleanRL's ``sac_continuous_action.py``, update for update, on Hopper-v5's
shapes.

As in ``dqn_cleanrl.py``, the script's own code runs from the pinned snapshot: its ``Actor`` and ``SoftQNetwork``
classes, its ``__main__`` lines that build the networks, optimizers and the temperature (``if args.autotune:``), and
its whole ``if global_step > args.learning_starts:`` block (target, critic step, the delayed actor and alpha steps,
Polyak update), with ``rb.sample`` handing out the batches qlearn's agent gets too. The Gaussian draws of both sides
read one tape in the same order: the next-state action, then on actor turns (every 2nd update) twice the
current-state action for the actor step and a fresh one from the updated actor for the alpha step.

    python benchmarks/lockstep/sac_cleanrl.py [--updates 200] [overrides...]
"""

from __future__ import annotations

import contextlib
import io
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from actor_critic import (ACTION_DIM, BATCH_SIZE, actor_pairs, cleanrl_scope, copy_actor, copy_members,  # noqa: E402
                          member_pairs, qlearn_agent, command_line, pair_row)
from common import NormalTape, Row, default_dtype, largest_difference, layers  # noqa: E402

PRESET = ["experiment=sac_mujoco"]
# CleanRL's learning rates (q_lr 1e-3 for the critics and alpha, policy_lr 3e-4): settings, not switches
SETTINGS = ["agent.lr=1e-3", "+agent.actor_lr=3e-4"]
SWITCHES = ["agent.actor_update_every=2", "agent.actor_steps=2", "agent.alpha_resample=true",
            "agent.alpha_loss_of_alpha=true", "agent.log_std_min=-5", "agent.log_std_squash=tanh",
            "agent.log_prob_epsilon=1e-6"]
DIFFERENCES = ["q_lr 1e-3 (critics, alpha), policy_lr 3e-4 -> agent.lr=1e-3 +agent.actor_lr=3e-4",
               "policy_frequency=2: two actor steps every 2nd update -> agent.actor_update_every=2 agent.actor_steps=2",
               "alpha loss on a fresh sample from the updated actor -> agent.alpha_resample=true",
               "alpha loss -alpha (log pi + H), not -log alpha (...) -> agent.alpha_loss_of_alpha=true",
               "log_std = -5 + 3.5 (tanh(x) + 1) -> agent.log_std_min=-5 agent.log_std_squash=tanh",
               "log(scale (1 - tanh(u)^2) + 1e-6) in log pi -> agent.log_prob_epsilon=1e-6 (the same on [-1, 1])"]
BUILD = ("actor =", "qf1 =", "qf2 =", "qf1_target =", "qf2_target =", "qf1_target.load_state_dict",
         "qf2_target.load_state_dict", "q_optimizer =", "actor_optimizer =", "if args.autotune:")


def compare(overrides: list[str], updates: int, dtype: torch.dtype = torch.float32) -> tuple[float, str]:
    """Both sides from the same weights, ``updates`` updates on the same batches and noise; the largest relative
    parameter difference and where."""
    scope, batches, training_block = cleanrl_scope("sac_continuous_action.py", BUILD, updates, dtype)
    args = scope["args"]

    agent = qlearn_agent(overrides).to(dtype)
    actor = scope["actor"]
    trunk, members = [actor.fc1, actor.fc2], [layers(scope["qf1"]), layers(scope["qf2"])]
    target_members = [layers(scope["qf1_target"]), layers(scope["qf2_target"])]
    copy_actor(trunk, actor.fc_mean, actor.fc_logstd, agent.actor)
    copy_members(members, agent.critic)
    copy_members(target_members, agent.critic_target)
    with torch.no_grad():
        agent.log_alpha.copy_(scope["log_alpha"].squeeze())

    # per update: 0 the next-state action; on actor turns 1, 3 the actor steps' actions, 2, 4 the alpha steps'
    tape = NormalTape([(BATCH_SIZE, ACTION_DIM)] * 5, updates)
    step = int(args.learning_starts) + 1
    for k, batch in enumerate(batches):
        scope["global_step"] = step + k
        order = range(5) if (step + k) % args.policy_frequency == 0 else [0]
        tape.load(k, order)
        with tape.patch_randn_like():
            agent.update(batch)
        tape.check_empty()
        tape.load(k, order)
        with tape.patch_distributions(), default_dtype(dtype), contextlib.redirect_stdout(io.StringIO()):
            exec(training_block, scope)  # (its every-100-steps "SPS:" line is not for the table)
        tape.check_empty()
    pairs = actor_pairs(agent.actor, trunk, actor.fc_mean, actor.fc_logstd)
    pairs += member_pairs("critic", agent.critic, members)
    pairs += member_pairs("critic_target", agent.critic_target, target_members)
    pairs += [("log_alpha", agent.log_alpha.detach().reshape(1), scope["log_alpha"].detach())]
    return largest_difference(pairs)


def main(updates: int = 200, overrides: list[str] | None = None) -> list[Row]:
    overrides = PRESET + SETTINGS + SWITCHES if overrides is None else overrides
    return [pair_row("SAC (sac_mujoco) vs CleanRL sac_continuous_action.py", compare, overrides, updates,
                     DIFFERENCES, noise_draws=5)]

if __name__ == "__main__":
    command_line(main)
