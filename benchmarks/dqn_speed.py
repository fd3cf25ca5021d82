"""DQN speed and replay-memory benchmark. Prints its figures; it is not a test.

    python benchmarks/dqn_speed.py                 # everything (about 10 minutes on 2 CPU cores)
    python benchmarks/dqn_speed.py --only memory   # memory | cartpole | pong
    python benchmarks/dqn_speed.py --device cuda

Workloads (CleanRL settings, vwxyzjn/cleanrl dqn.py and dqn_atari.py):
* CartPole-v1: 120-84 MLP, batch 128, train every 10 env steps, learning starts 10k, target copy
  every 500 env steps, Adam 2.5e-4, MSE. Timed over ``--cartpole-steps`` env steps from the start
  with epsilon 1 -> 0.05 over half of them, so random and greedy phases are both measured.
* Pong (PongNoFrameskip-v4, Atari preprocessing): Nature CNN, batch 32, train every 4, timed after
  the buffer holds ``--pong-prefill`` transitions (i.e. after learning starts).

Each workload runs through qlearn (``OnlineTrainer`` + ``ReplayBuffer`` + ``DQN``) with 1 env and
with a vector env, and as a bare PyTorch loop of the same work (plain env, numpy ring buffer, the
same network, optimizer and update math, no library code). In each of ``--repeats`` rounds the
workloads take turns of ``--chunk`` env steps (``benchmarks/turns.py``), so the drifts of a shared
machine hit them alike; a rate is the median over rounds and "time vs bare loop" the median of the
per-round ratios.
"""

from __future__ import annotations

import argparse
import copy
import platform
import statistics
from collections.abc import Callable

import numpy as np
import torch
from torch import nn
from turns import Tick, TickingEnv, Turns

from qlearn import (
    DQN,
    EnvSpec,
    EpsilonGreedy,
    LinearSchedule,
    OnlineTrainer,
    PolyakUpdate,
    ReplayBuffer,
    make_env,
)
from qlearn.envs import make_single_env
from qlearn.networks.q import build_q_network
from qlearn.targets import DoubleQNextValue

FRAME_BYTES = 84 * 84


def rounds(repeats: int, chunk: int, total_steps: int, timed_from: int,
           runs: dict[str, Callable[[Tick], None]]) -> dict[str, list[float]]:
    """Rates of every workload over ``repeats`` rounds of `Turns` (the order reversed every other round)."""
    rates: dict[str, list[float]] = {name: [] for name in runs}
    for round_index in range(repeats):
        order = list(runs) if round_index % 2 == 0 else list(runs)[::-1]
        measured = Turns(chunk, total_steps, timed_from).run({name: runs[name] for name in order})
        for name, rate in measured.items():
            rates[name].append(rate)
    return rates


# --------------------------------------------------------------------------- memory
def replay_bytes_per_transition(capacity: int = 20_000) -> float:
    """Fill a frame-deduplicating buffer with Pong transitions and report allocated bytes / capacity."""
    env = make_env("PongNoFrameskip-v4", seed=0)
    buffer = ReplayBuffer(capacity, frame_stack=4, seed=0)
    obs, _ = env.reset(seed=0)
    rng = np.random.default_rng(0)
    for _ in range(capacity + 100):  # wrap the ring once
        action = rng.integers(env.single_action_space.n, size=1)
        next_obs, reward, terminated, truncated, _ = env.step(action)
        buffer.add(obs, action, reward, next_obs, terminated, truncated)
        obs = next_obs
    env.close()
    return buffer.nbytes / capacity


