"""REDQ / DroQ / SAC speed on Hopper-v5. Prints its figures; it is not a test.

    python benchmarks/redq_speed.py                       # all three presets, about 10 minutes on 2 CPU cores
    python benchmarks/redq_speed.py --only redq --device cuda
    python benchmarks/redq_speed.py --only adam              # PyTorch's default vs fused Adam step

For each preset (batch 256, 256-256 MLPs, Adam 3e-4, tau 0.005) it reports seconds per 1,000 env
steps after the start steps, measured four ways in the same process:

* ``qlearn trainer``: ``OnlineTrainer`` + ``ReplayBuffer`` + ``REDQ`` on Hopper-v5 (env steps,
  acting, sampling, G updates per step): the number users get.
* ``qlearn update``: ``REDQ.update`` alone on pre-sampled batches.
* ``bare math``: the same update written inline in plain PyTorch (stacked critic weights, batched
  matmuls, the same kernels, one fused Adam per network, no qlearn code): the floor.
* ``loop``: the same update with N separate ``nn.Sequential`` critics and N Adams in Python loops,
  as the REDQ reference code does it (fused Adam too, so only the layout differs).
* ``qlearn compiled`` (with ``--compile``): ``REDQ(compile=True)``, the losses through torch.compile.

Update timings are scaled to 1,000 env steps (G updates per step). Figures are medians over
``--repeats`` interleaved rounds, so the ratios compare like with like on a noisy machine.
"""

from __future__ import annotations

import argparse
import math
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from qlearn import REDQ, EnvSpec, OnlineTrainer, ReplayBuffer, make_env
from qlearn.targets import SoftMinNextValue
from qlearn.types import Batch
from qlearn.updaters import PolyakUpdate

ENV_ID = "Hopper-v5"
BATCH = 256
HIDDEN = 256
LR = 3e-4
TAU = 0.005
GAMMA = 0.99


@dataclass(frozen=True)
class Preset:
    """One row of the table; the settings of configs/experiment/<name>_mujoco.yaml."""

    name: str
    num_q: int
    num_min: int
    utd: int
    actor_q: str
    dropout: float = 0.0
    layer_norm: bool = False


PRESETS = {
    "redq": Preset("redq", 10, 2, 20, "mean"),
    "droq": Preset("droq", 2, 2, 20, "mean", dropout=1e-4, layer_norm=True),  # Hopper rate (DroQ README)
    "sac": Preset("sac", 2, 2, 1, "min"),
}


