"""Distributional TD losses: the C51 projection and the quantile Huber loss."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def categorical_projection(probs: Tensor, reward: Tensor, discount: Tensor | float, not_done: Tensor,
                           support: Tensor) -> Tensor:
    """Project the target distribution ``r + discount * not_done * z`` back onto the support ``z``.

    Bellemare et al. (2017), Alg. 1: each atom ``T z_j`` is clipped to ``[V_min, V_max]`` and its probability
    split between the two nearest support points in proportion to the distance (all of it to one point when it
    lands on it exactly). Shapes: ``probs [B, K]``, ``reward``/``not_done`` ``[B]``, ``discount`` a float or
    ``[B]`` (``gamma**k`` for k-step returns), ``support [K]`` evenly spaced; returns ``[B, K]``, each row a
    distribution.
    """
    v_min, v_max = support[0], support[-1]
    delta = (v_max - v_min) / (support.numel() - 1)
    scale = (discount * not_done) if isinstance(discount, Tensor) else discount * not_done  # [B]
    tz = (reward.unsqueeze(-1) + scale.unsqueeze(-1) * support).clamp(v_min, v_max)  # [B, K]
    b = (tz - v_min) / delta  # fractional index in [0, K - 1]
    lower, upper = b.floor(), b.ceil()
    on_point = (lower == upper).to(probs.dtype)  # Alg. 1 leaves m_l + m_u = 0 there; the mass goes to l
    projected = torch.zeros_like(probs)
    projected.scatter_add_(-1, lower.long(), probs * (upper - b + on_point))
    projected.scatter_add_(-1, upper.long(), probs * (b - lower))
    return projected


def quantile_huber_loss(pred: Tensor, target: Tensor, taus: Tensor, kappa: float = 1.0) -> Tensor:
    """Per-sample quantile regression loss ``sum_i 1/M sum_j rho^kappa_{tau_i}(target_j - pred_i)``: ``[B]``.

    ``rho^kappa_tau(u) = |tau - 1{u < 0}| L_kappa(u) / kappa`` with the Huber loss ``L_kappa`` (Dabney et al.,
    2018a, Eq. 10 and Alg. 1, QR-DQN; Dabney et al., 2018b, Eq. 3, IQN); ``kappa = 0`` is the plain quantile
    loss ``|tau - 1{u < 0}| |u|``. Shapes: ``pred [B, N]`` at fractions ``taus`` (``[B, N]`` or ``[N]``),
    ``target [B, M]`` (constants: computed without gradient).
    """
    u = target.unsqueeze(1) - pred.unsqueeze(2)  # [B, N, M]
    if kappa > 0:
        loss = F.huber_loss(pred.unsqueeze(2).expand_as(u), target.unsqueeze(1).expand_as(u), reduction="none",
                            delta=kappa) / kappa
    else:
        loss = u.abs()
    taus = taus.expand(pred.shape).unsqueeze(-1)  # [B, N, 1]
    weight = (taus - (u.detach() < 0).to(u.dtype)).abs()
    return (weight * loss).mean(dim=2).sum(dim=1)  # mean over targets, sum over predicted quantiles
