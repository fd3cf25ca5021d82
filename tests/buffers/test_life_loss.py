"""A terminal for learning only (a lost Atari life): bootstrapping and n-step windows stop, streams run on."""

from __future__ import annotations

import numpy as np
import torch

from qlearn.buffers import ReplayBuffer

F, T = np.array([False]), np.array([True])


def many(buffer: ReplayBuffer, draws: int = 100) -> list:
    """Many small batches (a batch may not exceed the stored transitions)."""
    return [buffer.sample(4) for _ in range(draws)]


def test_nstep_window_stops_at_a_life_loss_but_the_stream_continues() -> None:
    buffer = ReplayBuffer(100, n_step=3, gamma=0.5, seed=0)
    for t in range(8):  # obs = t, reward = t + 1; a life is lost on the transition from t=2
        lost = t == 2
        buffer.add(np.array([[t]], np.float32), np.array([0]), np.array([t + 1.0]), np.array([[t + 1]], np.float32),
                   T if lost else F, F, episode_end=F)
    by_start = {int(o): (float(r), float(d), float(n), float(g)) for b in many(buffer) for o, r, d, n, g in
                zip(b.obs[:, 0], b.reward, b.terminated, b.next_obs[:, 0], b.discount)}
    assert by_start[1] == (2 + 0.5 * 3, 1.0, 3.0, 0.25)  # cut after the life loss, no bootstrap
    assert by_start[2] == (3.0, 1.0, 3.0, 0.5)
    assert by_start[3] == (4 + 0.5 * 5 + 0.25 * 6, 0.0, 6.0, 0.125)  # the next life's window runs on


def test_frame_stacks_run_on_across_a_life_loss() -> None:
    buffer = ReplayBuffer(100, frame_stack=2, seed=0)
    frames = [np.full((3, 3), t, np.uint8) for t in range(7)]
    stack = np.stack([frames[0], frames[0]])
    for t in range(1, 7):
        nxt = np.stack([stack[1], frames[t]])
        lost = t == 3
        buffer.add(stack[None], np.array([0]), np.array([0.0]), nxt[None], T if lost else F, F, episode_end=F)
        stack = nxt
    batches = many(buffer)
    obs = torch.cat([b.obs[:, :, 0, 0] for b in batches])
    terminated = torch.cat([b.terminated for b in batches])
    # the stack after the life loss holds the frame before it, not a padded reset frame
    assert any(torch.equal(o, torch.tensor([2, 3], dtype=torch.uint8)) for o in obs)
    assert any(torch.equal(o, torch.tensor([3, 4], dtype=torch.uint8)) for o in obs)
    for o, d in zip(obs, terminated):
        assert bool(d) == torch.equal(o, torch.tensor([1, 2], dtype=torch.uint8))  # only the t=3 transition