# --------------------------------------------------------------------------- qlearn runs
def qlearn_run(env_id: str, *, num_envs: int, total_steps: int, learning_starts: int, train_every: int,
               batch_size: int, target_every_updates: int, lr: float, eps_steps: int, device: str,
               capacity: int, frame_stack: int | None, hidden: tuple[int, ...], tick: Tick,
               double_q: bool = False) -> None:
    """qlearn's trainer on the workload; ``tick`` is called before every env step (`Turns` times it) and
    ``double_q`` swaps in the Double DQN target block."""
    torch.manual_seed(0)
    env = TickingEnv(make_env(env_id, num_envs=num_envs, seed=0), tick)
    spec = EnvSpec.from_env(env)
    network = {"kind": "auto", "hidden_sizes": hidden}
    agent = DQN.from_spec(spec, network=network, lr=lr, loss="mse", max_grad_norm=None,
                          target_updater=PolyakUpdate(1.0, every=target_every_updates),
                          **({"next_value": DoubleQNextValue()} if double_q else {})).to(device)
    buffer = ReplayBuffer(capacity, frame_stack=frame_stack, device=device, seed=0)
    exploration = EpsilonGreedy(LinearSchedule(1.0, 0.05, eps_steps), num_actions=spec.num_actions, seed=0)
    trainer = OnlineTrainer(agent, env, buffer, exploration=exploration, total_steps=total_steps,
                            learning_starts=learning_starts, train_every=train_every, batch_size=batch_size,
                            eval_every=0, log_every=10**9, seed=0, progress=False)
    trainer.run()
    env.close()


