"""Replay buffers: `ReplayBuffer` with a `UniformSampler` or a `PrioritizedSampler` (over a `SumTree`)."""

from __future__ import annotations

from qlearn.buffers.replay import ReplayBuffer, ReplayBufferError
from qlearn.buffers.samplers import PrioritizedSampler, UniformSampler
from qlearn.buffers.sumtree import SumTree

__all__ = ["PrioritizedSampler", "ReplayBuffer", "ReplayBufferError", "SumTree", "UniformSampler"]
