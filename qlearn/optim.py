"""Optimizer factories: what agents call with their parameters to build an optimizer."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from torch import nn

OptimizerFactory = Callable[[Iterable[nn.Parameter]], torch.optim.Optimizer]


def adam(lr: float, eps: float = 1e-8) -> OptimizerFactory:
    """A factory of ``torch.optim.Adam(params, lr, eps)`` with the fused kernel (Kingma & Ba, 2015, Alg. 1).

    The fused implementation does the same update in one kernel per device; on a CPU it is several
    times faster than PyTorch's default per-tensor loop (4.5 vs 0.4 ms per step for a 10-critic
    256-256 ensemble on one thread, ``benchmarks/README.md``), which matters at 20 updates per env step.
    """

    def build(params: Iterable[nn.Parameter]) -> torch.optim.Optimizer:
        return torch.optim.Adam(params, lr=lr, eps=eps, fused=True)

    return build
