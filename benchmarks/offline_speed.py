"""Offline update speed: IQL, continuous CQL, discrete CQL and discrete BCQ gradient steps per second. Prints; not a test.

    python benchmarks/offline_speed.py                    # all three, ~3 minutes on 2 CPU cores
    python benchmarks/offline_speed.py --only iql --threads 1 --device cuda

Each agent (batch 256, 256-256 MLPs, Adam 3e-4, Hopper-v5 sizes for the continuous agents: obs 11,
action 3; CartPole sizes for discrete CQL: obs 4, 2 actions) is timed three ways in one process:

* ``qlearn trainer``: ``OfflineTrainer`` (no evaluation) on an ``OfflineDataset`` of random data,
  i.e. sampling on the device + ``agent.update`` + the trainer's bookkeeping: what users get.
* ``qlearn update``: ``agent.update`` alone on pre-sampled batches.
* ``bare math``: the same update written inline in plain PyTorch (same layers, stacked critic
  weights, fused Adam, ``torch._foreach_lerp_`` for Polyak), no qlearn code: the floor.

Figures are medians over ``--repeats`` interleaved rounds of ``--updates`` updates each.
"""

from __future__ import annotations

import argparse
import functools
import math
import platform
import statistics
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from redq_speed import timed  # benchmarks/ is the script's directory, so on sys.path

from qlearn import EnvSpec
from qlearn.agents import DQN, IQL, REDQ, TD3
from qlearn.imitation import ImitationFilter
from qlearn.losses import ContinuousCQLPenalty, CQLPenalty, EnsembleGradientDiversity
from qlearn.networks import MLP
from qlearn.offline import OfflineDataset
from qlearn.optim import adam
from qlearn.exploration import GaussianActionNoise
from qlearn.targets import DoubleQNextValue, SmoothedMinNextValue, SoftMinNextValue
from qlearn.trainers import OfflineTrainer
from qlearn.types import Batch
from qlearn.updaters import PolyakUpdate

B, H, LR, TAU, GAMMA = 256, 256, 3e-4, 0.005, 0.99
HOPPER = EnvSpec((11,), "float32", (3,), action_low=(-1.0,) * 3, action_high=(1.0,) * 3)
CARTPOLE = EnvSpec((4,), "float32", (), num_actions=2)


def dataset(spec: EnvSpec, device: torch.device, n: int = 100_000) -> OfflineDataset:
    rng = np.random.default_rng(0)
    obs = rng.normal(size=(n, spec.obs_shape[0])).astype(np.float32)
    if spec.discrete:
        act = rng.integers(spec.num_actions, size=n)
    else:
        act = rng.uniform(-1, 1, size=(n, spec.action_shape[0])).astype(np.float32)
    return OfflineDataset(obs, act, rng.normal(size=n).astype(np.float32), obs[::-1].copy(),
                          (rng.random(n) < 0.01).astype(np.float32), device=device, seed=0)


# --------------------------------------------------------------------------- bare PyTorch pieces
def mlp(sizes: list[int], device: torch.device) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers).to(device)


class Ensemble(nn.Module):
    """Two critics as stacked weights: shared-input first layer as one GEMM, then baddbmm."""

    def __init__(self, sizes: list[int], n: int, device: torch.device) -> None:
        super().__init__()
        self.w = nn.ParameterList([nn.Parameter((torch.rand(n, i, o, device=device) * 2 - 1) / math.sqrt(i))
                                   for i, o in zip(sizes[:-1], sizes[1:])])
        self.b = nn.ParameterList([nn.Parameter((torch.rand(n, 1, o, device=device) * 2 - 1) / math.sqrt(i))
                                   for i, o in zip(sizes[:-1], sizes[1:])])

    def forward(self, x: Tensor) -> Tensor:  # [B, in] -> [N, B, out]; [N, B, in]: one input per member
        n, i, o = self.w[0].shape
        if x.dim() == 3:
            h = torch.baddbmm(self.b[0], x, self.w[0])
        else:
            h = (x @ self.w[0].permute(1, 0, 2).reshape(i, n * o)).view(-1, n, o).transpose(0, 1) + self.b[0]
        for w, b in zip(self.w[1:], self.b[1:]):
            h = torch.baddbmm(b, torch.relu(h), w)
        return h


