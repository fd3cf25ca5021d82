"""Assemble REDQ from blocks and train it on Pendulum-v1, no Hydra involved.

    python examples/redq_from_blocks.py      # 20,000 updates: ~5 minutes on 2 CPU cores

A 10-critic ensemble (one module, stacked weights), a tanh-Gaussian actor, the random-subset soft
target block (``SoftMinNextValue``), and 20 critic updates per env step from the trainer (the UTD ratio).
"""

import torch

from qlearn import REDQ, EnvSpec, OnlineTrainer, PolyakUpdate, QEnsemble, ReplayBuffer, TanhGaussianActor, make_env
from qlearn.targets import SoftMinNextValue

torch.manual_seed(0)
env = make_env("Pendulum-v1", seed=0)
spec = EnvSpec.from_env(env)  # obs (3,), actions in [-2, 2]
actor = TanhGaussianActor(obs_dim=3, action_low=spec.action_low, action_high=spec.action_high)
critic = QEnsemble(obs_dim=3, action_dim=1, num_q=10, hidden_sizes=(256, 256))
agent = REDQ(actor, critic, next_value=SoftMinNextValue(num_min=2), actor_q="mean", actor_update_every=20,
             target_updater=PolyakUpdate(0.005))
trainer = OnlineTrainer(
    agent, env, ReplayBuffer(100_000, seed=0), eval_env=make_env("Pendulum-v1", seed=1),
    total_steps=2_000, random_steps=1_000, learning_starts=1_000, updates_per_step=20, batch_size=256,
    eval_every=1_000, seed=0,
)
results = trainer.run()
print(f"final deterministic return: {results['final_eval']['mean']:.1f} over {results['final_eval']['episodes']} episodes")
