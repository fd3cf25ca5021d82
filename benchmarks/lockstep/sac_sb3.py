"""SAC (qlearn preset ``sac_mujoco``) against Stable-Baselines3's ``SAC``, update for update, on Hopper-v5's shapes.

SB3's own ``SAC("MlpPolicy", env, ...)`` is built with the preset's settings (256-256 ReLU, Adam 3e-4, batch 256,
gamma 0.99, tau 0.005, ``ent_coef="auto"`` from 1, target entropy -|A|) and trained with its own
``model.train(gradient_steps=1, batch_size=256)``; its ``replay_buffer.sample`` hands out the batches qlearn's
agent gets too. The Gaussian noise is one tape read in each side's draw order: qlearn draws the next-state action
(critic target) before the current-state action (actor loss); SB3's ``train`` draws the current-state action first
(for its temperature loss) and the next-state action second. qlearn's agent is built as ``qlearn-train`` builds it.

    python benchmarks/lockstep/sac_sb3.py [--updates 200] [overrides...]
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from actor_critic import (BATCH_SIZE, HopperShapes, actor_pairs, copy_actor, copy_members, make_batches,  # noqa: E402
                          member_pairs, qlearn_agent, rounding_floor)
from common import HEADER, NormalTape, Row, adam_kernel, both_kernels, largest_difference, layers, peer_module  # noqa: E402

PRESET = ["experiment=sac_mujoco"]
# the SB3 behaviours the preset does not use, selected for this comparison (see REDQ's docstring)
SWITCHES = ["agent.critic_loss_factor=0.5", "agent.log_prob_epsilon=1e-6"]
DIFFERENCES = ["critic loss 0.5 * sum of MSEs -> agent.critic_loss_factor=0.5",
               "log(1 - tanh(u)^2 + 1e-6) in log pi -> agent.log_prob_epsilon=1e-6",
               "temperature stepped before the critic (with the pre-step alpha, as qlearn): no effect, no switch"]


@contextlib.contextmanager
def observations_as(dtype: torch.dtype) -> Iterator[None]:
    """For the float64 diagnostic only: SB3's ``preprocess_obs`` casts a Box observation to float32 (all it does to
    one), which would put float32 inputs into float64 networks; here it casts to ``dtype`` instead."""
    import stable_baselines3.common.policies as policies

    original = policies.preprocess_obs
    if dtype != torch.float32:
        policies.preprocess_obs = lambda obs, space, normalize_images=True: obs.to(dtype)
    try:
        yield
    finally:
        policies.preprocess_obs = original


def compare(overrides: list[str], updates: int, trace: list[tuple[float, str]] | None = None,
            dtype: torch.dtype = torch.float32) -> tuple[float, str]:
    """Both sides from the same weights, ``updates`` updates on the same batches and noise; the largest relative
    parameter difference and where (``trace`` collects it after every update). ``dtype=torch.float64`` runs both
    sides in double precision, where rounding is too small to tip a ReLU or a min one way on one side only."""
    sb3 = peer_module("stable_baselines3")
    from stable_baselines3.common.logger import Logger
    from stable_baselines3.common.type_aliases import ReplayBufferSamples

    torch.manual_seed(0)
    model = sb3.SAC("MlpPolicy", HopperShapes(), learning_rate=3e-4, buffer_size=1, batch_size=BATCH_SIZE, tau=0.005,
                    gamma=0.99, ent_coef="auto", target_entropy="auto", policy_kwargs={"net_arch": [256, 256]},
                    device="cpu")
    model.set_logger(Logger(None, []))
    agent = qlearn_agent(overrides)
    actor, critic, critic_target = model.actor, model.critic, model.critic_target
    members = [layers(q) for q in critic.q_networks]
    target_members = [layers(q) for q in critic_target.q_networks]
    copy_actor(layers(actor.latent_pi), actor.mu, actor.log_std, agent.actor)
    copy_members(members, agent.critic)
    copy_members(target_members, agent.critic_target)
    with torch.no_grad():
        agent.log_alpha.copy_(model.log_ent_coef.squeeze())
    if dtype != torch.float32:
        agent.to(dtype)
        model.policy.to(dtype)
        model.log_ent_coef.data = model.log_ent_coef.data.to(dtype)  # the optimizer holds this same tensor

    def difference() -> tuple[float, str]:
        pairs = actor_pairs(agent.actor, layers(actor.latent_pi), actor.mu, actor.log_std)
        pairs += member_pairs("critic", agent.critic, members)
        pairs += member_pairs("critic_target", agent.critic_target, target_members)
        pairs += [("log_alpha", agent.log_alpha.detach().reshape(1), model.log_ent_coef.detach())]
        return largest_difference(pairs)

    batches = make_batches(updates, dtype=dtype)
    queue = [ReplayBufferSamples(b.obs, b.action, b.next_obs, b.terminated[:, None], b.reward[:, None])
             for b in batches]
    model.replay_buffer.sample = lambda batch_size, env=None: queue.pop(0)  # type: ignore[method-assign]
    tape = NormalTape([(BATCH_SIZE, 3), (BATCH_SIZE, 3)], updates)  # 0: next-state action, 1: current-state action
    with observations_as(dtype):
        for k, batch in enumerate(batches):
            tape.load(k, order=[0, 1])
            with tape.patch_randn_like():
                agent.update(batch)
            tape.check_empty()
            tape.load(k, order=[1, 0])
            with tape.patch_distributions():
                model.train(gradient_steps=1, batch_size=BATCH_SIZE)
            tape.check_empty()
            if trace is not None:
                trace.append(difference())
    return difference()


def main(updates: int = 200, overrides: list[str] | None = None) -> list[Row]:
    overrides = PRESET + SWITCHES if overrides is None else overrides
    (worst, where), fused = both_kernels(lambda: compare(overrides, updates))
    with adam_kernel(fused=False):
        exact, exact_where = compare(overrides, updates, dtype=torch.float64)
    floor = rounding_floor(overrides, updates)
    return [Row("SAC (sac_mujoco) vs SB3 SAC", updates, worst, where, fused, list(DIFFERENCES),
                note=f"float64: {exact:.1e} ({exact_where}); float32 floor, qlearn loop vs fused Adam: {floor:.1e}")]


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("--updates", type=int, default=200)
    parser.add_argument("overrides", nargs="*", help="qlearn overrides instead of the pair's (e.g. to see it fail)")
    args = parser.parse_args()
    print(HEADER)
    for row in main(args.updates, args.overrides or None):
        print(row.line())