def polyak(online: nn.Module, target: nn.Module) -> None:
    with torch.no_grad():
        torch._foreach_lerp_(list(target.parameters()), list(online.parameters()), TAU)


def step(opt: torch.optim.Optimizer, loss: Tensor) -> None:
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


def bare_iql(device: torch.device) -> Callable[[Batch], None]:
    o, a = 11, 3
    critic, value, actor = Ensemble([o + a, H, H, 1], 2, device), mlp([o, H, H, 1], device), mlp([o, H, H, a], device)
    log_std = nn.Parameter(torch.zeros(a, device=device))
    target = Ensemble([o + a, H, H, 1], 2, device)
    target.load_state_dict(critic.state_dict())
    opts = [torch.optim.Adam(p, lr=LR, fused=True) for p in (critic.parameters(), value.parameters(),
                                                               [*actor.parameters(), log_std])]

    def update(b: Batch) -> None:
        with torch.no_grad():
            q_t = target(torch.cat((b.obs, b.action), 1)).squeeze(-1).min(0).values
        diff = q_t - value(b.obs).squeeze(-1)
        step(opts[1], (torch.where(diff < 0, 0.3, 0.7) * diff.pow(2)).mean())
        with torch.no_grad():
            v = value(b.obs).squeeze(-1)
            next_v = value(b.next_obs).squeeze(-1)
            w = torch.exp(3.0 * (q_t - v)).clamp(max=100.0)
        mean = torch.tanh(actor(b.obs))
        std = log_std.clamp(-5, 2).exp()
        logp = (-0.5 * ((b.action - mean) / std).pow(2) - std.log() - 0.5 * math.log(2 * math.pi)).sum(-1)
        step(opts[2], -(w * logp).mean())
        y = b.reward + GAMMA * (1 - b.terminated) * next_v
        q = critic(torch.cat((b.obs, b.action), 1)).squeeze(-1)
        step(opts[0], 2 * F.mse_loss(q, y.expand_as(q)))
        polyak(critic, target)

    return update


def tanh_gaussian(actor: nn.Module, obs: Tensor, log_std_min: float = -20.0) -> tuple[Tensor, Tensor]:
    """A reparameterised tanh-Gaussian action and its exact log-probability (SAC's actor, Haarnoja et al., 2018)."""
    mean, ls = actor(obs).chunk(2, -1)
    ls = ls.clamp(log_std_min, 2)
    u = mean + ls.exp() * torch.randn_like(mean)
    logp = (-0.5 * ((u - mean) / ls.exp()).pow(2) - ls - 0.5 * math.log(2 * math.pi)).sum(-1)
    return torch.tanh(u), logp - (2 * (math.log(2) - u - F.softplus(-2 * u))).sum(-1)


def q_of(net: nn.Module, obs: Tensor, act: Tensor) -> Tensor:
    return net(torch.cat((obs, act), 1)).squeeze(-1)


def bare_cql(device: torch.device, k: int = 10) -> Callable[[Batch], None]:
    o, a = 11, 3
    critic, actor = Ensemble([o + a, H, H, 1], 2, device), mlp([o, H, H, 2 * a], device)
    target = Ensemble([o + a, H, H, 1], 2, device)
    target.load_state_dict(critic.state_dict())
    log_alpha = nn.Parameter(torch.zeros((), device=device))
    opts = [torch.optim.Adam(critic.parameters(), lr=LR, fused=True),
            torch.optim.Adam(actor.parameters(), lr=1e-4, fused=True),
            torch.optim.Adam([log_alpha], lr=1e-4, fused=True)]

    def pi(obs: Tensor) -> tuple[Tensor, Tensor]:
        return tanh_gaussian(actor, obs)

    def update(b: Batch) -> None:
        with torch.no_grad():
            na, _ = pi(b.next_obs)
            y = b.reward + GAMMA * (1 - b.terminated) * q_of(target, b.next_obs, na).min(0).values
            rep, nrep = b.obs.repeat_interleave(k, 0), b.next_obs.repeat_interleave(k, 0)
            pa, plp = pi(rep)
            npa, nplp = pi(nrep)
            ua = torch.rand_like(pa) * 2 - 1
        q = q_of(critic, b.obs, b.action)
        td = 2 * F.mse_loss(q, y.expand_as(q))
        qs = q_of(critic, rep.repeat(3, 1), torch.cat((ua, pa, npa))).view(2, 3, B, k).permute(0, 2, 1, 3).reshape(2, B, 3 * k)
        dens = torch.cat((torch.full((B, k), -a * math.log(2.0), device=device), plp.view(B, k), nplp.view(B, k)), 1)
        pen = (torch.logsumexp(qs - dens, -1) - q).mean(1).sum()
        step(opts[0], td + 5.0 * pen)
        for p in critic.parameters():
            p.requires_grad_(False)
        act, logp = pi(b.obs)
        alpha = log_alpha.detach().exp()
        step(opts[1], (alpha * logp - q_of(critic, b.obs, act).min(0).values).mean())
        for p in critic.parameters():
            p.requires_grad_(True)
        step(opts[2], -(log_alpha * (logp.detach() - a)).mean())
        polyak(critic, target)

    return update


