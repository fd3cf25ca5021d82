"""Stable-Baselines3's SAC or TD3 on Hopper-v5 with the settings of qlearn's ``sac_mujoco`` / ``td3_mujoco``
preset: a peer learning curve, run the same way (budget, start steps, evaluation) as ``qlearn-train``.

    pip install stable-baselines3 "gymnasium[mujoco]"
    OMP_NUM_THREADS=1 python benchmarks/peer_hopper.py --algo sac --seed 0 --steps 50000
    OMP_NUM_THREADS=1 qlearn-train experiment=sac_mujoco env.id=Hopper-v5 total_steps=50000 seed=0 eval.every=10000
    OMP_NUM_THREADS=1 python benchmarks/peer_hopper.py --algo td3 --seed 0 --steps 100000 --eval-every 5000
    OMP_NUM_THREADS=1 qlearn-train experiment=td3_mujoco env.id=Hopper-v5 total_steps=100000 seed=0

SAC: SB3's defaults are the hyperparameters of Haarnoja et al. (2018, "SAC Algorithms and Applications", Table 1),
as in the preset (Adam 3e-4, batch 256, gamma 0.99, tau 0.005, 256-256 ReLU MLPs, one gradient step per env step,
automatic temperature from alpha = 1 with target entropy -|A|); only ``learning_starts`` is set, to the preset's
5,000 uniformly random start steps.

TD3: SB3's defaults differ from the authors' code (sfujim/TD3 at 34770cc), so every setting of ``td3_mujoco`` is
passed: 256-256 ReLU actor and critics (SB3: 400-300), Adam 3e-4 (SB3: 1e-3), exploration noise N(0, 0.1) (SB3:
none), 25,000 uniformly random start steps (SB3: 100), batch 256, replay 1e6, gamma 0.99, tau 0.005, policy delay 2,
target noise 0.2 clipped to 0.5, one gradient step per env step.

Prints the greedy return (mean over 10 episodes) every ``--eval-every`` env steps, the presets' evaluation
protocol, and the last one as ``final``. It is not a test.
"""

from __future__ import annotations

import argparse
import time

import gymnasium as gym
import numpy as np


def build(algo: str, env: gym.Env, seed: int):
    """SB3's model with the qlearn preset's settings (see the module docstring)."""
    if algo == "sac":
        from stable_baselines3 import SAC
        return SAC("MlpPolicy", env, learning_starts=5_000, seed=seed, device="cpu")
    from stable_baselines3 import TD3
    from stable_baselines3.common.noise import NormalActionNoise
    dims = env.action_space.shape[0]
    noise = NormalActionNoise(mean=np.zeros(dims), sigma=0.1 * np.ones(dims))  # Hopper's box is [-1, 1]
    return TD3("MlpPolicy", env, learning_rate=3e-4, buffer_size=1_000_000, learning_starts=25_000, batch_size=256,
               tau=0.005, gamma=0.99, train_freq=1, gradient_steps=1, action_noise=noise, policy_delay=2,
               target_policy_noise=0.2, target_noise_clip=0.5, policy_kwargs={"net_arch": [256, 256]},
               seed=seed, device="cpu")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--algo", choices=["sac", "td3"], default="sac")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=50_000)
    parser.add_argument("--eval-every", type=int, default=10_000)
    args = parser.parse_args()
    try:
        from stable_baselines3.common.callbacks import BaseCallback
        from stable_baselines3.common.evaluation import evaluate_policy
        from stable_baselines3.common.monitor import Monitor
    except ImportError:
        raise SystemExit("this peer benchmark needs stable-baselines3: pip install stable-baselines3") from None

    eval_env = Monitor(gym.make("Hopper-v5"))
    model = build(args.algo, gym.make("Hopper-v5"), args.seed)
    start = time.perf_counter()
    label = f"SB3 {args.algo.upper()} Hopper-v5 seed {args.seed}"
    last: list[float] = []

    class Evaluate(BaseCallback):
        def _on_step(self) -> bool:
            if self.num_timesteps % args.eval_every == 0:
                mean, std = evaluate_policy(self.model, eval_env, n_eval_episodes=10, deterministic=True)
                last[:] = [mean, std]
                print(f"{label} step {self.num_timesteps}: eval {mean:.1f} ± {std:.1f} "
                      f"({time.perf_counter() - start:.0f} s)", flush=True)
            return True

    model.learn(args.steps, callback=Evaluate())
    if last:
        print(f"{label} final: {last[0]:.1f} ± {last[1]:.1f} after {args.steps} steps "
              f"({time.perf_counter() - start:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
