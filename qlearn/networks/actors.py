"""Actors: a tanh-squashed Gaussian (SAC/REDQ/CQL), a tanh-mean Gaussian (IQL, BC), a softmax policy and a
deterministic tanh policy (TD3, DDPG, TD3+BC)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from qlearn.networks.mlp import hidden_layers
from qlearn.utils import no_grad

_LOG_2 = math.log(2.0)


def tanh_gaussian_log_prob(u: Tensor, mean: Tensor, log_std: Tensor, log_scale: Tensor, epsilon: float = 0.0) -> Tensor:
    """Log-density of ``a = center + scale * tanh(u)`` with ``u ~ N(mean, exp(log_std)^2)``, summed over dims.

    Change of variables (Haarnoja et al., 2018, "Soft Actor-Critic", App. C, Eq. 21):
    ``log pi(a) = log N(u) - sum_j log(scale_j * (1 - tanh(u_j)^2))``, with the numerically stable
    ``log(1 - tanh(u)^2) = 2 * (log 2 - u - softplus(-2u))``. ``epsilon > 0`` uses
    ``log(1 - tanh(u)^2 + epsilon)`` instead, the SAC authors' and SB3's, REDQ's and CleanRL's form
    (all with 1e-6; CleanRL adds it after multiplying by the scale, the same on [-1, 1] boxes).
    Shapes ``[B, A] -> [B]``.
    """
    normal = -0.5 * ((u - mean) / log_std.exp()).pow(2) - log_std - 0.5 * math.log(2 * math.pi)
    if epsilon > 0.0:
        log_det = torch.log(1.0 - torch.tanh(u).pow(2) + epsilon) + log_scale
    else:
        log_det = 2.0 * (_LOG_2 - u - F.softplus(-2.0 * u)) + log_scale
    return (normal - log_det).sum(dim=-1)


def register_box(module: nn.Module, action_low: Sequence[float], action_high: Sequence[float], owner: str) -> int:
    """Register the checked bounds as ``low``, ``high``, ``center`` and ``scale`` buffers on ``module``; the action size."""
    low, high = action_bounds(action_low, action_high, owner)
    module.register_buffer("low", low)
    module.register_buffer("high", high)
    module.register_buffer("center", (high + low) / 2)
    module.register_buffer("scale", (high - low) / 2)
    return int(low.numel())


_LOG_STD_SQUASH = ("clamp", "tanh")


def action_bounds(action_low: Sequence[float], action_high: Sequence[float], owner: str) -> tuple[Tensor, Tensor]:
    """``(low, high)`` as float32 tensors, checked: 1-D, finite, ``high > low`` everywhere."""
    low = torch.as_tensor(action_low, dtype=torch.float32)
    high = torch.as_tensor(action_high, dtype=torch.float32)
    if low.shape != high.shape or low.dim() != 1 or not bool((high > low).all()):
        raise ValueError(f"action bounds must be 1-D with high > low, got low={low.tolist()} high={high.tolist()}")
    if not (torch.isfinite(low).all() and torch.isfinite(high).all()):
        raise ValueError(f"{owner} needs finite action bounds; wrap the env with gymnasium.wrappers.RescaleAction")
    return low, high


class TanhGaussianActor(nn.Module):
    """SAC's policy ``a = center + scale * tanh(u)``, ``u ~ N(mu(s), sigma(s)^2)`` (Haarnoja et al., 2018).

    An MLP trunk outputs ``mu`` and ``log sigma`` (clamped to ``[log_std_min, log_std_max]``, the
    SAC/REDQ reference bounds -20 and 2). ``center`` and ``scale`` map ``(-1, 1)`` onto the env's
    ``[low, high]``, and the log-probability includes that rescaling, so it is the density of the
    action the env receives. ``log pi + log_scale.sum()`` is the density of ``tanh(u)`` on ``(-1, 1)^A``
    (squashed units), in which :class:`qlearn.agents.REDQ` states its entropy terms.

    Args:
        obs_dim: flat observation size.
        action_low: per-dimension lower bounds of the action space.
        action_high: per-dimension upper bounds.
        hidden_sizes: width of each hidden layer.
        activation: nonlinearity name or ``nn.Module`` class.
        log_std_min: lower bound of ``log sigma``.
        log_std_max: upper bound of ``log sigma``.
        log_std_squash: how the head's output is kept in those bounds: ``"clamp"`` (the SAC authors, SB3,
            the REDQ code) or ``"tanh"``, ``min + (max - min) (tanh(x) + 1) / 2`` (CleanRL's
            ``sac_continuous_action.py``, with bounds -5 and 2; from SpinningUp / D. Yarats).
        log_prob_epsilon: ``0`` for the exact log-density; ``1e-6`` for the references' ``log(1 - tanh^2 + eps)``
            (see :func:`tanh_gaussian_log_prob`).
        log_std_affine: ``None`` (the head's output is ``log sigma``), or the start values ``(m, c)`` of two learned
            scalars with ``log sigma = m * head + c`` before the bounds (CORL's ``cql.py`` and Geng's JAX CQL, whose
            policy starts at ``(1, -1)``).
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
        log_std_squash: str = "clamp",
        log_prob_epsilon: float = 0.0,
        log_std_affine: Sequence[float] | None = None,
    ) -> None:
        super().__init__()
        if log_std_squash not in _LOG_STD_SQUASH:
            raise ValueError(f"log_std_squash must be one of {_LOG_STD_SQUASH}, got {log_std_squash!r}")
        if log_prob_epsilon < 0:
            raise ValueError(f"log_prob_epsilon must be >= 0, got {log_prob_epsilon}")
        self.log_std_squash, self.log_prob_epsilon = log_std_squash, float(log_prob_epsilon)
        low, high = action_bounds(action_low, action_high, "TanhGaussianActor")
        self.action_dim = int(low.numel())
        self.register_buffer("center", (high + low) / 2)
        self.register_buffer("scale", (high - low) / 2)
        self.register_buffer("log_scale", ((high - low) / 2).log())
        self.log_std_min, self.log_std_max = float(log_std_min), float(log_std_max)
        last = hidden_sizes[-1] if len(hidden_sizes) > 0 else obs_dim
        self.trunk = nn.Sequential(*hidden_layers(obs_dim, hidden_sizes, activation))
        self.head = nn.Linear(last, 2 * self.action_dim)
        self.log_std_multiplier: nn.Parameter | None = None
        self.log_std_offset: nn.Parameter | None = None
        if log_std_affine is not None:
            if len(log_std_affine) != 2:
                raise ValueError(f"log_std_affine must be two start values (m, c), got {list(log_std_affine)}")
            self.log_std_multiplier = nn.Parameter(torch.tensor(float(log_std_affine[0])))
            self.log_std_offset = nn.Parameter(torch.tensor(float(log_std_affine[1])))

    def distribution(self, obs: Tensor) -> tuple[Tensor, Tensor]:
        """``(mean, log_std)`` of the pre-tanh Gaussian, each ``[B, A]``."""
        mean, log_std = self.head(self.trunk(obs.flatten(1).to(self.head.weight.dtype))).chunk(2, dim=-1)
        if self.log_std_multiplier is not None and self.log_std_offset is not None:
            log_std = self.log_std_multiplier * log_std + self.log_std_offset
        if self.log_std_squash == "tanh":
            return mean, self.log_std_min + 0.5 * (self.log_std_max - self.log_std_min) * (torch.tanh(log_std) + 1)
        return mean, log_std.clamp(self.log_std_min, self.log_std_max)

    def forward(self, obs: Tensor, deterministic: bool = False) -> tuple[Tensor, Tensor]:
        """A reparameterised action sample ``[B, A]`` in env bounds and its log-probability ``[B]``.

        ``deterministic=True`` returns ``center + scale * tanh(mean)`` (the evaluation action) and the
        log-density at that point.
        """
        mean, log_std = self.distribution(obs)
        u = mean if deterministic else mean + log_std.exp() * torch.randn_like(mean)
        action = self.center + self.scale * torch.tanh(u)
        return action, tanh_gaussian_log_prob(u, mean, log_std, self.log_scale, self.log_prob_epsilon)

    @no_grad
    def act(self, obs: Tensor, deterministic: bool = False) -> Tensor:
        """Actions only, without autograd: ``[B, A]``."""
        return self(obs, deterministic)[0]