def bare_discrete_cql(device: torch.device) -> Callable[[Batch], None]:
    q_net, target = mlp([4, H, H, 2], device), mlp([4, H, H, 2], device)
    target.load_state_dict(q_net.state_dict())
    opt = torch.optim.Adam(q_net.parameters(), lr=LR, fused=True)

    def update(b: Batch) -> None:
        with torch.no_grad():
            best = q_net(b.next_obs).argmax(-1, keepdim=True)
            y = b.reward + GAMMA * (1 - b.terminated) * target(b.next_obs).gather(-1, best).squeeze(-1)
        q_all = q_net(b.obs)
        q = q_all.gather(-1, b.action.unsqueeze(-1)).squeeze(-1)
        step(opt, F.mse_loss(q, y) + (torch.logsumexp(q_all, -1) - q).mean())
        polyak(q_net, target)

    return update


def bare_discrete_bcq(device: torch.device, threshold: float = 0.3) -> Callable[[Batch], None]:
    """Discrete BCQ (sfujim/BCQ's update): Double-DQN target over the imitation-allowed actions, Huber TD loss,
    NLL + 1e-2 logits^2 for the imitation net, one Adam over both networks."""
    q_net, target, imitation = (mlp([4, H, H, 2], device) for _ in range(3))
    target.load_state_dict(q_net.state_dict())
    opt = torch.optim.Adam([*q_net.parameters(), *imitation.parameters()], lr=LR, fused=True)

    def update(b: Batch) -> None:
        with torch.no_grad():
            log_probs = F.log_softmax(imitation(b.next_obs), -1)
            allowed = (log_probs - log_probs.max(-1, keepdim=True).values).exp() > threshold
            best = q_net(b.next_obs).masked_fill(~allowed, float("-inf")).argmax(-1, keepdim=True)
            y = b.reward + GAMMA * (1 - b.terminated) * target(b.next_obs).gather(-1, best).squeeze(-1)
        q = q_net(b.obs).gather(-1, b.action.unsqueeze(-1)).squeeze(-1)
        logits = imitation(b.obs)
        step(opt, F.smooth_l1_loss(q, y) + F.cross_entropy(logits, b.action) + 1e-2 * logits.pow(2).mean())
        polyak(q_net, target)

    return update


