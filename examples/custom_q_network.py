"""Swap one block: train DQN on CartPole with a hand-written Q-network, no Hydra involved.

    python examples/custom_q_network.py      # ~1 minute on 2 CPU cores
"""

import torch
from torch import nn

from qlearn import DQN, EpsilonGreedy, LinearSchedule, OnlineTrainer, PolyakUpdate, ReplayBuffer, make_env


class WideQ(nn.Module):
    """Any module mapping observations [B, 4] to Q-values [B, 2] will do."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(4, 256), nn.Tanh(), nn.Linear(256, 256), nn.Tanh(), nn.Linear(256, 2))

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.body(obs)


torch.manual_seed(0)
gamma = 0.998  # the other settings follow configs/experiment/dqn_cartpole.yaml
agent = DQN(WideQ(), num_actions=2, gamma=gamma, target_updater=PolyakUpdate(tau=1.0, every=50),
            optimizer=lambda params: torch.optim.Adam(params, lr=2.5e-4), loss="mse", max_grad_norm=None)
trainer = OnlineTrainer(
    agent, make_env("CartPole-v1", seed=0), ReplayBuffer(100_000, n_step=5, gamma=gamma, seed=0),
    eval_env=make_env("CartPole-v1", seed=1), exploration=EpsilonGreedy(LinearSchedule(1.0, 0.01, 20_000), 2, seed=0),
    total_steps=100_000, learning_starts=1_000, train_every=10, batch_size=128, eval_every=20_000, seed=0,
)
results = trainer.run()
print(f"final greedy return: {results['final_eval']['mean']:.1f} over {results['final_eval']['episodes']} episodes")
