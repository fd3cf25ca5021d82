"""Loss functions: pure functions of tensors, each with its paper equation in the docstring."""

from __future__ import annotations

from qlearn.losses.td import td_loss

__all__ = ["td_loss"]
