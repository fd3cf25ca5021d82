"""Speed suite: one table of every agent's speed, peak memory and cost against bare PyTorch. Prints; not a test.

    OMP_NUM_THREADS=1 python benchmarks/speed_suite.py           # all agents, about 6-10 minutes on cpu2
    python benchmarks/speed_suite.py --quick                     # tiny workloads: a smoke check in ~1 minute
    python benchmarks/speed_suite.py --only dqn --only iql --device cuda --threads 1 --repeats 5

Each agent runs in its own subprocess (``--child AGENT``, one at a time) through the existing
benchmarks' functions, so peak memory is per agent. Workloads (``--quick`` shrinks them):

* dqn, double_dqn: CartPole-v1, 1 env, CleanRL ``dqn.py`` settings, 40k env steps timed from the
  start (learning starts at a quarter, epsilon 1 -> 0.05 over half): ``dqn_speed.qlearn_run`` vs
  ``dqn_speed.bare_run`` (a whole bare loop: plain env, numpy ring buffer, inline update). For
  double_dqn both sides get the double-Q target block (see ``use_double_q``).
* drq_eps: the Atari 100k DrQ(eps) preset's replay sample + update (``drq_speed``: 10-step returns, frame
  stacks, augmentation, Double DQN target) vs the same math written inline, 30 updates per round.
* sac, redq, droq: Hopper-v5 after 1,000 random start steps, ``redq_speed.bench_preset``: qlearn's
  ``OnlineTrainer`` (env steps + acting + sampling + G updates) vs the bare update math alone (no env),
  timed over 200 / 10 / 20 env steps per round (200 / 200 / 400 updates).
* iql, cql, cql_discrete, bcq_discrete, bc, td3_bc: offline gradient steps at Hopper-v5 sizes (CartPole's for
  the discrete ones) on ``offline_speed.dataset``: ``OfflineTrainer`` (device sampling + update + bookkeeping) vs
  the bare math of ``offline_speed`` (bc: IQL's actor step with unit weights; td3_bc: TD3's update, which TD3
  and DDPG share, plus the BC term), 200 / 20 / 400 / 400 / 400 / 400 updates.
* td3, ddpg, sac_n, edac: the same offline gradient steps for TD3's and DDPG's updates (the online presets'
  updates: what they add is env stepping, which the dqn and Hopper rows measure), SAC-N at N = 10 (3x256 critics, the
  preset's networks; CORL's N is 200) and EDAC (SAC-N plus its gradient-diversity penalty, N = 10), 400 / 400 / 100 / 50.

* envpool: env throughput, not an agent: PongNoFrameskip-v4 with 8 envs and random actions, 500 vector steps per
  round, through qlearn's ``make_env`` with ``env.backend=envpool`` (the ``qlearn`` column) and with gymnasium's
  ``SyncVectorEnv`` (the ``bare PyTorch`` column holds gymnasium's rate here), both keeping SAME_STEP autoreset;
  ``benchmarks/env_speed.py`` adds gymnasium's ``AsyncVectorEnv``.

Columns: ``qlearn`` and ``bare PyTorch`` are rates (medians over ``--repeats`` interleaved rounds);
``time vs bare`` = qlearn time / bare time = bare rate / qlearn rate (1.00 = no overhead); ``peak RSS``
= the child's ``ru_maxrss`` (it ran both qlearn and bare), with the RSS after imports in brackets.
Peer rows (``stable_baselines3``: dqn, sac; ``d3rlpy``: iql, cql, cql_discrete, bcq_discrete, bc) time the peer on the
same workload when it is importable; their ratio uses the qlearn row's bare figure.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
from torch import nn

from qlearn.agents import BC
from qlearn.trainers import OfflineTrainer

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the benchmarks reused below
import dqn_speed, drq_speed, offline_speed, redq_speed  # noqa: I001
from offline_speed import B, CARTPOLE, H, HOPPER

# Workload size per agent: env steps (dqn, double_dqn, Hopper online, per round) or updates (offline, per round).
FULL = {"dqn": 40_000, "double_dqn": 40_000, "drq_eps": 30, "sac": 200, "redq": 10, "droq": 20,
        "iql": 200, "cql": 20, "cql_discrete": 400, "bcq_discrete": 400, "bc": 400, "td3_bc": 400, "td3": 400,
        "ddpg": 400, "sac_n": 100, "edac": 50, "envpool": 500}
QUICK = {"dqn": 2_000, "double_dqn": 2_000, "drq_eps": 2, "sac": 10, "redq": 1, "droq": 1,
         "iql": 10, "cql": 2, "cql_discrete": 20, "bcq_discrete": 20, "bc": 20, "td3_bc": 20, "td3": 20, "ddpg": 20,
         "sac_n": 5, "edac": 5, "envpool": 50}
PEERS = {"stable_baselines3": ("dqn", "sac"), "d3rlpy": ("iql", "cql", "cql_discrete", "bcq_discrete", "bc")}


def rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


# --------------------------------------------------------------------------- qlearn vs bare
def cartpole(agent: str, n: int, repeats: int, device: str) -> tuple[list[float], list[float], str]:
    common = {"double_q": agent == "double_dqn", "total_steps": n, "learning_starts": n // 4, "train_every": 10, "batch_size": 128, "lr": 2.5e-4,
              "eps_steps": n // 2, "device": device, "capacity": 10_000, "hidden": (120, 84)}
    runs = {"bare": lambda tick: dqn_speed.bare_run("CartPole-v1", target_every_steps=500, tick=tick, **common),
            "qlearn": lambda tick: dqn_speed.qlearn_run("CartPole-v1", num_envs=1, target_every_updates=50,
                                                        frame_stack=None, tick=tick, **common)}
    rates = dqn_speed.rounds(repeats, min(2_000, n), n, 0, runs)  # in turns: see benchmarks/turns.py
    return rates["qlearn"], rates["bare"], f"CartPole-v1, 1 env, {n:,} steps, {(n - n // 4) // 10:,} updates"


def drq(agent: str, n: int, repeats: int, device: str) -> tuple[list[float], list[float], str]:
    r = drq_speed.rates(n, repeats, torch.device(device))
    return r["qlearn"], r["bare"], f"Atari 100k DrQ(eps): sample + update, batch 32, {n} updates/round"


def hopper(agent: str, n: int, repeats: int, device: str) -> tuple[list[float], list[float], str]:
    p = redq_speed.PRESETS[agent]
    r = redq_speed.bench_preset(p, torch.device(device), n, repeats, skip_loop=True, compile=False)
    ql, bare = ([1000.0 / s for s in r[k]] for k in ("qlearn trainer", "bare math"))  # s per 1k steps -> steps/s
    return ql, bare, f"Hopper-v5, N={p.num_q} G={p.utd}, {n} steps/round"


def bare_bc(device: torch.device):  # type: ignore[no-untyped-def]
    actor, log_std = offline_speed.mlp([11, H, H, 3], device), nn.Parameter(torch.zeros(3, device=device))
    opt = torch.optim.Adam([*actor.parameters(), log_std], lr=3e-4, fused=True)

    def update(b):  # type: ignore[no-untyped-def]
        mean, std = torch.tanh(actor(b.obs)), log_std.clamp(-5, 2).exp()
        logp = (-0.5 * ((b.action - mean) / std).pow(2) - std.log() - 0.5 * math.log(2 * math.pi)).sum(-1)
        offline_speed.step(opt, -logp.mean())

    return update


def offline(agent: str, n: int, repeats: int, device: str) -> tuple[list[float], list[float], str]:
    dev = torch.device(device)
    torch.manual_seed(0)
    data = offline_speed.dataset(CARTPOLE if agent in offline_speed.DISCRETE else HOPPER, dev)
    if agent == "bc":
        qagent, bare = BC.from_spec(HOPPER, network={"hidden_sizes": (H, H)}).to(dev), bare_bc(dev)
    else:
        qagent, bare = offline_speed.qlearn_agent(agent, dev), offline_speed.BARE[agent](dev)
    batches = [data.sample(B) for _ in range(n)]
    warm = min(n, 20)
    trainer = OfflineTrainer(qagent, data, total_updates=warm, batch_size=B, log_every=10**9, progress=False)
    trainer.run()  # warm-up, as for the bare math below
    [bare(b) for b in batches[:warm]]

    def run_trainer() -> None:
        trainer.total_updates += n
        trainer.run()

    ql, br = [], []
    for _ in range(repeats):
        ql.append(n / redq_speed.timed(run_trainer, dev))
        br.append(n / redq_speed.timed(lambda: [bare(b) for b in batches], dev))
    return ql, br, f"offline, batch {B}, {n} updates/round"


# --------------------------------------------------------------------------- peers
def peer_rates(peer: str, agent: str, n: int, repeats: int, device: str) -> list[float]:
    if peer == "stable_baselines3":
        import stable_baselines3 as sb3

        if agent == "dqn":  # a fresh model per round: the same schedule as the qlearn row
            def one() -> float:
                model = sb3.DQN("MlpPolicy", "CartPole-v1", learning_rate=2.5e-4, buffer_size=10_000,
                                learning_starts=n // 4, batch_size=128, train_freq=10, target_update_interval=500,
                                exploration_fraction=0.5, exploration_final_eps=0.05,
                                policy_kwargs={"net_arch": [120, 84]}, device=device, seed=0)
                return n / redq_speed.timed(lambda: model.learn(n), torch.device(device))
            return [one() for _ in range(repeats)]
        model = sb3.SAC("MlpPolicy", "Hopper-v5", batch_size=256, buffer_size=100_000, learning_starts=1000,
                        policy_kwargs={"net_arch": [256, 256]}, device=device, seed=0)
        model.learn(1000)  # random start steps, untimed
        return [n / redq_speed.timed(lambda: model.learn(n, reset_num_timesteps=False), torch.device(device))
                for _ in range(repeats)]
    import d3rlpy

    data = offline_speed.dataset(CARTPOLE if agent in offline_speed.DISCRETE else HOPPER, torch.device("cpu"))
    n_data, timeouts = len(data.rewards), data.timeouts.numpy().copy()
    timeouts[-1] = True  # close the last episode
    mdp = d3rlpy.dataset.MDPDataset(data.observations.numpy(), data.actions.numpy().reshape(n_data, -1),
                                    data.rewards.numpy(), data.terminals.numpy(), timeouts)
    config = {"iql": d3rlpy.algos.IQLConfig, "cql": d3rlpy.algos.CQLConfig,
              "cql_discrete": d3rlpy.algos.DiscreteCQLConfig, "bcq_discrete": d3rlpy.algos.DiscreteBCQConfig,
              "bc": d3rlpy.algos.BCConfig}[agent](batch_size=B)
    algo = config.create(device="cuda:0" if device == "cuda" else "cpu:0")
    def fit(k: int) -> None:
        algo.fit(mdp, n_steps=k, n_steps_per_epoch=k, show_progress=False, logger_adapter=d3rlpy.logging.NoopAdapterFactory())

    fit(min(n, 20))  # build + warm-up
    return [n / redq_speed.timed(lambda: fit(n), torch.device(device)) for _ in range(repeats)]


# --------------------------------------------------------------------------- child and parent
def child(args: argparse.Namespace) -> None:
    if args.threads:
        torch.set_num_threads(args.threads)
    agent, n = args.child, (QUICK if args.quick else FULL)[args.child]
    out = {"agent": agent, "rss_import": rss_mib(), "threads": torch.get_num_threads(), "device": args.device}
    unit = ("env-steps/s" if agent in ("dqn", "double_dqn", "sac", "redq", "droq", "envpool") else "updates/s")
    if agent == "envpool":
        import env_speed

        pool, gym_sync = [], []
        for _ in range(args.repeats):  # interleaved rounds
            pool.append(env_speed.rate("PongNoFrameskip-v4", "envpool", "sync", 8, n))
            gym_sync.append(env_speed.rate("PongNoFrameskip-v4", "gymnasium", "sync", 8, n))
        out.update(workload=f"Pong, 8 envs, {n} vector steps; bare column: gymnasium SyncVectorEnv",
                   rate=statistics.median(pool), bare=statistics.median(gym_sync), runs=pool, bare_runs=gym_sync)
    elif args.peer:
        rates = peer_rates(args.peer, agent, n, args.repeats, args.device)
        out.update(agent=f"{agent} [{args.peer}]", workload="same as above", rate=statistics.median(rates), runs=rates)
    else:
        run = (cartpole if agent in ("dqn", "double_dqn") else drq if agent == "drq_eps"
               else hopper if agent in redq_speed.PRESETS else offline)
        ql, bare, workload = run(agent, n, args.repeats, args.device)
        out.update(workload=workload, rate=statistics.median(ql), bare=statistics.median(bare), runs=ql, bare_runs=bare)
    print(json.dumps({**out, "unit": unit, "rss": rss_mib()}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", action="append", choices=list(FULL), help="agent(s) to run (default: all)")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="tiny workloads: checks that everything runs")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads in each child")
    parser.add_argument("--child", choices=list(FULL), help=argparse.SUPPRESS)
    parser.add_argument("--peer", choices=list(PEERS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args)
    installed = [p for p in PEERS if importlib.util.find_spec(p)]
    print(f"# {platform.node()} {platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"device {args.device}, medians of {args.repeats}{', --quick' if args.quick else ''}")
    if skipped := [p for p in PEERS if p not in installed]:
        print(f"# peers skipped (not installed): {', '.join(skipped)}")
    print("| agent | workload | unit | qlearn | bare PyTorch | time vs bare | peak RSS MiB | torch threads | device |")
    print("|---|---|---|---|---|---|---|---|---|", flush=True)
    walls = []
    for agent in args.only or list(FULL):
        bare = None
        for peer in [None] + [p for p in installed if agent in PEERS[p]]:
            cmd = [sys.executable, __file__, "--child", agent, "--repeats", str(args.repeats), "--device", args.device]
            cmd += (["--quick"] if args.quick else []) + (["--threads", str(args.threads)] if args.threads else [])
            cmd += ["--peer", peer] if peer else []
            start = time.perf_counter()
            proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
            walls.append(f"{agent}{'/' + peer if peer else ''} {time.perf_counter() - start:.0f}")
            lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
            if proc.returncode or not lines:
                print(f"| {agent}{f' [{peer}]' if peer else ''} | failed (exit {proc.returncode}) |||||||", flush=True)
                print(proc.stderr[-2000:], file=sys.stderr)
                continue
            r = json.loads(lines[-1])
            bare = r.get("bare", bare)
            ratio = f"{bare / r['rate']:.2f}" if bare else "-"
            print(f"| {r['agent']} | {r['workload']} | {r['unit']} | {r['rate']:,.1f} | "
                  f"{f'{bare:,.1f}' if 'bare' in r else '-'} | {ratio} | {r['rss']:.0f} ({r['rss_import']:.0f}) | "
                  f"{r['threads']} | {r['device']} |", flush=True)
    print(f"# child wall s: {', '.join(walls)}")


if __name__ == "__main__":
    main()
