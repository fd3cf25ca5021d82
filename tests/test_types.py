"""Batch and EnvSpec: shapes, device moves, and specs read from Gymnasium spaces."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from qlearn.types import Batch, EnvSpec


def make_batch(**extra: torch.Tensor) -> Batch:
    return Batch(obs=torch.zeros(3, 4), action=torch.tensor([0, 1, 1]), reward=torch.tensor([1.0, 0.0, -1.0]),
                 next_obs=torch.ones(3, 4), terminated=torch.tensor([0.0, 1.0, 0.0]), **extra)


def test_batch_length_and_to_keeps_none_fields() -> None:
    batch = make_batch(weight=torch.full((3,), 0.5))
    moved = batch.to("cpu")
    assert len(moved) == 3
    assert moved.discount is None and moved.index is None
    assert torch.equal(moved.weight, torch.full((3,), 0.5))
    assert torch.equal(moved.terminated, batch.terminated)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_batch_to_cuda_moves_every_tensor() -> None:
    moved = make_batch(discount=torch.ones(3)).to("cuda")
    assert all(t.device.type == "cuda" for t in (moved.obs, moved.action, moved.reward, moved.discount))
    assert moved.weight is None


def test_batch_is_frozen() -> None:
    with pytest.raises(AttributeError):
        make_batch().reward = torch.zeros(3)  # type: ignore[misc]


def test_env_spec_from_discrete_and_box_spaces() -> None:
    obs = gym.spaces.Box(-1.0, 1.0, shape=(4,), dtype=np.float32)
    discrete = EnvSpec.from_spaces(obs, gym.spaces.Discrete(3))
    assert discrete.discrete and discrete.num_actions == 3 and discrete.obs_shape == (4,)
    box = EnvSpec.from_spaces(obs, gym.spaces.Box(np.array([-2.0, 0.0]), np.array([2.0, 1.0]), dtype=np.float32))
    assert not box.discrete and box.action_shape == (2,)
    assert box.action_low == (-2.0, 0.0) and box.action_high == (2.0, 1.0)
    with pytest.raises(TypeError, match="Box observation"):
        EnvSpec.from_spaces(gym.spaces.Discrete(5), gym.spaces.Discrete(2))