class DeterministicActor(nn.Module):
    """TD3's and DDPG's policy ``mu(s) = center + scale * tanh(f(s))``, an MLP ``f`` (Fujimoto et al., 2018).

    ``center`` and ``scale`` map ``(-1, 1)`` onto the env's ``[low, high]`` (the TD3 code's
    ``max_action * tanh``, which assumes a box symmetric around 0). Exploration and target smoothing noise
    are added outside, by :class:`qlearn.exploration.GaussianActionNoise`, in units of ``scale``.

    Args:
        obs_dim: flat observation size.
        action_low: per-dimension lower action bounds (finite).
        action_high: per-dimension upper action bounds (finite).
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
    ) -> None:
        super().__init__()
        self.action_dim = register_box(self, action_low, action_high, "DeterministicActor")
        last = hidden_sizes[-1] if len(hidden_sizes) > 0 else obs_dim
        self.trunk = nn.Sequential(*hidden_layers(obs_dim, hidden_sizes, activation))
        self.head = nn.Linear(last, self.action_dim)

    def forward(self, obs: Tensor) -> Tensor:
        """Actions ``[B, A]`` inside the env's bounds."""
        return self.center + self.scale * torch.tanh(self.head(self.trunk(obs.flatten(1).to(self.head.weight.dtype))))

    @no_grad
    def act(self, obs: Tensor, deterministic: bool = True) -> Tensor:
        """``mu(s)`` without autograd: ``[B, A]`` (the policy is deterministic; noise is the agent's)."""
        return self(obs)


