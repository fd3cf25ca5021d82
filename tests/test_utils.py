"""Process-level helpers: the cheap no-grad decorator."""

from __future__ import annotations

import pytest
import torch

from qlearn.utils import no_grad

weight = torch.ones(3, requires_grad=True)


@no_grad
def scaled(x: torch.Tensor) -> torch.Tensor:
    """Would record a graph through ``weight`` if autograd were on."""
    return x * weight


@no_grad
def fails(x: torch.Tensor) -> torch.Tensor:
    raise RuntimeError("inside")


def test_no_grad_turns_autograd_off_inside_and_restores_it() -> None:
    assert torch.is_grad_enabled()
    out = scaled(torch.ones(3))
    assert not out.requires_grad and out.grad_fn is None
    assert torch.is_grad_enabled()
    with torch.no_grad():  # already off: the call leaves it off
        assert not scaled(torch.ones(3)).requires_grad
        assert not torch.is_grad_enabled()
    assert (torch.ones(3) * weight).requires_grad  # and graphs are recorded again outside


def test_no_grad_restores_autograd_after_an_exception() -> None:
    with pytest.raises(RuntimeError, match="inside"):
        fails(torch.ones(3))
    assert torch.is_grad_enabled()


def test_no_grad_keeps_the_name_and_docstring() -> None:
    assert scaled.__name__ == "scaled" and "graph" in (scaled.__doc__ or "")
