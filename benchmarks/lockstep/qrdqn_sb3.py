"""QR-DQN (qlearn preset ``qrdqn_cartpole``) against SB3-contrib's ``QRDQN``, update for update, CartPole shapes.

SB3-contrib's own ``QRDQN("MlpPolicy", CartPole-v1, ...)`` is built with the preset's hyperparameters, each a
constructor argument there (256-256 ReLU, 50 quantiles, Adam lr 2.5e-4, gamma 0.998, no gradient clipping, a hard
target copy every 50 updates) and trained with its own ``model.train(gradient_steps=1)``; its
``replay_buffer.sample`` hands out the batches qlearn's agent gets too, with per-sample n-step discounts
``gamma ** k`` (SB3's ``ReplayBufferSamples.discounts``, qlearn's ``Batch.discount``), and its ``_on_step`` (which
counts steps and copies the target every ``target_update_interval``) runs once after each update. qlearn's agent is
built as ``qlearn-train`` builds it. SB3's network outputs ``[B, N, A]`` and qlearn's ``[B, A, N]``: the output
layer's rows are permuted when the weights are copied and compared. Both take the next action from the target
network's mean (qlearn's ``GreedyNextValue``) and use the quantile Huber loss with kappa 1, summed over the
predicted quantiles and averaged over target quantiles and the batch (Dabney et al., 2018, Eq. 10). The one
difference found: SB3-contrib's ``QRDQN`` sets Adam's eps to ``0.01 / batch_size`` whatever the policy's
``optimizer_kwargs`` say (the QR-DQN paper's 0.01/32 scaled to the batch), the preset keeps 1e-8 -> qlearn
``agent.adam_eps=7.8125e-05`` (0.01/128).

    python benchmarks/lockstep/qrdqn_sb3.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import gymnasium as gym
import torch
from torch import Tensor, nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import HEADER, Row, both_kernels, copy_layers, largest_difference, layers, peer_module  # noqa: E402
from dqn_cleanrl import qlearn_config  # noqa: E402

from qlearn import build_agent  # noqa: E402
from qlearn.types import Batch, EnvSpec  # noqa: E402

BATCH, QUANTILES, TARGET_EVERY = 128, 50, 50  # the preset's batch, quantiles and target period (updates)
SWITCHES = ["agent.adam_eps=7.8125e-05"]  # SB3-contrib QRDQN: Adam eps = 0.01 / batch_size, always
DIFFERENCES = ["Adam eps 1e-8 -> 0.01/batch_size: agent.adam_eps=7.8125e-05",
               "SB3 constructor set to the preset (hyperparameters, not the update): lr 2.5e-4, gamma 0.998, "
               "net_arch [256, 256], n_quantiles 50 (its 200), target_update_interval 50 (its 10000)"]


def to_sb3_rows(weight: Tensor, num_actions: int) -> Tensor:
    """qlearn's output rows ``a * N + n`` -> SB3's ``n * A + a``."""
    return weight.reshape(num_actions, QUANTILES, *weight.shape[1:]).transpose(0, 1).reshape(weight.shape)


def compare(overrides: list[str], updates: int) -> tuple[float, str]:
    sb3_contrib = peer_module("sb3_contrib")
    from stable_baselines3.common.logger import Logger
    from stable_baselines3.common.type_aliases import ReplayBufferSamples

    env = gym.make("CartPole-v1")
    num_actions = int(env.action_space.n)
    torch.manual_seed(0)
    model = sb3_contrib.QRDQN("MlpPolicy", env, learning_rate=2.5e-4, buffer_size=1, batch_size=BATCH, gamma=0.998,
                              target_update_interval=TARGET_EVERY, max_grad_norm=None, device="cpu",
                              policy_kwargs={"net_arch": [256, 256], "n_quantiles": QUANTILES})
    model.set_logger(Logger(None, []))
    agent = build_agent(qlearn_config(["experiment=qrdqn_cartpole", *overrides]).agent, EnvSpec.from_env(env))

    def sb3_layers(net: nn.Module) -> list[nn.Module]:
        return layers(net.quantile_net)

    with torch.no_grad():
        for ours, theirs in ((agent.q, model.quantile_net), (agent.q_target, model.quantile_net_target)):
            mine, ref = layers(ours), sb3_layers(theirs)
            copy_layers(mine[:-1], ref[:-1])
            ref[-1].weight.copy_(to_sb3_rows(mine[-1].weight, num_actions))
            ref[-1].bias.copy_(to_sb3_rows(mine[-1].bias, num_actions))

    g = torch.Generator().manual_seed(0)
    for _ in range(updates):
        obs, next_obs = torch.randn(BATCH, 4, generator=g), torch.randn(BATCH, 4, generator=g)
        action = torch.randint(num_actions, (BATCH,), generator=g)
        reward = torch.randn(BATCH, generator=g)
        terminated = (torch.rand(BATCH, generator=g) < 0.05).float()
        discount = 0.998 ** torch.randint(1, 6, (BATCH,), generator=g).float()  # n-step: gamma ** k, k = 1..5
        agent.update(Batch(obs=obs, action=action, reward=reward, next_obs=next_obs, terminated=terminated,
                           discount=discount))
        samples = ReplayBufferSamples(obs, action[:, None], next_obs, terminated[:, None], reward[:, None],
                                      discount[:, None])
        model.replay_buffer.sample = lambda batch_size, env=None, s=samples: s  # type: ignore[method-assign]
        model.train(gradient_steps=1, batch_size=BATCH)
        model._on_step()  # SB3 calls it after each env step: the step count and the periodic target copy

    pairs = []
    for name, ours, theirs in (("q", agent.q, model.quantile_net), ("q_target", agent.q_target,
                                                                    model.quantile_net_target)):
        mine, ref = layers(ours), sb3_layers(theirs)
        for i, (a, b) in enumerate(zip(mine, ref)):
            last = i == len(mine) - 1
            for part in ("weight", "bias"):
                mine_t = getattr(a, part).detach()
                pairs.append((f"{name}.{i}.{part}", to_sb3_rows(mine_t, num_actions) if last else mine_t,
                              getattr(b, part).detach()))
    return largest_difference(pairs)


def main(updates: int = 200) -> list[Row]:
    (worst, where), fused = both_kernels(lambda: compare(SWITCHES, updates))
    return [Row("QR-DQN (qrdqn_cartpole) vs SB3-contrib QRDQN", updates, worst, where, fused, DIFFERENCES,
                note="SB3 casts observations to float32: no float64 check")]


if __name__ == "__main__":
    print(HEADER)
    for row in main():
        print(row.line())
