"""A vectorized ensemble of N critics Q(s, a): one module with stacked weights, never a loop over N modules."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from qlearn.networks.mlp import resolve_activation


class EnsembleLinear(nn.Module):
    """N independent linear layers applied in one batched matmul: ``y[n] = x[n] @ W[n] + b[n]``.

    ``weight`` is ``[N, in, out]`` and ``bias`` ``[N, 1, out]``. Each member is initialised like its
    own ``nn.Linear`` (``U(-1/sqrt(in), 1/sqrt(in))`` for weight and bias, PyTorch's default), drawn
    independently. Input ``[N, B, in]`` (one batch per member) or ``[B, in]`` (shared by all).
    """

    def __init__(self, num_members: int, in_features: int, out_features: int) -> None:
        super().__init__()
        if num_members < 1:
            raise ValueError(f"num_members must be >= 1, got {num_members}")
        self.num_members, self.in_features, self.out_features = int(num_members), int(in_features), int(out_features)
        self.weight = nn.Parameter(torch.empty(num_members, in_features, out_features))
        self.bias = nn.Parameter(torch.empty(num_members, 1, out_features))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        bound = 1.0 / math.sqrt(self.in_features)  # = nn.Linear's kaiming_uniform(a=sqrt(5)) bound
        nn.init.uniform_(self.weight, -bound, bound)
        nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: Tensor, members: Tensor | None = None) -> Tensor:
        """``[N, B, in]`` or shared ``[B, in]`` -> ``[N, B, out]``; ``members`` (``[M]`` indices) runs only those."""
        weight, bias = self.weight, self.bias
        if members is not None:
            weight, bias = weight.index_select(0, members), bias.index_select(0, members)
        if x.dim() == 2:  # shared input: one GEMM against all members' weights side by side
            n, i, o = weight.shape
            y = x @ weight.permute(1, 0, 2).reshape(i, n * o)  # [B, N*out]
            return y.view(-1, n, o).transpose(0, 1) + bias  # [N, B, out]
        return torch.baddbmm(bias, x, weight)  # [N, B, in] -> [N, B, out]

    @torch.no_grad()
    def load_member(self, index: int, linear: nn.Linear) -> None:
        """Copy an ``nn.Linear``'s weights into member ``index`` (for tests and warm starts)."""
        self.weight[index].copy_(linear.weight.T)
        self.bias[index, 0].copy_(linear.bias)

    def extra_repr(self) -> str:
        return f"num_members={self.num_members}, in_features={self.in_features}, out_features={self.out_features}"


class EnsembleLayerNorm(nn.Module):
    """LayerNorm over the last dim with a separate affine (gain, bias) per member: ``[N, B, D]``."""

    def __init__(self, num_members: int, features: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(num_members, 1, features))
        self.bias = nn.Parameter(torch.zeros(num_members, 1, features))

    def forward(self, x: Tensor, members: Tensor | None = None) -> Tensor:
        weight, bias = self.weight, self.bias
        if members is not None:
            weight, bias = weight.index_select(0, members), bias.index_select(0, members)
        return F.layer_norm(x, x.shape[-1:], eps=self.eps) * weight + bias


class QEnsemble(nn.Module):
    """N critics ``Q_i(s, a)``, ``i = 1..N``, evaluated together: ``(obs [B, O], action [B, A]) -> [N, B]``.

    Every member is an MLP on ``concat(obs, action)`` whose hidden blocks are
    ``Linear -> [Dropout] -> [LayerNorm] -> activation`` (the DroQ order, Hiraoka et al., 2022,
    Sec. 3), built from :class:`EnsembleLinear` and :class:`EnsembleLayerNorm` so the N members run
    as batched matmuls. One Adam over the stacked weights equals N separate Adams, because Adam
    works element by element. ``num_q = 1`` is a single critic.

    Args:
        obs_dim: flat observation size.
        action_dim: flat action size.
        num_q: ensemble size N.
        hidden_sizes: width of each hidden layer.
        activation: nonlinearity name or ``nn.Module`` class.
        layer_norm: per-member LayerNorm in each hidden block (DroQ).
        dropout: dropout probability in each hidden block (DroQ); active only in ``train()`` mode.
    """

    def __init__(
        self,
        obs_dim: int,
        action_dim: int,
        num_q: int = 2,
        hidden_sizes: Sequence[int] = (256, 256),
        activation: str | type[nn.Module] = "relu",
        layer_norm: bool = False,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.num_q = int(num_q)
        act = resolve_activation(activation)
        layers: list[nn.Module] = []
        width = int(obs_dim) + int(action_dim)
        for size in hidden_sizes:
            layers.append(EnsembleLinear(num_q, width, size))
            if dropout > 0.0:
                layers.append(nn.Dropout(dropout))
            if layer_norm:
                layers.append(EnsembleLayerNorm(num_q, size))
            layers.append(act())
            width = size
        layers.append(EnsembleLinear(num_q, width, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, obs: Tensor, action: Tensor, members: Tensor | None = None) -> Tensor:
        """``[N, B]`` values, or ``[M, B]`` for the member indices ``members`` (``[M]``) only."""
        dtype = self.net[0].weight.dtype  # the first EnsembleLinear
        x = torch.cat((obs.flatten(1).to(dtype), action.flatten(1).to(dtype)), dim=-1)  # [B, O + A], shared
        for layer in self.net:
            x = layer(x, members) if isinstance(layer, (EnsembleLinear, EnsembleLayerNorm)) else layer(x)
        return x.squeeze(-1)  # [N, B]

    def linear_layers(self) -> list[EnsembleLinear]:
        """The ensemble's linear layers, input to output."""
        return [m for m in self.net if isinstance(m, EnsembleLinear)]
