"""What every lockstep pair shares: peer snapshots, weight copies, injected noise, the comparison and the table row.

A pair script builds a qlearn agent and the reference's own objects from the same initial weights, feeds both the
same batches (and the same random draws where an update samples), and reports the largest relative parameter
difference after each update. Nothing here re-implements a reference: the reference's code runs from its installed
package or from a source snapshot at a pinned commit (see README.md).
"""

from __future__ import annotations

import ast
import contextlib
import importlib.util
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

TOLERANCE = 1e-5  # the bar: float32 agreement after >= 100 updates
# float64 agreement this close means the math is the same and a float32 gap is rounding that the updates amplified
# (float64 rounds ~1e9 times finer; 200 chaotic updates amplify a float32 ulp to ~1e-3, a float64 one to ~1e-12)
FLOAT64_TOLERANCE = 1e-10
PEERS_DIR = Path(os.environ.get("QLEARN_PEERS", Path(__file__).resolve().parent / "peers"))

# Source snapshots the pairs run (git clone + checkout; README.md). One owner for each pinned commit.
SNAPSHOTS = {
    "cleanrl": ("https://github.com/vwxyzjn/cleanrl", "fe8d8a03c41a7ef5b523e2e354bd01c363e786bb"),
    "CORL": ("https://github.com/tinkoff-ai/CORL", "6afec90484bbf47dee05fdf525e26a3ebe028e9b"),
    "REDQ": ("https://github.com/watchernyu/REDQ", "7b5d1bff39291a57325a2836bd397a55728960bb"),
    "DroQ": ("https://github.com/TakuyaHiraoka/Dropout-Q-Functions-for-Doubly-Efficient-Reinforcement-Learning",
             "f89a79ac72e9c218d440f7dbcff1d9fed87702df"),
}


class PeerMissing(RuntimeError):
    """A reference is not installed or its snapshot is not checked out; the message says how to get it."""


def snapshot(name: str) -> Path:
    """The checked-out source snapshot ``name`` (``$QLEARN_PEERS/<name>``), or one line saying how to get it."""
    url, commit = SNAPSHOTS[name]
    path = PEERS_DIR / name
    if not path.is_dir():
        raise PeerMissing(f"{name} snapshot missing: git clone {url} {path} && git -C {path} checkout {commit}")
    return path


def peer_module(name: str) -> Any:
    """Import an installed peer package (e.g. ``stable_baselines3``), or say how to install it."""
    try:
        return __import__(name)
    except ImportError as exc:
        raise PeerMissing(f"{name} is not installed in this environment ({exc}); see benchmarks/lockstep/README.md") \
            from None


# ---------------------------------------------------------------------------------------------------- weights


def layers(module: nn.Module, kinds: tuple[type[nn.Module], ...] = (nn.Linear, nn.Conv2d)) -> list[nn.Module]:
    """The parameterised layers of ``module`` in registration order (the order of its forward for Sequential nets)."""
    return [m for m in module.modules() if isinstance(m, kinds)]


@torch.no_grad()
def copy_layers(source: Sequence[nn.Module], target: Sequence[nn.Module]) -> None:
    """Copy weights and biases layer by layer; the shapes must match exactly."""
    if len(source) != len(target):
        raise ValueError(f"{len(source)} source layers vs {len(target)} target layers")
    for i, (s, t) in enumerate(zip(source, target)):
        for name in ("weight", "bias"):
            a, b = getattr(s, name), getattr(t, name)
            if (a is None) != (b is None) or (a is not None and a.shape != b.shape):
                raise ValueError(f"layer {i} {name}: {None if a is None else tuple(a.shape)} vs "
                                 f"{None if b is None else tuple(b.shape)}")
            if a is not None:
                b.copy_(a)


# ---------------------------------------------------------------------------------------------------- comparing


def relative_difference(a: Tensor, b: Tensor) -> float:
    """``max |a - b| / max |b|`` (``b`` the reference), 0 when both are zero."""
    a, b = a.detach().double(), b.detach().double()
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {tuple(a.shape)} vs {tuple(b.shape)}")
    scale = b.abs().max().item()
    diff = (a - b).abs().max().item()
    return diff / scale if scale > 0 else diff


def largest_difference(pairs: Sequence[tuple[str, Tensor, Tensor]]) -> tuple[float, str]:
    """The largest :func:`relative_difference` over ``(name, qlearn, reference)`` tensors, and its name."""
    worst, where = 0.0, ""
    for name, a, b in pairs:
        d = relative_difference(a, b)
        if d > worst or not where:
            worst, where = d, name
    return worst, where


