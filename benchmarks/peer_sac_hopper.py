"""Stable-Baselines3's SAC on Hopper-v5 with the settings of qlearn's ``sac_mujoco`` preset: a peer learning curve.

    pip install stable-baselines3
    OMP_NUM_THREADS=1 python benchmarks/peer_sac_hopper.py --seed 0 --steps 50000
    OMP_NUM_THREADS=1 qlearn-train experiment=sac_mujoco env.id=Hopper-v5 total_steps=50000 seed=0 eval.every=10000

SB3's SAC defaults are the hyperparameters of Haarnoja et al. (2018, "SAC Algorithms and Applications",
Table 1), as in the preset: Adam 3e-4, batch 256, gamma 0.99, tau 0.005, 256-256 ReLU MLPs, one gradient step
per env step, automatic temperature from alpha = 1 with target entropy -|A|. Only ``learning_starts`` is set, to
the preset's 5,000 uniformly random start steps. Prints the greedy return (mean over 10 episodes) every
``--eval-every`` env steps, the preset's evaluation protocol. It is not a test.
"""

from __future__ import annotations

import argparse
import time

import gymnasium as gym


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=50_000)
    parser.add_argument("--eval-every", type=int, default=10_000)
    args = parser.parse_args()
    try:
        from stable_baselines3 import SAC
        from stable_baselines3.common.callbacks import BaseCallback
        from stable_baselines3.common.evaluation import evaluate_policy
        from stable_baselines3.common.monitor import Monitor
    except ImportError:
        raise SystemExit("this peer benchmark needs stable-baselines3: pip install stable-baselines3") from None

    eval_env = Monitor(gym.make("Hopper-v5"))
    model = SAC("MlpPolicy", gym.make("Hopper-v5"), learning_starts=5_000, seed=args.seed, device="cpu")
    start = time.perf_counter()

    class Evaluate(BaseCallback):
        def _on_step(self) -> bool:
            if self.num_timesteps % args.eval_every == 0:
                mean, std = evaluate_policy(self.model, eval_env, n_eval_episodes=10, deterministic=True)
                print(f"SB3 SAC Hopper-v5 seed {args.seed} step {self.num_timesteps}: eval {mean:.1f} ± {std:.1f} "
                      f"({time.perf_counter() - start:.0f} s)", flush=True)
            return True

    model.learn(args.steps, callback=Evaluate())


if __name__ == "__main__":
    main()