# --------------------------------------------------------------------------- bare PyTorch
class BareUpdate:
    """The REDQ update written inline: critic step, actor + alpha step every ``utd`` calls, Polyak."""

    def __init__(self, p: Preset, obs_dim: int, act_dim: int, device: torch.device) -> None:
        self.p, self.act_dim, self.calls = p, act_dim, 0
        sizes = [obs_dim + act_dim, HIDDEN, HIDDEN, 1]

        def uniform(*shape: int, fan_in: int) -> Tensor:
            return ((torch.rand(*shape, device=device) * 2 - 1) / math.sqrt(fan_in)).requires_grad_()

        self.w = [uniform(p.num_q, i, o, fan_in=i) for i, o in zip(sizes[:-1], sizes[1:])]
        self.b = [uniform(p.num_q, 1, o, fan_in=i) for i, o in zip(sizes[:-1], sizes[1:])]
        self.ln = [(torch.ones(p.num_q, 1, HIDDEN, device=device, requires_grad=True),
                    torch.zeros(p.num_q, 1, HIDDEN, device=device, requires_grad=True)) for _ in range(2)]
        critic = self.w + self.b + ([t for pair in self.ln for t in pair] if p.layer_norm else [])
        self.critic_params = critic
        self.target = [t.detach().clone() for t in critic]
        self.actor = nn.Sequential(nn.Linear(obs_dim, HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, HIDDEN), nn.ReLU(),
                                   nn.Linear(HIDDEN, 2 * act_dim)).to(device)
        self.log_alpha = torch.zeros((), device=device, requires_grad=True)
        self.critic_opt = torch.optim.Adam(critic, lr=LR, fused=True)
        self.actor_opt = torch.optim.Adam(self.actor.parameters(), lr=LR, fused=True)
        self.alpha_opt = torch.optim.Adam([self.log_alpha], lr=LR, fused=True)

    def q(self, params: list[Tensor], obs: Tensor, act: Tensor, members: Tensor | None = None) -> Tensor:
        w, b = params[:3], params[3:6]
        ln = params[6:] if self.p.layer_norm else []
        x = torch.cat((obs, act), -1)
        for layer in range(3):
            wl, bl = w[layer], b[layer]
            if members is not None:
                wl, bl = wl.index_select(0, members), bl.index_select(0, members)
            if x.dim() == 2:
                k, i, o = wl.shape
                x = (x @ wl.permute(1, 0, 2).reshape(i, k * o)).view(-1, k, o).transpose(0, 1) + bl
            else:
                x = torch.baddbmm(bl, x, wl)
            if layer < 2:
                if self.p.dropout > 0:
                    x = F.dropout(x, self.p.dropout, training=True)
                if ln:
                    g, beta = ln[2 * layer], ln[2 * layer + 1]
                    if members is not None:
                        g, beta = g.index_select(0, members), beta.index_select(0, members)
                    x = F.layer_norm(x, (HIDDEN,)) * g + beta
                x = F.relu(x)
        return x.squeeze(-1)

    def sample(self, obs: Tensor) -> tuple[Tensor, Tensor]:
        mean, log_std = self.actor(obs).chunk(2, -1)
        log_std = log_std.clamp(-20, 2)
        u = mean + log_std.exp() * torch.randn_like(mean)
        normal = -0.5 * ((u - mean) / log_std.exp()).pow(2) - log_std - 0.5 * math.log(2 * math.pi)
        log_det = 2.0 * (math.log(2.0) - u - F.softplus(-2.0 * u))
        return torch.tanh(u), (normal - log_det).sum(-1)

    def __call__(self, batch: Batch) -> None:
        p = self.p
        alpha = self.log_alpha.detach().exp()
        with torch.no_grad():
            members = torch.randperm(p.num_q)[: p.num_min].to(batch.obs.device)
            a2, logp2 = self.sample(batch.next_obs)
            q2 = self.q(self.target, batch.next_obs, a2, members).min(0).values - alpha * logp2
            y = batch.reward + GAMMA * (1 - batch.terminated) * q2
        q = self.q(self.critic_params, batch.obs, batch.action)
        loss = (q - y).pow(2).mean(1).sum()
        self.critic_opt.zero_grad(set_to_none=True)
        loss.backward()
        self.critic_opt.step()
        self.calls += 1
        if self.calls % p.utd == 0:
            self.actor_and_alpha_step(batch.obs, alpha, lambda o, a: self.q(self.critic_params, o, a),
                                      self.critic_params)
        with torch.no_grad():
            torch._foreach_lerp_(self.target, self.critic_params, TAU)

    def actor_and_alpha_step(self, obs: Tensor, alpha: Tensor, q_all: Callable[[Tensor, Tensor], Tensor],
                             critic_params: list[Tensor]) -> None:
        for t in critic_params:
            t.requires_grad_(False)
        a, logp = self.sample(obs)
        qa = q_all(obs, a)
        qa = qa.mean(0) if self.p.actor_q == "mean" else qa.min(0).values
        actor_loss = (alpha * logp - qa).mean()
        self.actor_opt.zero_grad(set_to_none=True)
        actor_loss.backward()
        self.actor_opt.step()
        for t in critic_params:
            t.requires_grad_(True)
        alpha_loss = -(self.log_alpha * (logp.detach() - self.act_dim)).mean()
        self.alpha_opt.zero_grad(set_to_none=True)
        alpha_loss.backward()
        self.alpha_opt.step()