@contextlib.contextmanager
def adam_kernel(fused: bool) -> Iterator[None]:
    """Every ``torch.optim.Adam`` built inside uses the fused kernel (qlearn's default) or PyTorch's per-tensor
    loop (``fused=False``, what the references get on a CPU). The two kernels round differently, so float32
    parameters drift apart by rounding alone; comparing with one kernel on both sides shows the math."""
    original = torch.optim.Adam.__init__

    def init(self: torch.optim.Adam, params: Any, *args: Any, **kwargs: Any) -> None:
        kwargs["fused"] = fused if fused else None
        original(self, params, *args, **kwargs)

    torch.optim.Adam.__init__ = init  # type: ignore[method-assign]
    try:
        yield
    finally:
        torch.optim.Adam.__init__ = original  # type: ignore[method-assign]


def both_kernels(compare: Callable[[], tuple[float, str]]) -> tuple[tuple[float, str], float]:
    """``compare()`` (a fresh comparison returning the largest difference and where) with one Adam kernel on
    both sides, and the largest difference with qlearn's fused Adam against the reference's loop."""
    with adam_kernel(fused=False):
        same = compare()
    fused, _ = compare()
    return same, fused


# ---------------------------------------------------------------------------------------------------- noise


class NormalTape:
    """Pre-drawn standard normals handed out in order, so two implementations sample the same noise.

    ``draws[k]`` is the ``k``-th call's tensor. Each side says through which function its update draws (its
    own patch list) and in which order (``order``, a permutation of the draws of one update). Shapes are
    checked at every call: a different draw pattern fails loudly instead of comparing different noise.
    """

    def __init__(self, shapes: Sequence[tuple[int, ...]], updates: int, seed: int = 0) -> None:
        generator = torch.Generator().manual_seed(seed)
        self.per_update = [[torch.randn(s, generator=generator) for s in shapes] for _ in range(updates)]
        self._queue: list[Tensor] = []

    def load(self, update: int, order: Sequence[int] | None = None) -> None:
        """Queue update ``update``'s draws in ``order`` (default: as drawn)."""
        draws = self.per_update[update]
        self._queue = [draws[i] for i in (order if order is not None else range(len(draws)))]

    def next(self, shape: Sequence[int], dtype: torch.dtype = torch.float32, device: Any = None) -> Tensor:
        if not self._queue:
            raise RuntimeError(f"NormalTape: an unexpected extra draw of shape {tuple(shape)}")
        draw = self._queue.pop(0)
        if tuple(draw.shape) != tuple(shape):
            raise RuntimeError(f"NormalTape: a draw of shape {tuple(shape)} where {tuple(draw.shape)} was queued")
        return draw.to(dtype=dtype, device=device).clone()

    def check_empty(self) -> None:
        if self._queue:
            raise RuntimeError(f"NormalTape: {len(self._queue)} queued draws were not used")

    @contextlib.contextmanager
    def patch_randn_like(self) -> Iterator[None]:
        """``torch.randn_like`` (qlearn's actors) reads the tape."""
        original = torch.randn_like
        torch.randn_like = lambda t, **kw: self.next(t.shape, kw.get("dtype") or t.dtype, t.device)  # type: ignore
        try:
            yield
        finally:
            torch.randn_like = original

    @contextlib.contextmanager
    def patch_randn(self) -> Iterator[None]:
        """``torch.randn(shape, ...)`` (qlearn's ``GaussianActionNoise``) reads the tape."""
        original = torch.randn
        torch.randn = lambda shape, **kw: self.next(shape, kw.get("dtype") or torch.float32, kw.get("device"))  # type: ignore
        try:
            yield
        finally:
            torch.randn = original

    @contextlib.contextmanager
    def patch_normal_(self) -> Iterator[None]:
        """``Tensor.normal_(mean, std)`` (SB3's TD3 target noise) fills from the tape: ``mean + std * z``; a draw with
        ``std == 0`` (SB3's DDPG) is zeros and takes nothing from the tape, as qlearn draws nothing then."""
        original = torch.Tensor.normal_

        def normal_(t: Tensor, mean: float = 0.0, std: float = 1.0, **kw: Any) -> Tensor:
            with torch.no_grad():
                return t.fill_(mean) if std == 0 else t.copy_(mean + std * self.next(t.shape, t.dtype, t.device))

        torch.Tensor.normal_ = normal_  # type: ignore[method-assign]
        try:
            yield
        finally:
            torch.Tensor.normal_ = original  # type: ignore[method-assign]

    @contextlib.contextmanager
    def patch_distributions(self) -> Iterator[None]:
        """``torch.distributions.Normal.rsample``/``sample`` (SB3, CORL, the REDQ code) read the tape."""
        import torch.distributions.normal as normal_module

        original = normal_module._standard_normal
        normal_module._standard_normal = lambda shape, dtype, device: self.next(shape, dtype, device)
        try:
            yield
        finally:
            normal_module._standard_normal = original


# ---------------------------------------------------------------------------------------------------- scripts


def script_namespace(path: Path, extra_sys_path: Sequence[Path] = ()) -> dict[str, Any]:
    """Run a single-file reference (CleanRL, CORL) as a module whose ``__name__`` is not ``__main__``: its classes
    and functions are defined, its training loop is not run."""
    for p in (path.parent, *extra_sys_path):
        if str(p) not in sys.path:
            sys.path.insert(0, str(p))
    name = f"lockstep_peer_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)  # the reference's own code, from its snapshot
    return dict(vars(module))


