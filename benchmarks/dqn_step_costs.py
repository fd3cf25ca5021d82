"""Per-piece costs of one DQN env step on CartPole, qlearn vs the bare loop (µs). Prints; not a test.

    python benchmarks/dqn_step_costs.py
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable

import gymnasium as gym
import numpy as np
import torch

from qlearn import DQN, EnvSpec, EpsilonGreedy, LinearSchedule, PolyakUpdate, ReplayBuffer, make_env


def microseconds(fn: Callable[[], object], n: int = 20_000) -> float:
    fn()
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - start) / n * 1e6


def main() -> None:
    vec = make_env("CartPole-v1", seed=0)
    vec.reset(seed=0)
    plain = gym.make("CartPole-v1")
    plain.reset(seed=0)
    action = np.array([0])

    def plain_step() -> None:
        _, _, terminated, truncated, _ = plain.step(0)
        if terminated or truncated:
            plain.reset()

    rows = [("env step", microseconds(lambda: vec.step(action)), microseconds(plain_step))]
    explore = EpsilonGreedy(LinearSchedule(1.0, 0.05, 10_000), num_actions=2, seed=0)
    rng = np.random.default_rng(0)
    rows.append(("epsilon-greedy choice (eps=1)", microseconds(lambda: explore.select(0, 1, lambda: action)),
                 microseconds(lambda: rng.random() < 1.0 and rng.integers(2))))
    buffer = ReplayBuffer(100_000, seed=0)
    obs = np.zeros((1, 4), np.float32)
    store = np.zeros((10_000, 4), np.float32)
    rows.append(("replay add", microseconds(
        lambda: buffer.add(obs, action, np.array([1.0]), obs, np.array([False]), np.array([False]))),
        microseconds(lambda: store.__setitem__(5, obs[0]))))

    def bare_sample() -> list[torch.Tensor]:
        idx = rng.integers(10_000, size=128)
        return [torch.as_tensor(store[idx]) for _ in range(5)]

    rows.append(("replay sample of 128", microseconds(lambda: buffer.sample(128), 2_000), microseconds(bare_sample, 2_000)))
    agent = DQN.from_spec(EnvSpec.from_env(vec), network={"hidden_sizes": (120, 84)}, loss="mse", max_grad_norm=None,
                          target_updater=PolyakUpdate(1.0, every=50))
    q, q_target = agent.q, copy.deepcopy(agent.q)
    optimizer = torch.optim.Adam(q.parameters(), lr=2.5e-4, fused=True)  # as qlearn.optim.adam

    def qlearn_act() -> np.ndarray:
        with torch.inference_mode():
            return agent.act(torch.as_tensor(obs)).cpu().numpy()

    def bare_act() -> int:
        with torch.no_grad():
            return int(q(torch.as_tensor(obs[0]).unsqueeze(0)).argmax(-1))

    rows.append(("greedy action", microseconds(qlearn_act), microseconds(bare_act)))
    batch = buffer.sample(128)

    def bare_update() -> None:
        with torch.no_grad():
            y = batch.reward + 0.99 * (1 - batch.terminated) * q_target(batch.next_obs).max(-1).values
        pred = q(batch.obs).gather(1, batch.action.unsqueeze(1)).squeeze(1)
        loss = torch.nn.functional.mse_loss(pred, y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    rows.append(("DQN update", microseconds(lambda: agent.update(batch), 2_000), microseconds(bare_update, 2_000)))
    print(f"{'piece':<32}{'qlearn µs':>12}{'bare µs':>12}")
    for name, ours, bare in rows:
        print(f"{name:<32}{ours:>12.1f}{bare:>12.1f}")


if __name__ == "__main__":
    main()