# --------------------------------------------------------------------------- loop over N modules
class LoopUpdate(BareUpdate):
    """The same update with N separate critic modules and N optimizers (the REDQ reference's layout)."""

    def __init__(self, p: Preset, obs_dim: int, act_dim: int, device: torch.device) -> None:
        super().__init__(p, obs_dim, act_dim, device)

        def critic() -> nn.Module:
            layers: list[nn.Module] = []
            width = obs_dim + act_dim
            for _ in range(2):
                layers.append(nn.Linear(width, HIDDEN))
                if p.dropout > 0:
                    layers.append(nn.Dropout(p.dropout))
                if p.layer_norm:
                    layers.append(nn.LayerNorm(HIDDEN))
                layers.append(nn.ReLU())
                width = HIDDEN
            return nn.Sequential(*layers, nn.Linear(width, 1)).to(device)

        self.critics = [critic() for _ in range(p.num_q)]
        self.targets = [critic().requires_grad_(False) for _ in range(p.num_q)]
        for c, t in zip(self.critics, self.targets):
            t.load_state_dict(c.state_dict())
        self.critic_opts = [torch.optim.Adam(c.parameters(), lr=LR, fused=True) for c in self.critics]

    def q_all(self, obs: Tensor, act: Tensor) -> Tensor:
        x = torch.cat((obs, act), -1)
        return torch.stack([c(x).squeeze(-1) for c in self.critics])

    def __call__(self, batch: Batch) -> None:
        p = self.p
        alpha = self.log_alpha.detach().exp()
        with torch.no_grad():
            members = torch.randperm(p.num_q)[: p.num_min].tolist()
            a2, logp2 = self.sample(batch.next_obs)
            x2 = torch.cat((batch.next_obs, a2), -1)
            q2 = torch.stack([self.targets[i](x2).squeeze(-1) for i in members]).min(0).values - alpha * logp2
            y = batch.reward + GAMMA * (1 - batch.terminated) * q2
        q = self.q_all(batch.obs, batch.action)
        loss = (q - y).pow(2).mean(1).sum()
        for opt in self.critic_opts:
            opt.zero_grad(set_to_none=True)
        loss.backward()
        for opt in self.critic_opts:
            opt.step()
        self.calls += 1
        if self.calls % p.utd == 0:
            params = [t for c in self.critics for t in c.parameters()]
            self.actor_and_alpha_step(batch.obs, alpha, self.q_all, params)
        with torch.no_grad():
            for c, t in zip(self.critics, self.targets):
                for pc, pt in zip(c.parameters(), t.parameters()):
                    pt.lerp_(pc, TAU)


# --------------------------------------------------------------------------- qlearn
def make_agent(p: Preset, spec: EnvSpec, device: torch.device, compile: bool = False) -> REDQ:
    return REDQ.from_spec(spec, num_q=p.num_q, next_value=SoftMinNextValue(p.num_min), actor_q=p.actor_q,
                          actor_update_every=p.utd, network={"hidden_sizes": (HIDDEN, HIDDEN)}, dropout=p.dropout,
                          layer_norm=p.layer_norm, lr=LR,
                          target_updater=PolyakUpdate(TAU), gamma=GAMMA, compile=compile).to(device)


def make_trainer(p: Preset, device: torch.device, start_steps: int) -> OnlineTrainer:
    env = make_env(ENV_ID, seed=0)
    agent = make_agent(p, EnvSpec.from_env(env), device)
    buffer = ReplayBuffer(100_000, device=device, seed=0)
    trainer = OnlineTrainer(agent, env, buffer, total_steps=start_steps, random_steps=start_steps,
                            learning_starts=start_steps, updates_per_step=p.utd, batch_size=BATCH,
                            eval_every=0, checkpoint_every=0, log_every=10**9, seed=0, progress=False)
    trainer.run()  # untimed start steps: fill the buffer with random actions
    return trainer


