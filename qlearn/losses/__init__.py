"""Loss functions: pure functions of tensors, each with its paper equation in the docstring."""

from __future__ import annotations

from qlearn.losses.sac import sac_actor_loss, temperature_loss
from qlearn.losses.td import ensemble_td_loss, td_loss

__all__ = ["ensemble_td_loss", "sac_actor_loss", "td_loss", "temperature_loss"]
