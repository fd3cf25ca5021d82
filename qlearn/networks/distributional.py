"""Distributional Q-heads: a return distribution per action, read as its mean wherever a Q-value is wanted.

Every head maps features ``[B, F]`` to expected Q-values ``[B, A]`` in ``forward`` (acting, evaluation, the
Double-DQN argmax) and to the distribution in ``distribution``. With ``dueling=True`` a value and an advantage
stream are combined per atom/quantile as Eq. 9 of Wang et al. (2016) combines them per action (Rainbow, Hessel
et al., 2018, Sec. 3: before the softmax for C51).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from qlearn.networks.mlp import hidden_layers
from qlearn.networks.noisy import LinearFactory


class _AtomOutput(nn.Module):
    """``[B, F] -> [B, A, K]``: one linear layer, or dueling value ``[B, 1, K]`` + centred advantage."""

    def __init__(self, in_dim: int, num_actions: int, num_atoms: int, dueling: bool,
                 linear: LinearFactory) -> None:
        super().__init__()
        self.num_actions, self.num_atoms = int(num_actions), int(num_atoms)
        self.advantage = linear(in_dim, self.num_actions * self.num_atoms)
        self.value = linear(in_dim, self.num_atoms) if dueling else None

    def forward(self, features: Tensor) -> Tensor:
        out = self.advantage(features).unflatten(-1, (self.num_actions, self.num_atoms))  # [..., A, K]
        if self.value is None:
            return out
        return self.value(features).unsqueeze(-2) + out - out.mean(dim=-2, keepdim=True)


class CategoricalHead(nn.Module):
    """C51 (Bellemare et al., 2017, "A Distributional Perspective on Reinforcement Learning", Sec. 4):
    probabilities ``p_i(s, a)`` on a fixed support ``z_i``, ``Q(s, a) = sum_i z_i p_i(s, a)``.

    ``distribution`` returns log-probabilities ``[B, A, K]`` (the loss is a cross-entropy).
    """

    def __init__(self, in_dim: int, num_actions: int, support: Tensor, dueling: bool = False,
                 linear: LinearFactory = nn.Linear) -> None:
        super().__init__()
        self.register_buffer("support", support.clone())
        self.logits = _AtomOutput(in_dim, num_actions, support.numel(), dueling, linear)

    def distribution(self, features: Tensor) -> Tensor:
        return self.logits(features).log_softmax(dim=-1)  # [B, A, K]

    def forward(self, features: Tensor) -> Tensor:
        return (self.logits(features).softmax(dim=-1) * self.support).sum(dim=-1)  # [B, A]


class QuantileHead(nn.Module):
    """QR-DQN (Dabney et al., 2018a, "Distributional Reinforcement Learning with Quantile Regression"):
    ``N`` quantile values ``theta_i(s, a)`` at the fractions ``(2i + 1) / 2N``; ``Q(s, a)`` is their mean.

    ``distribution`` returns the quantiles ``[B, A, N]``.
    """

    def __init__(self, in_dim: int, num_actions: int, num_quantiles: int, dueling: bool = False,
                 linear: LinearFactory = nn.Linear) -> None:
        super().__init__()
        self.quantiles = _AtomOutput(in_dim, num_actions, num_quantiles, dueling, linear)

    def distribution(self, features: Tensor) -> Tensor:
        return self.quantiles(features)  # [B, A, N]

    def forward(self, features: Tensor) -> Tensor:
        return self.quantiles(features).mean(dim=-1)  # [B, A]


class ImplicitQuantileHead(nn.Module):
    """IQN (Dabney et al., 2018b, "Implicit Quantile Networks for Distributional Reinforcement Learning",
    Sec. 3.1): the quantile at fraction ``tau`` is ``f(psi(s) * phi(tau))`` with the cosine embedding
    ``phi_j(tau) = ReLU(sum_{i=0}^{n-1} cos(pi i tau) w_ij + b_j)`` (Eq. 4, ``n = embedding_dim``).

    ``f`` is ``hidden_sizes`` activated layers, then the output layer: the paper (Sec. 4) and Dopamine's
    ``ImplicitQuantileNetwork`` multiply the embedding into the conv features and keep the 512-unit layer in ``f``;
    :func:`~qlearn.networks.q.build_q_network` builds it so, taking the encoder's last hidden layer into ``f``.

    ``distribution(features, taus [B, N])`` returns the quantiles ``[B, A, N]``. ``forward`` is the
    risk-neutral ``Q(s, a) = 1/K sum_k Z_{tau_k}(s, a)`` over ``K = num_tau_act`` fractions drawn uniformly
    (the paper's greedy action, Sec. 3.2), from the global torch generator.
    """

    def __init__(self, in_dim: int, num_actions: int, embedding_dim: int = 64, num_tau_act: int = 32,
                 dueling: bool = False, linear: LinearFactory = nn.Linear, hidden_sizes: Sequence[int] = (),
                 activation: str | type[nn.Module] = "relu") -> None:
        super().__init__()
        self.num_tau_act = int(num_tau_act)
        self.register_buffer("frequencies", math.pi * torch.arange(int(embedding_dim), dtype=torch.float32))
        self.embedding = nn.Sequential(nn.Linear(int(embedding_dim), in_dim), nn.ReLU())
        out_in = int(hidden_sizes[-1]) if len(hidden_sizes) > 0 else in_dim
        self.quantiles = nn.Sequential(*hidden_layers(in_dim, hidden_sizes, activation, linear=linear),
                                       _AtomOutput(out_in, num_actions, 1, dueling, linear))  # f

    def distribution(self, features: Tensor, taus: Tensor) -> Tensor:
        phi = self.embedding(torch.cos(taus.unsqueeze(-1) * self.frequencies))  # [B, N, F]
        z = self.quantiles(features.unsqueeze(1) * phi)  # [B, N, A, 1]
        return z.squeeze(-1).transpose(1, 2)  # [B, A, N]

    def forward(self, features: Tensor) -> Tensor:
        taus = torch.rand(features.shape[0], self.num_tau_act, device=features.device, dtype=features.dtype)
        return self.distribution(features, taus).mean(dim=-1)  # [B, A]
