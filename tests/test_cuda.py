"""CUDA paths: buffer storage on the GPU, a DQN update there, and a short training run. Skipped without a GPU."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from qlearn.agents import DQN
from qlearn.buffers import ReplayBuffer
from qlearn.envs import make_env
from qlearn.exploration import EpsilonGreedy, LinearSchedule
from qlearn.trainers import OnlineTrainer
from qlearn.types import EnvSpec
from qlearn.utils import resolve_device

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def test_auto_device_picks_cuda() -> None:
    assert resolve_device("auto").type == "cuda"


def test_frame_buffer_on_cuda_returns_cuda_batches() -> None:
    buffer = ReplayBuffer(200, frame_stack=4, device="cuda", seed=0)
    frames = [np.full((84, 84), t, dtype=np.uint8) for t in range(60)]
    stack = [frames[0]] * 4  # an episode start repeats the reset frame, as FrameStackObservation does
    for t in range(1, 60):
        next_stack = stack[1:] + [frames[t]]
        buffer.add(np.stack(stack)[None], np.array([1]), np.array([0.0]), np.stack(next_stack)[None],
                   np.array([False]), np.array([False]))
        stack = next_stack
    batch = buffer.sample(8)
    assert batch.obs.device.type == "cuda" and batch.obs.dtype == torch.uint8
    # each sampled stack is 4 consecutive frames (clamped at the episode start) and next_obs is one frame on
    last = batch.obs[:, -1, 0, 0].long()
    assert torch.equal(batch.next_obs[:, -1, 0, 0].long(), last + 1)
    assert torch.equal(batch.obs[:, 0, 0, 0].long(), (last - 3).clamp(min=0))


def test_dqn_trains_on_cuda() -> None:
    env = make_env("CartPole-v1", num_envs=2, seed=0)
    agent = DQN.from_spec(EnvSpec.from_env(env)).to("cuda")
    trainer = OnlineTrainer(agent, env, ReplayBuffer(2000, device="cuda", seed=0),
                            exploration=EpsilonGreedy(LinearSchedule(1.0, 0.1, 500), num_actions=2, seed=0),
                            total_steps=1000, learning_starts=200, batch_size=32, eval_every=0, progress=False)
    trainer.run()
    assert agent.num_updates == 800
    assert all(p.device.type == "cuda" for p in agent.parameters())
    assert all(torch.isfinite(p).all() for p in agent.parameters())
