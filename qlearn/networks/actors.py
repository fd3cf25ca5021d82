"""Stochastic actor for continuous actions: a tanh-squashed Gaussian rescaled to the env's bounds."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from qlearn.networks.mlp import hidden_layers

_LOG_2 = math.log(2.0)


def tanh_gaussian_log_prob(u: Tensor, mean: Tensor, log_std: Tensor, log_scale: Tensor) -> Tensor:
    """Log-density of ``a = center + scale * tanh(u)`` with ``u ~ N(mean, exp(log_std)^2)``, summed over dims.

    Change of variables (Haarnoja et al., 2018, "Soft Actor-Critic", App. C, Eq. 21):
    ``log pi(a) = log N(u) - sum_j log(scale_j * (1 - tanh(u_j)^2))``, with the numerically stable
    ``log(1 - tanh(u)^2) = 2 * (log 2 - u - softplus(-2u))``. Shapes ``[B, A] -> [B]``.
    """
    normal = -0.5 * ((u - mean) / log_std.exp()).pow(2) - log_std - 0.5 * math.log(2 * math.pi)
    log_det = 2.0 * (_LOG_2 - u - F.softplus(-2.0 * u)) + log_scale
    return (normal - log_det).sum(dim=-1)


class TanhGaussianActor(nn.Module):
    """SAC's policy ``a = center + scale * tanh(u)``, ``u ~ N(mu(s), sigma(s)^2)`` (Haarnoja et al., 2018).

    An MLP trunk outputs ``mu`` and ``log sigma`` (clamped to ``[log_std_min, log_std_max]``, the
    SAC/REDQ reference bounds -20 and 2). ``center`` and ``scale`` map ``(-1, 1)`` onto the env's
    ``[low, high]``, and the log-probability includes that rescaling, so it is the density of the
    action the env receives.

    Args:
        obs_dim: flat observation size.
        action_low: per-dimension lower bounds of the action space.
        action_high: per-dimension upper bounds.
        hidden_sizes: width of each hidden layer.
        activation: nonlinearity name or ``nn.Module`` class.
    """

    def __init__(
        self,
        obs_dim: int,
        action_low: Sequence[float],
        action_high: Sequence[float],
        hidden_sizes: Sequence[int] = (256, 256),
        activation: str | type[nn.Module] = "relu",
        log_std_min: float = -20.0,
        log_std_max: float = 2.0,
    ) -> None:
        super().__init__()
        low = torch.as_tensor(action_low, dtype=torch.float32)
        high = torch.as_tensor(action_high, dtype=torch.float32)
        if low.shape != high.shape or low.dim() != 1 or not bool((high > low).all()):
            raise ValueError(f"action bounds must be 1-D with high > low, got low={low.tolist()} high={high.tolist()}")
        if not (torch.isfinite(low).all() and torch.isfinite(high).all()):
            raise ValueError("TanhGaussianActor needs finite action bounds; wrap the env with gymnasium.wrappers.RescaleAction")
        self.action_dim = int(low.numel())
        self.register_buffer("center", (high + low) / 2)
        self.register_buffer("scale", (high - low) / 2)
        self.register_buffer("log_scale", ((high - low) / 2).log())
        self.log_std_min, self.log_std_max = float(log_std_min), float(log_std_max)
        last = hidden_sizes[-1] if len(hidden_sizes) > 0 else obs_dim
        self.trunk = nn.Sequential(*hidden_layers(obs_dim, hidden_sizes, activation))
        self.head = nn.Linear(last, 2 * self.action_dim)

    def distribution(self, obs: Tensor) -> tuple[Tensor, Tensor]:
        """``(mean, log_std)`` of the pre-tanh Gaussian, each ``[B, A]``."""
        mean, log_std = self.head(self.trunk(obs.flatten(1).to(self.head.weight.dtype))).chunk(2, dim=-1)
        return mean, log_std.clamp(self.log_std_min, self.log_std_max)

    def forward(self, obs: Tensor, deterministic: bool = False) -> tuple[Tensor, Tensor]:
        """A reparameterised action sample ``[B, A]`` in env bounds and its log-probability ``[B]``.

        ``deterministic=True`` returns ``center + scale * tanh(mean)`` (the evaluation action) and the
        log-density at that point.
        """
        mean, log_std = self.distribution(obs)
        u = mean if deterministic else mean + log_std.exp() * torch.randn_like(mean)
        action = self.center + self.scale * torch.tanh(u)
        return action, tanh_gaussian_log_prob(u, mean, log_std, self.log_scale)

    @torch.no_grad()
    def act(self, obs: Tensor, deterministic: bool = False) -> Tensor:
        """Actions only, without autograd: ``[B, A]``."""
        return self(obs, deterministic)[0]
