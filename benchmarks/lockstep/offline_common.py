"""What the offline pairs share: import stubs for CORL's scripts, ensemble weight copies, batches, parameter lists.

CORL's single-file scripts import ``d4rl``, ``wandb`` and ``gym`` at the top but use them only in their data
loading, logging and evaluation, never in the update a pair runs. :func:`stub_corl_imports` puts placeholder
modules into ``sys.modules`` for those that are not installed, so the scripts import without installing D4RL
(mujoco-py) or wandb; a stub raises if the update ever touches it.
"""

from __future__ import annotations

import sys
import types
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from common import Row, adam_kernel, both_kernels, default_dtype

from qlearn.networks.ensemble import EnsembleMLP


class _Unused(types.ModuleType):
    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        raise RuntimeError(f"lockstep stub: {self.__name__}.{name} was used; the pair's update should not need it")


def stub_corl_imports(names: Sequence[str] = ("d4rl", "wandb", "gym")) -> None:
    """Placeholder modules for CORL's data/logging imports that are not installed (only imported, not used
    by the update being compared)."""
    for name in names:
        if name in sys.modules:
            continue
        try:
            __import__(name)
        except ImportError:
            sys.modules[name] = _Unused(name)


@torch.no_grad()
def load_members(ensemble: EnsembleMLP, members: Sequence[Sequence[nn.Linear]]) -> None:
    """Copy member ``n``'s ``nn.Linear`` layers (input to output) into ``ensemble``'s stacked weights."""
    stacked = ensemble.linear_layers()
    for n, linears in enumerate(members):
        if len(linears) != len(stacked):
            raise ValueError(f"member {n}: {len(linears)} layers vs {len(stacked)} in the ensemble")
        for layer, linear in zip(stacked, linears):
            layer.load_member(n, linear)


def member_pairs(name: str, ensemble: EnsembleMLP, members: Sequence[Sequence[nn.Linear]]) -> list[tuple[str, Tensor, Tensor]]:
    """``(name, qlearn, reference)`` for every weight and bias of every member, weights in ``nn.Linear`` layout."""
    pairs = []
    for n, linears in enumerate(members):
        for i, (layer, linear) in enumerate(zip(ensemble.linear_layers(), linears)):
            pairs.append((f"{name}[{n}].{i}.weight", layer.weight[n].T, linear.weight))
            pairs.append((f"{name}[{n}].{i}.bias", layer.bias[n, 0], linear.bias))
    return pairs


def parameter_pairs(name: str, ours: nn.Module, theirs: Iterable[Tensor]) -> list[tuple[str, Tensor, Tensor]]:
    """``(name.i, qlearn, reference)`` over two modules' parameters in registration order (shapes checked later)."""
    mine, other = list(ours.parameters()), list(theirs)
    if len(mine) != len(other):
        raise ValueError(f"{name}: {len(mine)} parameters vs {len(other)}")
    return [(f"{name}.{i}", a, b) for i, (a, b) in enumerate(zip(mine, other))]


def continuous_batches(updates: int, batch_size: int, obs_dim: int, action_dim: int, seed: int = 0,
                       terminal_rate: float = 0.05) -> list[dict[str, Tensor]]:
    """Random transitions shaped like a D4RL locomotion set (actions in [-1, 1], some at the bounds)."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(updates):
        out.append({
            "obs": torch.randn(batch_size, obs_dim, generator=g),
            "action": (1.2 * (2 * torch.rand(batch_size, action_dim, generator=g) - 1)).clamp(-1, 1),
            "reward": torch.randn(batch_size, generator=g),
            "next_obs": torch.randn(batch_size, obs_dim, generator=g),
            "terminated": (torch.rand(batch_size, generator=g) < terminal_rate).to(torch.get_default_dtype()),
        })
    return out


def offline_row(pair: str, updates: int, compare: Callable[[], tuple[float, str]], differences: list[str],
                float64_note: str = "") -> Row:
    """The table row: float32 with one Adam kernel and with qlearn's fused Adam, plus the same comparison in
    float64 (one kernel) in the note. Where an ensemble runs as one batched matmul against the reference's
    separate layers, float32 results are not bit-identical, and Adam's division by ``sqrt(v) + eps`` amplifies
    the rounding of near-zero gradients; float64 shrinks that rounding by ~1e9, so a small float64 number with a
    large float32 one says the math agrees and the float32 gap is rounding."""
    (worst, where), fused = both_kernels(compare)
    with adam_kernel(fused=False), default_dtype(torch.float64):
        worst64, where64 = compare()
    note = f"float64, same kernel: {worst64:.1e} ({where64}){'; ' + float64_note if float64_note else ''}"
    return Row(pair, updates, worst, where, fused, differences, note, float64_rel_diff=worst64)
