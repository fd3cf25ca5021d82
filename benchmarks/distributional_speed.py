"""C51, QR-DQN, IQN and Rainbow updates (their CartPole presets) against bare PyTorch loops of the same math.
Prints; not a test.

    OMP_NUM_THREADS=1 python benchmarks/distributional_speed.py --agent c51     # c51 | qrdqn | iqn | rainbow
    python benchmarks/distributional_speed.py --agent iqn --updates 200 --device cuda

Both sides sample batch 128 uniformly from the same 10,000 random CartPole-sized transitions, with 5-step returns
(``configs/experiment/dqn_cartpole.yaml``: gamma 0.998, 256-256 MLP, Adam 2.5e-4, target copied every 50
updates), and make one update per sample:

* qlearn: ``ReplayBuffer(n_step=5).sample`` + ``DQN.update`` with the block of ``configs/experiment/<agent>_cartpole
  .yaml`` (c51: 201 atoms on [-500, 500]; qrdqn: 50 quantiles, kappa 1; iqn: N = N' = 64, K = 32, n = 64;
  rainbow: c51's block on a dueling noisy network, sigma0 0.1, the next action from the online network
  (``DoubleQNextValue``), a ``PrioritizedSampler`` (alpha 0.6, beta 0.4 -> 1) and the trainer's
  ``update_priorities`` after each update).
* bare: tensors indexed in place (n-step sums by index arithmetic), the same network built once, the loss written
  inline (the C51 projection with two ``scatter_add_``, the quantile Huber loss, IQN's cosine embedding through
  the head), the greedy next action from the target network, a target copy every 50 updates. Rainbow's bare
  loop resamples the noise of a list of the noisy layers made once, picks the next action with the online
  network, and keeps the priorities in one tensor: stratified draws by ``searchsorted`` on its cumulative sum,
  weights ``(p / min p)^-beta``, ``(loss + eps)^0.6`` written back.

Rates are medians of ``--repeats`` interleaved rounds after 5 warm-up updates.
"""

from __future__ import annotations

import argparse
import copy
import platform
import statistics

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from drq_speed import interleaved  # noqa: E402 (benchmarks/ is on sys.path when run as a script)
from qlearn.agents import DQN
from qlearn.buffers import ReplayBuffer
from qlearn.buffers.samplers import PrioritizedSampler
from qlearn.distributional import Categorical, ImplicitQuantile, QuantileRegression
from qlearn.networks.noisy import NoisyLinear
from qlearn.networks.q import build_q_network
from qlearn.optim import adam
from qlearn.targets import DoubleQNextValue
from qlearn.updaters import PolyakUpdate

SIZE, OBS, ACTIONS, N_STEP, GAMMA, BATCH, LR, TARGET_EVERY = 10_000, 4, 2, 5, 0.998, 128, 2.5e-4, 50
BLOCKS = {"c51": lambda: Categorical(201, -500.0, 500.0), "qrdqn": lambda: QuantileRegression(50, 1.0),
          "iqn": lambda: ImplicitQuantile(64, 64, 32, 64, 1.0), "rainbow": lambda: Categorical(201, -500.0, 500.0)}
ALPHA, BETA, PRIORITY_EPS, BETA_STEPS, SIGMA0 = 0.6, 0.4, 1e-6, 10_000, 0.1  # configs/buffer/prioritized.yaml, rainbow_cartpole


