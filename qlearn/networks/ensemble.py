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


class EnsembleMLP(nn.Module):
    """N MLPs run together: ``[B, in]`` (shared) or ``[N, B, in]`` -> ``[N, B, out]``.

    Hidden blocks are ``Linear -> [Dropout] -> [LayerNorm] -> activation`` (the DroQ order,
    Hiraoka et al., 2022, Sec. 3), built from :class:`EnsembleLinear` and :class:`EnsembleLayerNorm`
    so the N members run as batched matmuls. One Adam over the stacked weights equals N separate
    Adams, because Adam works element by element.
    """

    def __init__(
        self,
        num_members: int,
        in_features: int,
        out_features: int,
        hidden_sizes: Sequence[int] = (256, 256),
        activation: str | type[nn.Module] = "relu",
        layer_norm: bool = False,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.num_q = int(num_members)
        act = resolve_activation(activation)
        layers: list[nn.Module] = []
        width = int(in_features)
        for size in hidden_sizes:
            layers.append(EnsembleLinear(num_members, width, size))
            if dropout > 0.0:
                layers.append(nn.Dropout(dropout))
            if layer_norm:
                layers.append(EnsembleLayerNorm(num_members, size))
            layers.append(act())
            width = size
        layers.append(EnsembleLinear(num_members, width, out_features))
        self.net = nn.Sequential(*layers)

    def run(self, x: Tensor, members: Tensor | None = None) -> Tensor:
        """``[N, B, out]`` (or ``[M, B, out]`` for the member indices ``members``)."""
        x = x.to(self.net[0].weight.dtype)
        for layer in self.net:
            x = layer(x, members) if isinstance(layer, (EnsembleLinear, EnsembleLayerNorm)) else layer(x)
        return x

    def linear_layers(self) -> list[EnsembleLinear]:
        """The ensemble's linear layers, input to output."""
        return [m for m in self.net if isinstance(m, EnsembleLinear)]


class QEnsemble(EnsembleMLP):
    """N critics ``Q_i(s, a)``, ``i = 1..N``, evaluated together: ``(obs [B, O], action [B, A]) -> [N, B]``.

    Every member is an MLP on ``concat(obs, action)`` (see :class:`EnsembleMLP`). ``num_q = 1`` is a
    single critic.

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
        super().__init__(num_q, int(obs_dim) + int(action_dim), 1, hidden_sizes, activation, layer_norm, dropout)

    def forward(self, obs: Tensor, action: Tensor, members: Tensor | None = None) -> Tensor:
        """``[N, B]`` values, or ``[M, B]`` for the member indices ``members`` (``[M]``) only."""
        x = torch.cat((obs.flatten(1), action.flatten(1).to(obs.dtype)), dim=-1)  # [B, O + A], shared
        return self.run(x, members).squeeze(-1)  # [N, B]


class DiscreteQEnsemble(EnsembleMLP):
    """N discrete-action critics: ``obs [B, O] -> [N, B, A]``, or ``[N, B]`` for given actions ``[B]``.

    The same call shape as :class:`QEnsemble` (``critic(obs, action) -> [N, B]``), so agents written
    against it (IQL) take either; ``critic(obs)`` gives every action's value.
    """

    def __init__(
        self,
        obs_dim: int,
        num_actions: int,
        num_q: int = 2,
        hidden_sizes: Sequence[int] = (256, 256),
        activation: str | type[nn.Module] = "relu",
        layer_norm: bool = False,
        dropout: float = 0.0,
    ) -> None:
        super().__init__(num_q, obs_dim, num_actions, hidden_sizes, activation, layer_norm, dropout)
        self.num_actions = int(num_actions)

    def forward(self, obs: Tensor, action: Tensor | None = None, members: Tensor | None = None) -> Tensor:
        q = self.run(obs.flatten(1), members)  # [N, B, A]
        if action is None:
            return q
        index = action.long().view(1, -1, 1).expand(q.shape[0], -1, 1)  # [N, B, 1]
        return q.gather(-1, index).squeeze(-1)  # [N, B]