def timed(fn: Callable[[], None], device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def bench_preset(p: Preset, device: torch.device, env_steps: int, repeats: int, skip_loop: bool,
                 compile: bool) -> dict[str, list[float]]:
    """Seconds per 1,000 env steps for each way of running preset ``p`` (lists over rounds)."""
    torch.manual_seed(0)
    trainer = make_trainer(p, device, start_steps=1000)
    batches = [trainer.buffer.sample(BATCH) for _ in range(8)]
    spec = EnvSpec.from_env(trainer.env)
    obs_dim, act_dim = spec.obs_shape[0], spec.action_shape[0]
    agent = make_agent(p, spec, device)
    bare = BareUpdate(p, obs_dim, act_dim, device)
    loop = None if skip_loop else LoopUpdate(p, obs_dim, act_dim, device)
    updates = env_steps * p.utd
    per_k = 1000.0 / env_steps

    updaters: dict[str, Callable[[Batch], object]] = {"qlearn update": agent.update, "bare math": bare}
    if loop is not None:
        updaters["loop"] = loop
    if compile:
        updaters["qlearn compiled"] = make_agent(p, spec, device, compile=True).update
    for update in updaters.values():  # warm-up: allocator, first Adam steps, one actor step
        for i in range(2 * p.utd):
            update(batches[i % len(batches)])

    def run_updates(update: Callable[[Batch], object]) -> Callable[[], None]:
        def go() -> None:
            for i in range(updates):
                update(batches[i % len(batches)])
        return go

    def run_trainer() -> None:
        trainer.total_steps += env_steps
        trainer.run()

    ways: dict[str, Callable[[], None]] = {"qlearn trainer": run_trainer}
    ways.update({name: run_updates(update) for name, update in updaters.items()})
    results: dict[str, list[float]] = {name: [] for name in ways}
    for _ in range(repeats):
        for name, fn in ways.items():
            results[name].append(timed(fn, device) * per_k)
    trainer.env.close()
    return results


def adam_step_ms(repeats: int, device: torch.device) -> dict[str, float]:
    """Milliseconds per Adam step on a 10-critic 256-256 ensemble: PyTorch's default vs foreach vs fused."""
    from qlearn.networks import QEnsemble

    out = {}
    for kind in ("default", "foreach", "fused"):
        critic = QEnsemble(11, 3, 10, (HIDDEN, HIDDEN)).to(device)
        opt = torch.optim.Adam(critic.parameters(), lr=LR, **({} if kind == "default" else {kind: True}))
        for param in critic.parameters():
            param.grad = torch.randn_like(param)
        for _ in range(10):
            opt.step()
        out[kind] = statistics.median(timed(lambda: [opt.step() for _ in range(100)], device) * 10 for _ in range(repeats))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=sorted(PRESETS) + ["adam"], action="append",
                        help="preset(s) to run, or 'adam' for the optimizer step alone (default: all)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--env-steps", type=int, default=None,
                        help="env steps timed per round (default: 50 for UTD 20, 500 for UTD 1)")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    parser.add_argument("--skip-loop", action="store_true", help="leave out the N-module loop version")
    parser.add_argument("--compile", action="store_true", help="also time REDQ(compile=True)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    print(f"# {platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads, "
          f"torch {torch.__version__}, device {device}"
          + (f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else ""))
    if "adam" in (args.only or ["adam"]):
        ms = adam_step_ms(args.repeats, device)
        print("# Adam step on a 10-critic 256-256 ensemble (699k parameters), ms: "
              + ", ".join(f"{k} {v:.2f}" for k, v in ms.items()))
    presets = [name for name in (args.only or ["redq", "droq", "sac"]) if name != "adam"]
    if not presets:
        return
    print(f"# {ENV_ID}, batch {BATCH}, {HIDDEN}-{HIDDEN} MLPs; seconds per 1,000 env steps after start steps, "
          f"median of {args.repeats} rounds")
    print("| preset | N | G | qlearn trainer | qlearn update | bare math | loop over N | compiled update "
          "| trainer / bare | update / bare |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name in presets:
        p = PRESETS[name]
        steps = args.env_steps or (50 if p.utd > 1 else 500)
        r = bench_preset(p, device, steps, args.repeats, args.skip_loop, args.compile)
        med = {k: statistics.median(v) for k, v in r.items()}
        loop = f"{med['loop']:.1f}" if "loop" in med else "-"
        compiled = f"{med['qlearn compiled']:.1f}" if "qlearn compiled" in med else "-"
        print(f"| {name} | {p.num_q} | {p.utd} | {med['qlearn trainer']:.1f} | {med['qlearn update']:.1f} | "
              f"{med['bare math']:.1f} | {loop} | {compiled} | {med['qlearn trainer'] / med['bare math']:.2f} | "
              f"{med['qlearn update'] / med['bare math']:.2f} |", flush=True)


if __name__ == "__main__":
    main()