def data(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    obs = rng.standard_normal((SIZE, OBS)).astype(np.float32)
    terminated = rng.random(SIZE) < 0.01
    return obs, rng.integers(0, ACTIONS, SIZE), np.ones(SIZE, dtype=np.float32), terminated


def network(agent: str, device: torch.device) -> torch.nn.Module:
    torch.manual_seed(0)
    rainbow = agent == "rainbow"
    return build_q_network((OBS,), ACTIONS, hidden_sizes=(256, 256), dueling=rainbow, noisy=rainbow,
                           noisy_sigma0=SIGMA0 if rainbow else None, distributional=BLOCKS[agent]()).to(device)


def qlearn_update(agent: str, device: torch.device):  # type: ignore[no-untyped-def]
    obs, actions, rewards, terminated = data()
    rainbow = agent == "rainbow"
    sampler = PrioritizedSampler(ALPHA, BETA, BETA_STEPS, PRIORITY_EPS) if rainbow else None
    buffer = ReplayBuffer(SIZE, n_step=N_STEP, gamma=GAMMA, sampler=sampler, device=device, seed=0)
    false = np.zeros(1, dtype=bool)
    for i in range(SIZE - 1):
        buffer.add(obs[i:i + 1], actions[i:i + 1], rewards[i:i + 1], obs[i + 1:i + 2], terminated[i:i + 1], false)
    dqn = DQN(network(agent, device), ACTIONS, optimizer=adam(LR), target_updater=PolyakUpdate(1.0, TARGET_EVERY),
              gamma=GAMMA, max_grad_norm=None, distributional=BLOCKS[agent](),
              next_value=DoubleQNextValue() if rainbow else None)
    if not rainbow:
        return lambda: dqn.update(buffer.sample(BATCH))

    def update() -> None:  # the trainer's step with prioritized replay (qlearn/trainers/online.py, _train)
        batch = buffer.sample(BATCH)
        buffer.update_priorities(batch.index, dqn.update(batch)["td_error"])

    return update


def bare_update(agent: str, device: torch.device):  # type: ignore[no-untyped-def]
    obs_np, actions_np, rewards_np, terminated_np = data()
    obs, actions = torch.as_tensor(obs_np, device=device), torch.as_tensor(actions_np, device=device)
    rewards = torch.as_tensor(rewards_np, device=device)
    alive = torch.as_tensor(~terminated_np, device=device).float()
    q = network(agent, device)
    target = copy.deepcopy(q)
    opt = torch.optim.Adam(q.parameters(), lr=LR, fused=True)
    generator = torch.Generator().manual_seed(0)
    steps, powers = torch.arange(N_STEP, device=device), GAMMA ** torch.arange(N_STEP, device=device)
    support = torch.linspace(-500.0, 500.0, 201, device=device)
    fractions = (2 * torch.arange(50, device=device) + 1) / 100.0
    counter = [0]
    noisy = [m for net in (q, target) for m in net.modules() if isinstance(m, NoisyLinear)]
    priority = torch.zeros(SIZE, dtype=torch.float64, device=device)  # p^alpha; 0 where no n-step window starts
    priority[:SIZE - N_STEP - 1] = 1.0  # new transitions get the largest priority seen (1.0 at first)
    state = {"max": 1.0, "draws": 0}
    arange = torch.arange(BATCH, device=device)

    def prioritized_draw() -> tuple[Tensor, Tensor]:
        """Stratified proportional indices [B] and their importance weights [B] (Schaul et al., 2016)."""
        cumulative = priority.cumsum(0)
        u = (arange + torch.rand(BATCH, generator=generator).to(device)) * (cumulative[-1] / BATCH)
        idx = torch.searchsorted(cumulative, u, right=True).clamp_(max=SIZE - N_STEP - 2)
        beta = BETA + (1.0 - BETA) * min(1.0, state["draws"] / BETA_STEPS)
        state["draws"] += 1
        p = priority[idx]
        return idx, ((p / p.min()) ** -beta).float()

    def encode(net: torch.nn.Module, x: Tensor) -> Tensor:
        return net.encoder(x)

    def quantile_loss(pred: Tensor, y: Tensor, taus: Tensor) -> Tensor:  # [B, N], [B, M], [B, N] or [N]
        u = y[:, None, :] - pred[:, :, None]
        huber = F.huber_loss(pred[:, :, None].expand_as(u), y[:, None, :].expand_as(u), reduction="none")  # kappa 1
        return ((taus.expand(pred.shape)[..., None] - (u.detach() < 0).float()).abs() * huber).mean(2).sum(1).mean()

    def update() -> None:
        # windows of N_STEP transitions that do not cross a terminal (the data has few; a done stops the sum)
        if agent == "rainbow":
            for layer in noisy:
                layer.reset_noise()
            idx, weight = prioritized_draw()
        else:
            idx = torch.randint(0, SIZE - N_STEP - 1, (BATCH,), generator=generator).to(device)
        window = idx[:, None] + steps
        live = torch.cumprod(torch.cat([torch.ones(BATCH, 1, device=device), alive[window[:, :-1]]], 1), 1)
        ret = (rewards[window] * powers * live).sum(1)
        scale = GAMMA ** N_STEP * live[:, -1] * alive[window[:, -1]]
        x, a, x_next = obs[idx], actions[idx], obs[idx + N_STEP]
        with torch.no_grad():
            if agent in ("c51", "rainbow"):
                logits = target.head.logits(encode(target, x_next))  # [B, A, K]
                probs = logits.softmax(-1)
                if agent == "c51":
                    best = (probs * support).sum(-1).argmax(-1)
                else:  # double: the online network's expected values pick the action
                    best = (q.head.logits(encode(q, x_next)).softmax(-1) * support).sum(-1).argmax(-1)
                p = probs[torch.arange(BATCH), best]
                tz = (ret[:, None] + scale[:, None] * support).clamp(-500.0, 500.0)
                b = (tz + 500.0) / 5.0
                low, up = b.floor(), b.ceil()
                m = torch.zeros_like(p)
                m.scatter_add_(1, low.long(), p * (up - b + (low == up).float()))
                m.scatter_add_(1, up.long(), p * (b - low))
            elif agent == "qrdqn":
                z = target.head.quantiles(encode(target, x_next))  # [B, A, N]
                best = z.mean(-1).argmax(-1)
                y = ret[:, None] + scale[:, None] * z[torch.arange(BATCH), best]
            else:
                features = encode(target, x_next)
                head = target.head
                taus_k = torch.rand(BATCH, 32, device=device)
                emb = head.embedding(torch.cos(taus_k[..., None] * head.frequencies))
                best = head.quantiles(features[:, None] * emb).squeeze(-1).mean(1).argmax(-1)
                taus_p = torch.rand(BATCH, 64, device=device)
                emb = head.embedding(torch.cos(taus_p[..., None] * head.frequencies))
                z = head.quantiles(features[:, None] * emb).squeeze(-1)  # [B, N', A]
                y = ret[:, None] + scale[:, None] * z[torch.arange(BATCH), :, best]
        if agent == "c51":
            log_p = q.head.logits(encode(q, x)).log_softmax(-1)[torch.arange(BATCH), a]
            loss = -(m * log_p).sum(-1).mean()
        elif agent == "rainbow":
            log_p = q.head.logits(encode(q, x)).log_softmax(-1)[arange, a]
            per_sample = -(m * log_p).sum(-1)
            loss = (per_sample * weight).mean()
        elif agent == "qrdqn":
            loss = quantile_loss(q.head.quantiles(encode(q, x))[torch.arange(BATCH), a], y, fractions)
        else:
            taus = torch.rand(BATCH, 64, device=device)
            emb = q.head.embedding(torch.cos(taus[..., None] * q.head.frequencies))
            z = q.head.quantiles(encode(q, x)[:, None] * emb).squeeze(-1)  # [B, N, A]
            loss = quantile_loss(z[torch.arange(BATCH), :, a], y, taus)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if agent == "rainbow":
            new = (per_sample.detach().double() + PRIORITY_EPS) ** ALPHA
            priority[idx] = new
            state["max"] = max(state["max"], float(new.max()))  # what new writes would get, as the sampler keeps
        counter[0] += 1
        if counter[0] % TARGET_EVERY == 0:
            target.load_state_dict(q.state_dict())

    return update


def rates(agent: str, updates: int, repeats: int, device: torch.device) -> dict[str, list[float]]:
    """Updates per second of each side, ``repeats`` interleaved rounds of ``updates`` after 5 warm-up updates."""
    sides = {"qlearn": qlearn_update(agent, device), "bare": bare_update(agent, device)}
    return interleaved(sides, updates, repeats, device)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--agent", choices=list(BLOCKS), default="c51")
    parser.add_argument("--updates", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    r = rates(args.agent, args.updates, args.repeats, torch.device(args.device))
    ql, bare = statistics.median(r["qlearn"]), statistics.median(r["bare"])
    print(f"# {platform.node()}, torch {torch.__version__}, {torch.get_num_threads()} threads, {args.device}, "
          f"{args.agent}, {args.updates} updates x {args.repeats} rounds")
    print(f"qlearn {ql:.1f} updates/s ({1e3 / ql:.2f} ms), bare {bare:.1f} updates/s ({1e3 / bare:.2f} ms), "
          f"time vs bare {bare / ql:.2f}x")


if __name__ == "__main__":
    main()