# --------------------------------------------------------------------------- qlearn agents
def bare_td3_bc(device: torch.device, alpha: float | None = 2.5, ddpg: bool = False) -> Callable[[Batch], None]:
    """TD3+BC (the TD3 update plus the BC term; ``alpha=None``: TD3 alone): smoothed clipped double-Q target, the
    actor and both targets every second update (Fujimoto & Gu, 2021; Fujimoto et al., 2018, Alg. 1). ``ddpg``: the
    TD3 paper's DDPG, one critic, no smoothing, the actor and targets every update."""
    o, a = 11, 3
    n, delay, sigma = (1, 1, 0.0) if ddpg else (2, 2, 0.2)
    critic, critic_target = Ensemble([o + a, H, H, 1], n, device), Ensemble([o + a, H, H, 1], n, device)
    actor, actor_target = mlp([o, H, H, a], device), mlp([o, H, H, a], device)
    critic_target.load_state_dict(critic.state_dict())
    actor_target.load_state_dict(actor.state_dict())
    critic_opt = torch.optim.Adam(critic.parameters(), lr=LR, fused=True)
    actor_opt = torch.optim.Adam(actor.parameters(), lr=LR, fused=True)
    count = [0]

    def update(b: Batch) -> None:
        with torch.no_grad():
            next_action = torch.tanh(actor_target(b.next_obs))
            if sigma:
                noise = (sigma * torch.randn_like(b.action)).clamp(-0.5, 0.5)
                next_action = (next_action + noise).clamp(-1.0, 1.0)
            next_q = critic_target(torch.cat([b.next_obs, next_action], -1)).squeeze(-1).min(dim=0).values
            y = b.reward + GAMMA * (1 - b.terminated) * next_q
        q = critic(torch.cat([b.obs, b.action], -1)).squeeze(-1)
        step(critic_opt, n * F.mse_loss(q, y.expand_as(q)))
        count[0] += 1
        if count[0] % delay == 0:
            critic.requires_grad_(False)
            pi = torch.tanh(actor(b.obs))
            q1 = critic(torch.cat([b.obs, pi], -1))[0, :, 0]
            if alpha is None:
                step(actor_opt, -q1.mean())
            else:
                step(actor_opt, -alpha / q1.abs().mean().detach() * q1.mean() + F.mse_loss(pi, b.action))
            critic.requires_grad_(True)
            polyak(critic, critic_target)
            polyak(actor, actor_target)

    return update


def bare_sac_n(device: torch.device, n: int = 10, eta: float = 0.0) -> Callable[[Batch], None]:
    """SAC-N (An et al., 2021): N critics (3x256), the min over all N in the soft target and in the actor loss; the
    critic, then the actor on the stepped critic, then the temperature. ``eta > 0`` adds EDAC's penalty (Eq. 5): the
    mean over the batch of sum_{i != j} <g_i, g_j> / (N - 1), g_i the unit action-gradient of critic i."""
    o, a, sizes = 11, 3, [14, H, H, H, 1]
    critic, target = Ensemble(sizes, n, device), Ensemble(sizes, n, device)
    target.load_state_dict(critic.state_dict())
    actor, log_alpha = mlp([o, H, H, H, 2 * a], device), nn.Parameter(torch.zeros((), device=device))
    opts = [torch.optim.Adam(p, lr=LR, fused=True) for p in (critic.parameters(), actor.parameters(), [log_alpha])]

    def update(b: Batch) -> None:
        alpha = log_alpha.detach().exp()
        with torch.no_grad():
            na, nlp = tanh_gaussian(actor, b.next_obs, -5.0)
            y = b.reward + GAMMA * (1 - b.terminated) * (q_of(target, b.next_obs, na).min(0).values - alpha * nlp)
        q = q_of(critic, b.obs, b.action)
        loss = n * F.mse_loss(q, y.expand_as(q))
        if eta > 0:
            act = b.action.unsqueeze(0).expand(n, -1, -1).clone().requires_grad_(True)
            qa = critic(torch.cat((b.obs.unsqueeze(0).expand(n, -1, -1), act), -1))
            g = torch.autograd.grad(qa.sum(), act, create_graph=True)[0]
            g = g / (g.norm(dim=-1, keepdim=True) + 1e-10)
            loss = loss + eta * (g.sum(0).pow(2).sum(-1) - g.pow(2).sum((0, 2))).mean() / (n - 1)
        step(opts[0], loss)
        critic.requires_grad_(False)
        act, logp = tanh_gaussian(actor, b.obs, -5.0)
        step(opts[1], (alpha * logp - q_of(critic, b.obs, act).min(0).values).mean())
        critic.requires_grad_(True)
        step(opts[2], -(log_alpha * (logp.detach() - a)).mean())
        polyak(critic, target)

    return update


