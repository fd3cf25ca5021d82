"""DrQ(eps)'s update (Atari 100k preset) against a bare PyTorch loop of the same math. Prints; not a test.

    OMP_NUM_THREADS=1 python benchmarks/drq_speed.py            # ~1 minute on cpu2
    python benchmarks/drq_speed.py --updates 200 --device cuda

Both sides sample batch 32 from the same 2,000 random 84x84 frames (one episode, no done inside a window) and
run one update per sample: 4-frame stacks rebuilt from single frames, 10-step returns folded at sampling,
random shift (pad 4) + intensity on ``obs`` and ``next_obs`` independently, the Double DQN target through one
forward pass (the target is synced after every update), Huber loss, Adam (lr 1e-4, eps 1.5e-4).

* qlearn: ``ReplayBuffer(frame_stack=4, n_step=10).sample`` + ``DQN.update`` built as
  ``configs/experiment/drq_eps_atari100k.yaml`` builds it (dueling Nature CNN, SAME padding, Xavier init).
* bare: a uint8 frame tensor, index arithmetic for stacks and n-step sums, the same network and optimizer,
  the update written inline, no target copy (a target synced every update is the online net).

Rates are medians of ``--repeats`` interleaved rounds (benchmarks/turns.py's scheme is not needed: both sides
run in this process one round after the other).
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from qlearn.agents import DQN
from qlearn.augment import Compose, RandomIntensity, RandomShift
from qlearn.buffers import ReplayBuffer
from qlearn.networks.q import build_q_network
from qlearn.optim import adam
from qlearn.targets import DoubleQNextValue
from qlearn.updaters import PolyakUpdate

FRAMES, STACK, N_STEP, GAMMA, BATCH, ACTIONS = 2_000, 4, 10, 0.99, 32, 18
LR, ADAM_EPS, PAD, INTENSITY = 1e-4, 1.5e-4, 4, 0.05  # DrQ_eps.gin, via configs/experiment/drq_eps_atari100k.yaml


def network(device: torch.device) -> torch.nn.Module:
    torch.manual_seed(0)
    return build_q_network((STACK, 84, 84), ACTIONS, kind="nature_cnn", dueling=True, padding="same",
                           init="xavier_uniform").to(device)


def data(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    frames = rng.integers(0, 256, (FRAMES, 84, 84), dtype=np.uint8)
    return frames, rng.integers(0, ACTIONS, FRAMES), rng.choice([0.0, 1.0], FRAMES, p=[0.9, 0.1]).astype(np.float32)


def qlearn_update(device: torch.device):  # type: ignore[no-untyped-def]
    frames, actions, rewards = data()
    buffer = ReplayBuffer(FRAMES, n_step=N_STEP, gamma=GAMMA, frame_stack=STACK, device=device, seed=0)
    stacks = [np.stack([frames[max(i - k, 0)] for k in range(STACK - 1, -1, -1)]) for i in range(FRAMES)]
    false = np.zeros(1, dtype=bool)
    for i in range(FRAMES - 1):
        buffer.add(stacks[i][None], actions[i:i + 1], rewards[i:i + 1], stacks[i + 1][None], false, false)
    agent = DQN(network(device), ACTIONS, optimizer=adam(LR, ADAM_EPS), next_value=DoubleQNextValue(),
                target_updater=PolyakUpdate(1.0, every=1), gamma=GAMMA, loss="huber", max_grad_norm=None,
                augmentation=Compose([RandomShift(PAD), RandomIntensity(INTENSITY)]), seed=0)
    return lambda: agent.update(buffer.sample(BATCH))


def bare_update(device: torch.device):  # type: ignore[no-untyped-def]
    frames_np, actions_np, rewards_np = data()
    frames = torch.as_tensor(frames_np, device=device)
    actions, rewards = torch.as_tensor(actions_np, device=device), torch.as_tensor(rewards_np, device=device)
    q = network(device)
    opt = torch.optim.Adam(q.parameters(), lr=LR, eps=ADAM_EPS, fused=True)
    generator = torch.Generator().manual_seed(0)
    offsets, powers = torch.arange(STACK, device=device), GAMMA ** torch.arange(N_STEP, device=device)
    grid = torch.arange(84, device=device)

    def stack(idx: Tensor) -> Tensor:  # [B] last-frame indices -> [B, 4, 84, 84], repeating frame 0 at the start
        return frames[(idx[:, None] - STACK + 1 + offsets).clamp_(min=0)]

    def augment(x: Tensor) -> Tensor:  # shift by d in [-4, 4] with edge replication, then intensity
        d = torch.randint(-PAD, PAD + 1, (BATCH, 2), generator=generator).to(device)
        rows, cols = (grid + d[:, :1]).clamp_(0, 83), (grid + d[:, 1:]).clamp_(0, 83)
        pix = (rows[:, :, None] * 84 + cols[:, None, :]).view(BATCH, 1, -1).expand(BATCH, STACK, -1)
        x = x.reshape(BATCH, STACK, -1).gather(2, pix).view(BATCH, STACK, 84, 84).float() / 255.0
        noise = torch.randn(BATCH, generator=generator).clamp_(-2, 2).to(device)
        return x * (1.0 + INTENSITY * noise).view(-1, 1, 1, 1)

    def update() -> None:
        idx = torch.randint(0, FRAMES - N_STEP - 1, (BATCH,), generator=generator).to(device)
        obs, next_obs = augment(stack(idx)), augment(stack(idx + N_STEP))
        ret = (rewards[idx[:, None] + torch.arange(N_STEP, device=device)] * powers).sum(1)
        with torch.no_grad():
            y = ret + GAMMA**N_STEP * q(next_obs).max(1).values  # Double DQN with the target = the online net
        q_a = q(obs).gather(1, actions[idx].unsqueeze(1)).squeeze(1)
        loss = F.smooth_l1_loss(q_a, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return update


def timed(fn, n: int, device: torch.device) -> float:  # type: ignore[no-untyped-def]
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(n):
        fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return n / (time.perf_counter() - start)


def rates(updates: int, repeats: int, device: torch.device) -> dict[str, list[float]]:
    """Updates per second of each side, ``repeats`` interleaved rounds of ``updates`` after 5 warm-up updates."""
    return interleaved({"qlearn": qlearn_update(device), "bare": bare_update(device)}, updates, repeats, device)


def interleaved(sides: dict, updates: int, repeats: int, device: torch.device) -> dict[str, list[float]]:  # type: ignore[type-arg]
    """Rates of each side's update function: 5 warm-up calls, then ``repeats`` rounds of ``updates``, in turns."""
    for fn in sides.values():
        timed(fn, 5, device)
    out: dict[str, list[float]] = {k: [] for k in sides}
    for _ in range(repeats):
        for k, fn in sides.items():
            out[k].append(timed(fn, updates, device))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--updates", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    r = rates(args.updates, args.repeats, torch.device(args.device))
    ql, bare = statistics.median(r["qlearn"]), statistics.median(r["bare"])
    print(f"# {platform.node()}, torch {torch.__version__}, {torch.get_num_threads()} threads, {args.device}, "
          f"{args.updates} updates x {args.repeats} rounds")
    print(f"qlearn {ql:.2f} updates/s ({1e3 / ql:.1f} ms), bare {bare:.2f} updates/s ({1e3 / bare:.1f} ms), "
          f"time vs bare {bare / ql:.2f}x")


if __name__ == "__main__":
    main()