class GaussianActor(nn.Module):
    """IQL's policy: ``a ~ N(center + scale * tanh(mu(s)), (scale * sigma)^2)``, sigma state-independent.

    The mean is squashed, the distribution is not (Kostrikov et al., 2022, reference code
    ``policy.NormalTanhPolicy(state_dependent_std=False, tanh_squash_distribution=False,
    log_std_min=-5)``), so ``log_prob`` of a dataset action is an exact Gaussian density even at the
    bounds. Used by advantage-weighted regression (IQL) and behaviour cloning: both maximise
    ``log_prob(obs, action)`` of dataset actions. ``act`` returns the mean (deterministic) or a
    sample clipped to the bounds.

    Args:
        obs_dim: flat observation size.
        action_low: per-dimension lower action bounds (finite).
        action_high: per-dimension upper action bounds (finite).
        hidden_sizes: width of each hidden layer.
        activation: nonlinearity name or ``nn.Module`` class.
        dropout: dropout in each hidden layer (IQL uses it on some antmaze/kitchen tasks).
        log_std_min: lower clamp of the learned log standard deviation.
        log_std_max: upper clamp of the learned log standard deviation.
    """

    def __init__(
        self,
        obs_dim: int,
        action_low: Sequence[float],
        action_high: Sequence[float],
        hidden_sizes: Sequence[int] = (256, 256),
        activation: str | type[nn.Module] = "relu",
        dropout: float = 0.0,
        log_std_min: float = -5.0,
        log_std_max: float = 2.0,
    ) -> None:
        super().__init__()
        self.action_dim = register_box(self, action_low, action_high, "GaussianActor")
        self.log_std_min, self.log_std_max = float(log_std_min), float(log_std_max)
        last = hidden_sizes[-1] if len(hidden_sizes) > 0 else obs_dim
        self.trunk = nn.Sequential(*hidden_layers(obs_dim, hidden_sizes, activation, dropout=dropout))
        self.mean_head = nn.Linear(last, self.action_dim)
        self.log_std = nn.Parameter(torch.zeros(self.action_dim))

    def distribution(self, obs: Tensor) -> tuple[Tensor, Tensor]:
        """``(mean, std)`` of the action distribution in env units, ``[B, A]`` and ``[A]``."""
        h = self.trunk(obs.flatten(1).to(self.mean_head.weight.dtype))
        mean = self.center + self.scale * torch.tanh(self.mean_head(h))
        std = self.scale * self.log_std.clamp(self.log_std_min, self.log_std_max).exp()
        return mean, std

    def log_prob(self, obs: Tensor, action: Tensor) -> Tensor:
        """``log pi(a|s)`` summed over action dims: ``[B]``."""
        mean, std = self.distribution(obs)
        z = (action.to(mean.dtype) - mean) / std
        return (-0.5 * z.pow(2) - std.log() - 0.5 * math.log(2 * math.pi)).sum(dim=-1)

    @no_grad
    def act(self, obs: Tensor, deterministic: bool = False) -> Tensor:
        """The mean action, or a sample clipped to the bounds: ``[B, A]``."""
        mean, std = self.distribution(obs)
        if deterministic:
            return mean
        return torch.maximum(torch.minimum(mean + std * torch.randn_like(mean), self.high), self.low)


class CategoricalActor(nn.Module):
    """A softmax policy over ``num_actions`` discrete actions: an MLP from observations to logits.

    ``log_prob(obs, action)`` is ``log softmax(logits)[action]``; ``act`` is the argmax
    (deterministic) or a sample. Used by discrete IQL (advantage-weighted regression) and BC.
    """

    def __init__(
        self,
        obs_dim: int,
        num_actions: int,
        hidden_sizes: Sequence[int] = (256, 256),
        activation: str | type[nn.Module] = "relu",
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.num_actions = int(num_actions)
        last = hidden_sizes[-1] if len(hidden_sizes) > 0 else obs_dim
        self.trunk = nn.Sequential(*hidden_layers(obs_dim, hidden_sizes, activation, dropout=dropout))
        self.head = nn.Linear(last, self.num_actions)

    def forward(self, obs: Tensor) -> Tensor:
        """Logits ``[B, A]``."""
        return self.head(self.trunk(obs.flatten(1).to(self.head.weight.dtype)))

    def log_prob(self, obs: Tensor, action: Tensor) -> Tensor:
        """``log pi(a|s)``: ``[B]``."""
        return F.log_softmax(self(obs), dim=-1).gather(-1, action.long().unsqueeze(-1)).squeeze(-1)

    @no_grad
    def act(self, obs: Tensor, deterministic: bool = False) -> Tensor:
        """Actions ``[B]`` (int64)."""
        logits = self(obs)
        if deterministic:
            return logits.argmax(dim=-1)
        return torch.distributions.Categorical(logits=logits).sample()
