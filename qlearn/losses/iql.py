"""Implicit Q-learning losses: the expectile value loss and advantage-weighted policy extraction."""

from __future__ import annotations

import torch
from torch import Tensor


def expectile_loss(diff: Tensor, expectile: float) -> Tensor:
    """Asymmetric squared loss ``mean |tau - 1(u < 0)| u^2`` with ``u = Q(s, a) - V(s)``.

    Kostrikov et al., 2022 ("Offline Reinforcement Learning with Implicit Q-Learning"), Eq. 5 (the
    expectile regression loss ``L_2^tau``). ``expectile = 0.5`` is half the mean squared error;
    ``expectile -> 1`` makes V approach the max of Q over dataset actions.

    Args:
        diff: ``[B]`` residuals ``Q - V``.
        expectile: tau in ``(0, 1)``.
    """
    if not 0.0 < expectile < 1.0:
        raise ValueError(f"expectile must be in (0, 1), got {expectile}")
    weight = torch.where(diff < 0, 1.0 - expectile, expectile)
    return (weight * diff.pow(2)).mean()


def awr_weights(advantage: Tensor, temperature: float, max_weight: float = 100.0) -> Tensor:
    """``min(exp(beta * A), max_weight)``, detached: the advantage weights of IQL's policy extraction.

    Kostrikov et al., 2022, Eq. 7 (with the reference code's clip at 100); beta is the inverse
    temperature. ``temperature = 0`` gives weight 1 everywhere, i.e. behaviour cloning.
    """
    return torch.exp(advantage.detach() * temperature).clamp(max=max_weight)


def awr_actor_loss(log_prob: Tensor, weights: Tensor) -> Tensor:
    """Weighted negative log-likelihood of dataset actions ``-mean w * log pi(a|s)`` (Eq. 7)."""
    if log_prob.shape != weights.shape:
        raise ValueError(f"log_prob {tuple(log_prob.shape)} and weights {tuple(weights.shape)} must both be [B]")
    return -(weights * log_prob).mean()