def qlearn_agent(name: str, device: torch.device) -> torch.nn.Module:
    if name == "iql":
        return IQL.from_spec(HOPPER, network={"hidden_sizes": (H, H)}, actor_lr_decay_steps=1_000_000).to(device)
    if name == "cql":
        return REDQ.from_spec(HOPPER, num_q=2, actor_q="min", network={"hidden_sizes": (H, H)}, actor_lr=1e-4,
                              alpha_lr=1e-4, next_value=SoftMinNextValue(2, backup_entropy=False),
                              critic_regularizer=ContinuousCQLPenalty(num_samples=10, weight=5.0)).to(device)
    if name in ("td3_bc", "td3"):
        return TD3.from_spec(HOPPER, network={"hidden_sizes": (H, H)}, bc_alpha=2.5 if name == "td3_bc" else None).to(device)
    if name == "ddpg":  # configs/agent/ddpg.yaml
        return TD3.from_spec(HOPPER, network={"hidden_sizes": (H, H)}, num_q=1, policy_delay=1,
                             next_value=SmoothedMinNextValue(GaussianActionNoise(0.0, None)),
                             target_updater=PolyakUpdate(TAU, every=1)).to(device)
    if name in ("sac_n", "edac"):  # the presets' settings at N = 10 (CORL: 200 / 50), 3x256 networks
        return REDQ.from_spec(HOPPER, num_q=10, next_value=SoftMinNextValue(10), actor_q="min", log_std_min=-5.0,
                              log_prob_epsilon=1e-6, network={"hidden_sizes": (H, H, H)},
                              critic_regularizer=EnsembleGradientDiversity(1.0) if name == "edac" else None).to(device)
    if name == "bcq_discrete":
        return DQN(MLP(4, 2, (H, H)), 2, optimizer=adam(LR), next_value=DoubleQNextValue(), loss="huber",
                   max_grad_norm=None, target_updater=PolyakUpdate(TAU),
                   imitation=ImitationFilter(0.3, 1e-2, network=MLP(4, 2, (H, H)))).to(device)
    q = MLP(4, 2, (H, H))
    return DQN(q, 2, optimizer=adam(LR), next_value=DoubleQNextValue(), loss="mse", max_grad_norm=None,
               target_updater=PolyakUpdate(TAU), regularizer=CQLPenalty(1.0)).to(device)


BARE = {"iql": bare_iql, "cql": bare_cql, "cql_discrete": bare_discrete_cql, "bcq_discrete": bare_discrete_bcq,
        "td3_bc": bare_td3_bc, "td3": functools.partial(bare_td3_bc, alpha=None),
        "ddpg": functools.partial(bare_td3_bc, alpha=None, ddpg=True), "sac_n": bare_sac_n,
        "edac": functools.partial(bare_sac_n, eta=1.0)}
DISCRETE = ("cql_discrete", "bcq_discrete")  # CartPole sizes; the others Hopper's


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", action="append", choices=list(BARE))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--updates", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    print(f"# {platform.node()} {platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, device {device}, batch {B}, {H}-{H} MLPs, {args.updates} updates x "
          f"{args.repeats} rounds (medians)")
    print("| agent | qlearn trainer upd/s | qlearn update upd/s | bare math upd/s | bare / trainer | bare / update |")
    print("|---|---|---|---|---|---|")
    for name in args.only or list(BARE):
        torch.manual_seed(0)
        data = dataset(CARTPOLE if name in DISCRETE else HOPPER, device)
        agent, trainer_agent, bare = qlearn_agent(name, device), qlearn_agent(name, device), BARE[name](device)
        batches = [data.sample(B) for _ in range(args.updates)]
        times: dict[str, list[float]] = {"trainer": [], "update": [], "bare": []}
        for fn in (lambda: [agent.update(b) for b in batches[:20]], lambda: [bare(b) for b in batches[:20]]):
            fn()  # warm-up
        for r in range(args.repeats):
            trainer = OfflineTrainer(trainer_agent, data, total_updates=(r + 1) * args.updates, batch_size=B,
                                     eval_env=None, log_every=1000, progress=False)
            trainer.updates_done = r * args.updates
            times["trainer"].append(timed(trainer.run, device))
            times["update"].append(timed(lambda: [agent.update(b) for b in batches], device))
            times["bare"].append(timed(lambda: [bare(b) for b in batches], device))
        ups = {k: args.updates / statistics.median(v) for k, v in times.items()}
        print(f"| {name} | {ups['trainer']:.1f} | {ups['update']:.1f} | {ups['bare']:.1f} | "
              f"{ups['bare'] / ups['trainer']:.2f} | {ups['bare'] / ups['update']:.2f} |", flush=True)


if __name__ == "__main__":
    main()