# --------------------------------------------------------------------------- bare PyTorch loop
def bare_run(env_id: str, *, total_steps: int, learning_starts: int, train_every: int, batch_size: int,
             target_every_steps: int, lr: float, eps_steps: int, device: str, capacity: int,
             hidden: tuple[int, ...], tick: Tick, double_q: bool = False) -> None:
    """The same work with no library code: one plain env, numpy storage, inline update math
    (``double_q``: the target network evaluates the online network's argmax, van Hasselt et al., 2016);
    ``tick`` is called before every env step (`Turns` times it)."""
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    env = make_single_env(env_id)
    obs, _ = env.reset(seed=0)
    n_actions = int(env.action_space.n)
    q = build_q_network(obs.shape, n_actions, kind="auto", hidden_sizes=hidden).to(device)
    q_target = copy.deepcopy(q)
    opt = torch.optim.Adam(q.parameters(), lr=lr, fused=True)  # as qlearn.optim.adam
    obs_buf = np.zeros((capacity, *obs.shape), dtype=obs.dtype)
    next_buf = np.zeros_like(obs_buf)
    act_buf = np.zeros(capacity, dtype=np.int64)
    rew_buf = np.zeros(capacity, dtype=np.float32)
    term_buf = np.zeros(capacity, dtype=np.float32)
    size = pos = 0
    for step in range(total_steps):
        tick(step)
        eps = max(0.05, 1.0 - 0.95 * step / eps_steps)
        if rng.random() < eps:
            action = int(rng.integers(n_actions))
        else:
            with torch.no_grad():
                action = int(q(torch.as_tensor(obs, device=device).unsqueeze(0)).argmax(-1))
        next_obs, reward, terminated, truncated, _ = env.step(action)
        obs_buf[pos], next_buf[pos], act_buf[pos] = obs, next_obs, action
        rew_buf[pos], term_buf[pos] = reward, terminated
        pos, size = (pos + 1) % capacity, min(size + 1, capacity)
        obs = next_obs
        if terminated or truncated:
            obs, _ = env.reset()
        if step >= learning_starts and step % train_every == 0:
            idx = rng.integers(size, size=batch_size)
            o = torch.as_tensor(obs_buf[idx], device=device)
            o2 = torch.as_tensor(next_buf[idx], device=device)
            a = torch.as_tensor(act_buf[idx], device=device)
            r = torch.as_tensor(rew_buf[idx], device=device)
            d = torch.as_tensor(term_buf[idx], device=device)
            with torch.no_grad():
                if double_q:
                    next_v = q_target(o2).gather(1, q(o2).argmax(-1, keepdim=True)).squeeze(1)
                else:
                    next_v = q_target(o2).max(-1).values
                y = r + 0.99 * (1 - d) * next_v
            pred = q(o).gather(1, a.unsqueeze(1)).squeeze(1)
            loss = nn.functional.mse_loss(pred, y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            if step % target_every_steps == 0:
                q_target.load_state_dict(q.state_dict())
    env.close()


# --------------------------------------------------------------------------- main
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=["memory", "cartpole", "pong"], default=None)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--chunk", type=int, default=2_000, help="env steps per turn on CartPole (Pong: a tenth)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--num-envs", type=int, default=8)
    parser.add_argument("--cartpole-steps", type=int, default=40_000)
    parser.add_argument("--cartpole-learning-starts", type=int, default=10_000,
                        help="set above --cartpole-steps to time the acting/storing path alone (no updates)")
    parser.add_argument("--pong-prefill", type=int, default=2_000)
    parser.add_argument("--pong-steps", type=int, default=1_000, help="timed env steps after the prefill")
    args = parser.parse_args()
    torch.set_num_threads(torch.get_num_threads())
    print(f"machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads, "
          f"torch {torch.__version__}, device {args.device}; medians of {args.repeats} runs")

    if args.only in (None, "memory"):
        bpt = replay_bytes_per_transition()
        print(f"[memory] frame-deduplicated replay: {bpt:,.0f} bytes per stored transition "
              f"(one 84x84 frame = {FRAME_BYTES:,} B; a 4-frame stack = {4 * FRAME_BYTES:,} B); "
              f"1M transitions = {bpt * 1e6 / 1e9:.2f} GB")

    if args.only in (None, "cartpole"):
        steps = args.cartpole_steps
        common = {"total_steps": steps, "learning_starts": args.cartpole_learning_starts, "train_every": 10,
                  "batch_size": 128, "lr": 2.5e-4, "eps_steps": steps // 2, "device": args.device, "capacity": 10_000,
                  "hidden": (120, 84)}
        runs = {"bare PyTorch loop": lambda tick: bare_run("CartPole-v1", target_every_steps=500, tick=tick, **common)}
        for num_envs in (1, args.num_envs):
            runs[f"qlearn, {num_envs} env{'s' if num_envs > 1 else ''}"] = lambda tick, num_envs=num_envs: qlearn_run(
                "CartPole-v1", num_envs=num_envs, target_every_updates=50, frame_stack=None, tick=tick, **common)
        report(f"CartPole-v1 DQN, {steps:,} env steps", rounds(args.repeats, args.chunk, steps, 0, runs))

    if args.only in (None, "pong"):
        prefill, timed = args.pong_prefill, args.pong_steps
        common = {"total_steps": prefill + timed, "learning_starts": prefill, "train_every": 4, "batch_size": 32,
                  "lr": 1e-4, "eps_steps": prefill // 2, "device": args.device, "capacity": prefill + timed + 100,
                  "hidden": (512,)}  # one run each: `Turns` leaves out the turns of the prefill
        runs = {"bare PyTorch loop": lambda tick: bare_run("PongNoFrameskip-v4", target_every_steps=1000, tick=tick, **common)}
        for num_envs in (1, args.num_envs):
            runs[f"qlearn, {num_envs} env{'s' if num_envs > 1 else ''}"] = lambda tick, num_envs=num_envs: qlearn_run(
                "PongNoFrameskip-v4", num_envs=num_envs, target_every_updates=250, frame_stack=4, tick=tick, **common)
        turns = rounds(args.repeats, max(args.chunk // 10, 8), prefill + timed, prefill, runs)
        report(f"Pong DQN after learning starts, {timed:,} timed env steps", turns)


def report(title: str, rates: dict[str, list[float]]) -> None:
    """Median rate per workload and the median over rounds of its time against the bare loop's in that round."""
    bare = rates["bare PyTorch loop"]
    print(f"[{title}]")
    for name, values in rates.items():
        ratio = statistics.median(b / v for b, v in zip(bare, values))
        runs = ", ".join(f"{v:,.0f}" for v in values)
        print(f"  {name:<22} {statistics.median(values):>9,.1f} env-steps/s   time vs bare loop {ratio:5.2f}x   "
              f"(runs: {runs})")


if __name__ == "__main__":
    main()
