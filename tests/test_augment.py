"""DrQ augmentations: every RandomShift output is one integer shift of the edge-padded input (checked by brute force
over all (2p+1)^2 crops), and DQN applies the augmentation in its update from a generator it checkpoints."""

from __future__ import annotations

import io

import pytest
import torch
import torch.nn.functional as F

from qlearn.agents import DQN
from qlearn.augment import Compose, RandomIntensity, RandomShift
from qlearn.types import Batch, EnvSpec

ATARI = EnvSpec((4, 84, 84), "uint8", (), num_actions=6)


def frames(batch: int = 8, size: int = 12, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (batch, 3, size, size), generator=g, dtype=torch.uint8)  # [B, C, H, W]


def crops_of_padded(x: torch.Tensor, pad: int) -> dict[tuple[int, int], torch.Tensor]:
    """Every crop of ``x`` [C, H, W] padded with edge replication (torch's ReplicationPad2d): shift -> [C, H, W]."""
    h, w = x.shape[-2:]
    padded = F.pad(x[None].float(), (pad,) * 4, mode="replicate")[0]  # [C, H + 2p, W + 2p]
    return {(dy, dx): padded[:, dy + pad : dy + pad + h, dx + pad : dx + pad + w]
            for dy in range(-pad, pad + 1) for dx in range(-pad, pad + 1)}


def matching_shifts(x: torch.Tensor, out: torch.Tensor, pad: int) -> list[tuple[int, int]]:
    return [s for s, crop in crops_of_padded(x, pad).items() if torch.equal(crop, out.float())]


@pytest.mark.parametrize("pad", [1, 4])
def test_each_output_is_an_integer_shift_of_the_edge_padded_input(pad: int) -> None:
    x = frames(batch=64)
    out = RandomShift(pad)(x, torch.Generator().manual_seed(1))
    assert out.shape == x.shape and out.dtype == torch.uint8
    found = set()
    for i in range(len(x)):
        shifts = matching_shifts(x[i], out[i], pad)
        assert shifts, f"sample {i} is no crop of the padded frame"
        found.update(shifts)
    assert {dy for dy, _ in found} == set(range(-pad, pad + 1))  # both ends of [-pad, pad] are drawn
    assert {dx for _, dx in found} == set(range(-pad, pad + 1))


def test_shifts_are_drawn_per_sample_and_shared_by_the_channels() -> None:
    x = frames(batch=32)
    out = RandomShift(4)(x, torch.Generator().manual_seed(2))
    shifts = [matching_shifts(x[i], out[i], 4) for i in range(len(x))]
    assert len({s[0] for s in shifts}) > 10  # different shifts across the batch
    same = frames(batch=1).expand(16, -1, -1, -1)  # one image 16 times: outputs still differ
    out = RandomShift(4)(same, torch.Generator().manual_seed(3))
    assert len({tuple(o.flatten().tolist()) for o in out}) > 5


def test_pad_zero_changes_nothing_and_a_seed_fixes_the_draws() -> None:
    x = frames()
    assert torch.equal(RandomShift(0)(x, torch.Generator().manual_seed(0)), x)
    a = RandomShift(4)(x, torch.Generator().manual_seed(5))
    b = RandomShift(4)(x, torch.Generator().manual_seed(5))
    c = RandomShift(4)(x, torch.Generator().manual_seed(6))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert torch.equal(RandomShift(4)(x.float(), torch.Generator().manual_seed(5)), a.float())  # dtype-agnostic


def test_intensity_scales_each_sample_by_one_clipped_factor_on_unit_pixels() -> None:
    x = frames(batch=16)
    out = RandomIntensity(0.05)(x, torch.Generator().manual_seed(0))
    assert out.dtype == torch.float32
    unit = x.float() / 255.0
    factor = out.flatten(1)[:, 0] / unit.flatten(1)[:, 0]  # [B]
    torch.testing.assert_close(out, unit * factor.view(-1, 1, 1, 1))
    assert bool(((factor >= 0.9 - 1e-6) & (factor <= 1.1 + 1e-6)).all()) and factor.std() > 0.01
    noise = torch.randn(16, generator=torch.Generator().manual_seed(0)).clamp(-2, 2)
    torch.testing.assert_close(factor, 1 + 0.05 * noise)


def atari_batch(seed: int = 0, batch: int = 4) -> Batch:
    g = torch.Generator().manual_seed(seed)
    obs = torch.randint(0, 256, (batch, 4, 84, 84), generator=g, dtype=torch.uint8)
    return Batch(obs=obs, action=torch.randint(0, 6, (batch,), generator=g), reward=torch.ones(batch),
                 next_obs=torch.roll(obs, 1, dims=0), terminated=torch.zeros(batch))


class Recording:
    """Wraps an augmentation and records what it was given and returned."""

    def __init__(self, aug: RandomShift) -> None:
        self.aug, self.calls = aug, []

    def __call__(self, obs: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        out = self.aug(obs, generator)
        self.calls.append((obs, out))
        return out


def test_dqn_augments_obs_and_next_obs_independently_in_update() -> None:
    torch.manual_seed(0)
    aug = Recording(RandomShift(4))
    agent = DQN.from_spec(ATARI, network={"kind": "nature_cnn"}, augmentation=aug, seed=3)
    batch = atari_batch()
    agent.update(batch)
    (seen_obs, obs_out), (seen_next, next_out) = aug.calls
    assert seen_obs is batch.obs and seen_next is batch.next_obs
    shifts_obs = [matching_shifts(batch.obs[i], obs_out[i], 4) for i in range(4)]
    shifts_next = [matching_shifts(batch.next_obs[i], next_out[i], 4) for i in range(4)]
    assert all(shifts_obs) and all(shifts_next) and shifts_obs != shifts_next  # two independent draws


def test_dqn_without_augmentation_is_unchanged_and_the_generator_is_checkpointed() -> None:
    torch.manual_seed(0)
    plain = DQN.from_spec(ATARI, network={"kind": "nature_cnn"})
    assert plain.augmentation_generator is None and "augmentation_generator" not in plain.get_extra_state()
    torch.manual_seed(0)
    agent = DQN.from_spec(ATARI, network={"kind": "nature_cnn"}, augmentation=Compose([RandomShift(4), RandomIntensity()]))
    agent.update(atari_batch(1))
    saved = io.BytesIO()
    torch.save(agent.state_dict(), saved)
    saved.seek(0)
    clone = DQN.from_spec(ATARI, network={"kind": "nature_cnn"}, augmentation=Compose([RandomShift(4), RandomIntensity()]),
                          seed=99)
    clone.load_state_dict(torch.load(saved, weights_only=True))
    batch = atari_batch(2)
    agent.update(batch)
    clone.update(batch)  # same weights, same generator state: the same augmented batch and step
    for a, b in zip(agent.parameters(), clone.parameters()):
        assert torch.equal(a, b)
