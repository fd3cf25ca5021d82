"""EDAC's ensemble gradient-diversity penalty, a critic regulariser of the REDQ template (SAC-N + this = EDAC)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from qlearn.types import Batch


def gradient_diversity(action_grads: Tensor, eps: float = 1e-10) -> Tensor:
    """``mean_B 1/(N-1) sum_{i != j} <g_i, g_j>`` with ``g_i = grad_a Q_i(s, a) / ||grad_a Q_i(s, a)||``.

    An et al., 2021, "Uncertainty-Based Offline Reinforcement Learning with Diversified Q-Ensemble", Eq. 5 (the
    ensemble similarity ES, with unit gradients as in the authors' code). ``action_grads``: ``[N, B, A]``, the
    gradient of each member's value with respect to its own copy of the action; ``N >= 2``.
    """
    num_q = action_grads.shape[0]
    if action_grads.dim() != 3 or num_q < 2:
        raise ValueError(f"action_grads must be [N >= 2, B, A], got {tuple(action_grads.shape)}")
    unit = action_grads / (action_grads.norm(dim=-1, keepdim=True) + eps)  # [N, B, A]
    total = unit.sum(dim=0)  # [B, A]: sum_i g_i
    # sum_{i != j} <g_i, g_j> = ||sum_i g_i||^2 - sum_i ||g_i||^2, without the [B, N, N] Gram matrix
    off_diagonal = total.pow(2).sum(dim=-1) - unit.pow(2).sum(dim=(0, 2))  # [B]
    return off_diagonal.mean() / (num_q - 1)


class EnsembleGradientDiversity(nn.Module):
    """``eta * ES``: EDAC's penalty on similar action-gradients across the critics (An et al., 2021, Eq. 5-6).

    Called as REDQ's ``critic_regularizer(actor, critic, batch)``: each member is evaluated on its own copy of the
    dataset action, the action-gradients are taken with ``create_graph=True`` so the penalty trains the critics,
    and :func:`gradient_diversity` is weighted by ``eta`` (CORL's Hopper settings: 1.0). A critic ensemble
    of at least two members is needed.
    """

    def __init__(self, eta: float = 1.0) -> None:
        super().__init__()
        if eta < 0:
            raise ValueError(f"eta must be >= 0, got {eta}")
        self.eta = float(eta)

    def forward(self, actor: nn.Module, critic: nn.Module, batch: Batch) -> Tensor:
        num_q = critic.num_q
        obs = batch.obs.flatten(1)
        action = batch.action.flatten(1).to(obs.dtype).unsqueeze(0).expand(num_q, -1, -1).clone().requires_grad_(True)
        x = torch.cat((obs.unsqueeze(0).expand(num_q, -1, -1), action), dim=-1)  # [N, B, O + A]: one action per member
        q = critic.run(x).squeeze(-1)  # [N, B]
        grads = torch.autograd.grad(q.sum(), action, create_graph=True)[0]  # [N, B, A]
        return self.eta * gradient_diversity(grads)
