"""Seeding, device selection, RNG-state capture and the process-level helpers (autograd, GC, heap) of the loops."""

from __future__ import annotations

import ctypes
import functools
import gc
import random
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import numpy as np
import torch

from qlearn.errors import QlearnError

_Fn = TypeVar("_Fn", bound=Callable[..., Any])


def no_grad(fn: _Fn) -> _Fn:
    """Decorator: run ``fn`` with autograd off, like ``@torch.no_grad()``, at no cost when it is already off.

    ``@torch.no_grad()`` builds and enters a new context manager on every call (3-4 us on cpu2, as much as a
    small tensor op). The online trainer collects experience with autograd off, so the ``act`` and next-value
    calls it makes thousands of times per second skip that; called anywhere else they still never record a graph.
    """

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if not torch.is_grad_enabled():
            return fn(*args, **kwargs)
        with torch.no_grad():
            return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's legacy and torch's (CPU and CUDA) global generators."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def resolve_device(device: str | torch.device) -> torch.device:
    """Turn ``"auto" | "cpu" | "cuda" | "cuda:N"`` into a device, failing clearly without a GPU."""
    name = str(device)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise QlearnError(
            f"device={name} was asked for, but PyTorch sees no CUDA GPU on this machine "
            f"(torch {torch.__version__}). Use device=cpu, or device=auto to pick CUDA only when present."
        )
    try:
        return torch.device(name)
    except RuntimeError as exc:
        raise QlearnError(f"unknown device {name!r}: use cpu, cuda, cuda:N or auto.") from exc


def global_rng_state() -> dict[str, Any]:
    """Python, NumPy-legacy and torch RNG states in a form ``torch.load(weights_only=True)`` accepts."""
    np_state = np.random.get_state(legacy=False)
    state: dict[str, Any] = {
        "python": _python_state_to_plain(random.getstate()),
        # The legacy MT19937 state holds a uint32 array: store it as a tensor, not a numpy array.
        "numpy": {
            "key": torch.from_numpy(np_state["state"]["key"].astype(np.int64)),
            "pos": int(np_state["state"]["pos"]),
            "has_gauss": int(np_state["has_gauss"]),
            "gauss": float(np_state["gauss"]),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_global_rng_state(state: dict[str, Any]) -> None:
    """Inverse of :func:`global_rng_state`."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    np_state = state["numpy"]
    np.random.set_state(
        (
            "MT19937",
            np_state["key"].numpy().astype(np.uint32),
            np_state["pos"],
            np_state["has_gauss"],
            np_state["gauss"],
        )
    )
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _python_state_to_plain(state: tuple) -> list:
    version, internal, gauss = state
    return [version, list(internal), gauss]


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL("libc.so.6").malloc_trim  # glibc only; musl has no malloc_trim
    except (OSError, AttributeError):
        return None


def release_free_memory() -> None:
    """Give freed heap pages back to the OS (glibc ``malloc_trim(0)``); a no-op elsewhere.

    PyTorch's CPU tensors come from glibc malloc, whose dynamic mmap threshold soon serves even
    multi-MB tensors from the heap and keeps the freed pages: a REDQ run on Pendulum grew to 9 GB
    of RSS in 25k updates while its live memory stayed near 350 MB. Trimming every few hundred
    updates costs a few ms and keeps the process at its live size.
    """
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@contextmanager
def frozen_gc() -> Iterator[None]:
    """Exclude every object alive on entry from Python's cyclic garbage collection until exit (``gc.freeze``).

    A training process holds hundreds of thousands of long-lived objects (torch, gymnasium, Hydra), which every
    full collection walks again: about 0.1 s per collection on cpu2, 2% of a 1-env DQN CartPole run
    (``benchmarks/README.md``, "DQN speed"). Frozen objects are still freed by reference counting; cycles among
    them wait until exit, when they go back to the oldest generation (``gc.unfreeze``).
    """
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()
