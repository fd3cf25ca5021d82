"""DroQ (qlearn preset ``droq_mujoco``: N=2, M=2, G=20, dropout + LayerNorm critics) against the DroQ authors' code,
on Hopper-v5's shapes.

The preset's per-env dropout rates are the DroQ README's for its "REDQ original codebase"
(``OriginalREDQCodebase/``: the REDQ code with ``target_drop_rate`` and ``layer_norm`` in its ``Mlp``, Linear ->
Dropout -> LayerNorm -> ReLU), so that is the code this pair runs, from the pinned snapshot, exactly as
``redq_authors.py`` runs the REDQ code (same batches, subsets and normals). Dropout masks come from one tape: each
side's ``nn.Dropout`` modules are patched to multiply by the mask of (update, online/target, member, layer,
occurrence), so a member's units drop alike whether its layer runs alone (the code's per-member nets) or stacked
with the others (qlearn's ensemble).

    python benchmarks/lockstep/droq_authors.py [--updates 200] [overrides...]
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
import redq_authors  # noqa: E402
from actor_critic import rounding_floor  # noqa: E402
from qlearn.networks.ensemble import EnsembleLayerNorm  # noqa: E402
from common import HEADER, Row, adam_kernel, both_kernels, snapshot  # noqa: E402

PRESET = ["experiment=droq_mujoco"]
SWITCHES = redq_authors.SWITCHES
DROPOUT = 0.0001  # the preset's (and the DroQ README's) Hopper value
DIFFERENCES = list(redq_authors.DIFFERENCES[:3])


def droq_agent() -> Any:
    # 'Hopper-v2': the only Hopper its MBPO target-entropy table has (-1, as the preset's)
    return redq_authors.authors_agent(snapshot("DroQ") / "OriginalREDQCodebase", env_name="Hopper-v2", num_q=2,
                                      target_drop_rate=DROPOUT, layer_norm=True)


class DropoutTape:
    """Dropout masks shared by both sides, keyed by (update, online/target, member, layer, occurrence)."""

    def __init__(self, p: float, seed: int = 0) -> None:
        self.p, self.seed = p, seed
        self.update, self.subset = -1, [0]
        self.owners: dict[int, tuple[int, int, int | None]] = {}  # id(Dropout) -> (kind, layer, member or None)
        self.counts: dict[tuple[int, int, int], int] = {}
        self.ln_pairs: list[tuple[str, Tensor, Tensor]] = []

    def attach(self, agent: Any, ref: Any) -> None:
        """Register both sides' Dropout modules and copy the code's LayerNorm affines into qlearn's ensemble."""
        for kind, ensemble, nets in ((0, agent.critic, ref.q_net_list), (1, agent.critic_target, ref.q_target_net_list)):
            for layer, module in enumerate(m for m in ensemble.net if isinstance(m, nn.Dropout)):
                self.owners[id(module)] = (kind, layer, None)
            norms = [m for m in ensemble.net if isinstance(m, EnsembleLayerNorm)]
            for member, net in enumerate(nets):
                for layer, module in enumerate(m for m in net.modules() if isinstance(m, nn.Dropout)):
                    self.owners[id(module)] = (kind, layer, member)
                for layer, (ours, theirs) in enumerate(zip(norms, [m for m in net.modules()
                                                                    if isinstance(m, nn.LayerNorm)], strict=True)):
                    with torch.no_grad():
                        ours.weight[member, 0].copy_(theirs.weight)
                        ours.bias[member, 0].copy_(theirs.bias)
                    name = f"{'critic_target' if kind else 'critic'}[{member}].norm{layer}"
                    self.ln_pairs += [(f"{name}.weight", ours.weight[member, 0], theirs.weight),
                                      (f"{name}.bias", ours.bias[member, 0], theirs.bias)]

    def layer_norm_pairs(self) -> list[tuple[str, Tensor, Tensor]]:
        return self.ln_pairs

    def new_update(self, update: int, subset: list[int]) -> None:
        """Called at update ``update``'s subset draw (both sides draw it first thing in an update)."""
        self.update = update
        self.subset = list(subset)
        self.counts.clear()

    def mask(self, kind: int, member: int, layer: int, shape: torch.Size, dtype: torch.dtype) -> Tensor:
        key = (kind, member, layer)
        occurrence = self.counts.get(key, 0)
        self.counts[key] = occurrence + 1
        seed = ((((self.seed * 100003 + self.update) * 7 + kind) * 101 + member) * 11 + layer) * 13 + occurrence
        g = torch.Generator().manual_seed(seed)
        keep = torch.rand(shape, generator=g, dtype=torch.float32) >= self.p  # the same stream under any default dtype
        return keep.to(dtype) / (1.0 - self.p)

    @contextlib.contextmanager
    def patch(self) -> Iterator[None]:
        original = nn.Dropout.forward
        tape = self

        def forward(module: nn.Dropout, x: Tensor) -> Tensor:
            if not module.training or module.p == 0.0:
                return x
            if module.p != tape.p:
                raise RuntimeError(f"dropout {module.p} where the tape has {tape.p}")
            kind, layer, member = tape.owners[id(module)]
            if member is not None:  # the code: one member's net
                return x * tape.mask(kind, member, layer, x.shape, x.dtype)
            members = tape.subset if kind == 1 and x.shape[0] == len(tape.subset) else range(x.shape[0])
            return x * torch.stack([tape.mask(kind, n, layer, x.shape[1:], x.dtype) for n in members])

        nn.Dropout.forward = forward  # type: ignore[method-assign]
        try:
            yield
        finally:
            nn.Dropout.forward = original  # type: ignore[method-assign]


def compare(overrides: list[str], updates: int, dtype: torch.dtype = torch.float32) -> tuple[float, str]:
    return redq_authors.compare(overrides, updates, dtype, make_ref=droq_agent, dropout=DropoutTape(DROPOUT))


def main(updates: int = 200, overrides: list[str] | None = None) -> list[Row]:
    overrides = PRESET + SWITCHES if overrides is None else overrides
    updates = max(redq_authors.UTD, updates // redq_authors.UTD * redq_authors.UTD)
    (worst, where), fused = both_kernels(lambda: compare(overrides, updates))
    with adam_kernel(fused=False):
        exact, exact_where = compare(overrides, updates, dtype=torch.float64)
    floor = rounding_floor(overrides, updates)
    return [Row("DroQ (droq_mujoco) vs DroQ authors' OriginalREDQCodebase", updates, worst, where, fused,
                list(DIFFERENCES),
                note=f"float64: {exact:.1e} ({exact_where}); float32 floor, qlearn loop vs fused Adam: {floor:.1e}")]


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("--updates", type=int, default=200)
    parser.add_argument("overrides", nargs="*", help="qlearn overrides instead of the pair's (e.g. to see it fail)")
    args = parser.parse_args()
    print(HEADER)
    for row in main(args.updates, args.overrides or None):
        print(row.line())