def script_block(path: Path, predicate: Callable[[ast.AST], bool]) -> Any:
    """Compile the first statement of ``path`` for which ``predicate`` holds (searched through the whole tree,
    e.g. CleanRL's ``if global_step > args.learning_starts:`` training block) into a code object to ``exec``."""
    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.stmt) and predicate(node):
            module = ast.Module(body=[node], type_ignores=[])
            return compile(module, str(path), "exec")
    raise LookupError(f"no matching statement in {path}")


def main_statements(path: Path, prefixes: tuple[str, ...]) -> Any:
    """The statements of a script's ``if __name__ == "__main__":`` body whose source starts with one of
    ``prefixes`` (e.g. ``"q_network ="``: CleanRL's lines that build networks and optimizers), compiled in order."""
    tree = ast.parse(path.read_text(), str(path))
    main = next(n for n in tree.body if isinstance(n, ast.If) and "__main__" in ast.unparse(n.test))
    picked = [node for node in main.body if ast.unparse(node).startswith(prefixes)]
    return compile(ast.Module(body=picked, type_ignores=[]), str(path), "exec")


def is_cleanrl_training_block(node: ast.AST) -> bool:
    """CleanRL's ``if global_step > args.learning_starts:`` block: the whole update of its off-policy scripts."""
    return isinstance(node, ast.If) and ast.unparse(node.test) == "global_step > args.learning_starts"


@contextlib.contextmanager
def default_dtype(dtype: torch.dtype) -> Iterator[None]:
    """Tensors made inside with ``torch.Tensor(...)`` / ``torch.zeros`` (references' networks, batches) take ``dtype``
    (``torch.set_default_dtype``; the float64 comparisons)."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(previous)


def promote_explicit_float32(*tensors: Tensor) -> None:
    """In the float64 comparison, cast tensors a reference makes with an explicit ``dtype=torch.float32`` (CORL's log
    alpha and log-std parameters) to the default dtype, in place, so the optimisers that hold them keep them; in the
    float32 comparison nothing changes. The reference's arithmetic is untouched: only its precision follows the
    comparison's, as every other tensor's does under :func:`default_dtype`."""
    dtype = torch.get_default_dtype()
    for t in tensors:
        if t.dtype != dtype:
            t.data = t.data.to(dtype)


@contextlib.contextmanager
def float_casts_follow_default_dtype() -> Iterator[None]:
    """``Tensor.float()`` in a reference (CORL's ``(1.0 - dones.float()) * discount``, which rounds the discount to
    float32) returns the default dtype while active: the float64 comparison's counterpart of
    :func:`promote_explicit_float32` for casts made inside an update."""
    original = torch.Tensor.float
    torch.Tensor.float = lambda self, *a, **kw: self.to(torch.get_default_dtype())  # type: ignore[method-assign]
    try:
        yield
    finally:
        torch.Tensor.float = original  # type: ignore[method-assign]


class NullWriter:
    """Stands in for the TensorBoard ``SummaryWriter`` a reference's training block logs to."""

    def add_scalar(self, *args: Any, **kwargs: Any) -> None:
        pass


# ---------------------------------------------------------------------------------------------------- rows


@dataclass
class Row:
    """One line of the lockstep table."""

    pair: str
    updates: int
    max_rel_diff: float  # the same Adam kernel on both sides (the math)
    where: str = ""
    fused_rel_diff: float = float("nan")  # qlearn's fused Adam vs the reference's loop (rounding on top)
    differences: list[str] = field(default_factory=list)  # "what differs -> the switch that removes it"
    note: str = ""
    float64_rel_diff: float = float("nan")  # the same comparison in float64, one Adam kernel (nan: not run)

    @property
    def rounding_bound(self) -> bool:
        """Over the float32 bar, but equal in float64: the gap is rounding, not math (the table says so)."""
        return self.max_rel_diff > TOLERANCE and self.float64_rel_diff <= FLOAT64_TOLERANCE

    @property
    def agrees(self) -> bool:
        return self.max_rel_diff <= TOLERANCE or self.rounding_bound

    def line(self) -> str:
        verdict = ("agree in float64 (float32: rounding)" if self.rounding_bound else
                   "agree" if self.agrees else "DIFFER")
        found = "; ".join(self.differences) or "none"
        extra = f" ({self.note})" if self.note else ""
        return (f"| {self.pair} | {self.updates} | {self.max_rel_diff:.1e} ({self.where}) | "
                f"{self.fused_rel_diff:.1e} | {verdict} | {found}{extra} |")


HEADER = ("| pair | updates | largest relative parameter difference (where) | with qlearn's fused Adam | "
          "verdict | differences found -> switch |\n|---|---|---|---|---|---|")


def missing_row(pair: str, reason: str) -> Row:
    return Row(pair, 0, float("nan"), note=f"not run: {reason}")
