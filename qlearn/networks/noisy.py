"""Noisy linear layers for exploration (Fortunato et al., 2018, "Noisy Networks for Exploration")."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from qlearn.errors import QlearnError

LinearFactory = Callable[[int, int], nn.Module]  # ``(in_features, out_features) -> layer``: nn.Linear or NoisyLinear
SIGMA0 = 0.5  # Fortunato et al. (2018), Sec. 3.2, factorised noise


class NoisyLinear(nn.Module):
    """``y = (mu_w + sigma_w * eps_w) x + mu_b + sigma_b * eps_b`` with factorised Gaussian noise.

    Fortunato et al. (2018), Sec. 3 and Eq. 10-11: ``eps_w = f(eps_out) f(eps_in)^T``, ``eps_b = f(eps_out)``,
    ``f(x) = sgn(x) sqrt|x|``, each ``eps`` drawn from N(0, 1); initialisation (Sec. 3.2) ``mu ~ U[-1/sqrt(p),
    1/sqrt(p)]`` and ``sigma = sigma0 / sqrt(p)`` for ``p`` inputs, ``sigma0 = 0.5``. The noise stays fixed
    until :meth:`reset_noise` (the agent resamples it before each update and each acting step, as the paper's
    Alg. 1); in ``eval()`` mode the layer is the mean ``mu_w x + mu_b`` (no noise at evaluation).
    Draws use the global torch generator (checkpointed by the trainer).
    """

    def __init__(self, in_features: int, out_features: int, sigma0: float = SIGMA0) -> None:
        super().__init__()
        self.in_features, self.out_features = int(in_features), int(out_features)
        bound = 1.0 / math.sqrt(self.in_features)
        self.weight_mu = nn.Parameter(torch.empty(out_features, in_features).uniform_(-bound, bound))
        self.weight_sigma = nn.Parameter(torch.full((out_features, in_features), sigma0 * bound))
        self.bias_mu = nn.Parameter(torch.empty(out_features).uniform_(-bound, bound))
        self.bias_sigma = nn.Parameter(torch.full((out_features,), sigma0 * bound))
        self.register_buffer("eps_in", torch.zeros(in_features))
        self.register_buffer("eps_out", torch.zeros(out_features))

    @staticmethod
    def _scaled(x: Tensor) -> Tensor:
        return x.sign() * x.abs().sqrt()  # f(x) = sgn(x) sqrt|x|

    @torch.no_grad()
    def reset_noise(self) -> None:
        """Draw new factorised noise: ``in_features + out_features`` normals."""
        self.eps_in.copy_(self._scaled(torch.randn(self.in_features, device=self.eps_in.device)))
        self.eps_out.copy_(self._scaled(torch.randn(self.out_features, device=self.eps_out.device)))

    def forward(self, x: Tensor) -> Tensor:
        if not self.training:
            return F.linear(x, self.weight_mu, self.bias_mu)
        weight = self.weight_mu + self.weight_sigma * torch.outer(self.eps_out, self.eps_in)
        return F.linear(x, weight, self.bias_mu + self.bias_sigma * self.eps_out)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}"


def reset_noise(module: nn.Module) -> None:
    """Resample the noise of every :class:`NoisyLinear` in ``module``."""
    for layer in module.modules():
        if isinstance(layer, NoisyLinear):
            layer.reset_noise()


def has_noise(module: nn.Module) -> bool:
    """Whether ``module`` holds a :class:`NoisyLinear`."""
    return any(isinstance(layer, NoisyLinear) for layer in module.modules())


def linear_layer(noisy: bool, sigma0: float | None = None) -> LinearFactory:
    """The linear layer a network builds its fully connected layers from: ``nn.Linear``, or ``NoisyLinear``
    with initial noise scale ``sigma0`` (``None``: the paper's 0.5)."""
    if not noisy:
        if sigma0 is not None:
            raise QlearnError(f"network.noisy_sigma0={sigma0} takes effect only with noisy layers: set "
                              "network.noisy=true, or drop noisy_sigma0.")
        return nn.Linear
    return functools.partial(NoisyLinear, sigma0=SIGMA0 if sigma0 is None else float(sigma0))
