"""Distributional value blocks for :class:`qlearn.agents.DQN`: C51, QR-DQN and IQN as settings of one template.

A block owns its numbers (support, number of quantiles, embedding size), builds the Q-network's head
(:mod:`qlearn.networks.distributional`) and computes the per-sample loss of a batch. The next action of the
target is chosen by the agent's next-value block: ``GreedyNextValue`` takes the target network's argmax of
expected values (the papers), ``DoubleQNextValue`` the online network's (Rainbow, Hessel et al., 2018).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from qlearn.losses.distributional import categorical_projection, quantile_huber_loss
from qlearn.networks.distributional import CategoricalHead, ImplicitQuantileHead, QuantileHead
from qlearn.networks.noisy import LinearFactory


def _next_action(q: nn.Module, q_target: nn.Module, next_obs: Tensor, double: bool,
                 target_values: Tensor | None = None) -> Tensor:
    """``a* [B, 1]``: argmax of the online (double) or the target network's expected values."""
    if double:
        scores = q(next_obs)
    else:
        scores = target_values if target_values is not None else q_target(next_obs)
    return scores.argmax(dim=-1, keepdim=True)


def _pick(dist: Tensor, action: Tensor) -> Tensor:
    """``dist [B, A, K]`` at ``action [B, 1]`` -> ``[B, K]``."""
    return dist.gather(1, action.unsqueeze(-1).expand(-1, -1, dist.shape[-1])).squeeze(1)


class Categorical:
    """C51 (Bellemare et al., 2017): ``num_atoms`` atoms evenly on ``[v_min, v_max]`` (51 on [-10, 10] in the
    paper), the target distribution projected onto them (Alg. 1), cross-entropy loss; the per-sample loss is
    also the prioritized-replay priority (Rainbow, Hessel et al., 2018, Sec. 3, uses the KL divergence, which
    differs from it by the target's entropy)."""

    def __init__(self, num_atoms: int = 51, v_min: float = -10.0, v_max: float = 10.0) -> None:
        if num_atoms < 2 or not v_max > v_min:
            raise ValueError(f"need num_atoms >= 2 and v_max > v_min, got {num_atoms}, [{v_min}, {v_max}]")
        self.num_atoms, self.v_min, self.v_max = int(num_atoms), float(v_min), float(v_max)

    def support(self) -> Tensor:
        return torch.linspace(self.v_min, self.v_max, self.num_atoms)

    def head(self, in_dim: int, num_actions: int, dueling: bool = False,
             linear: LinearFactory = nn.Linear) -> nn.Module:
        return CategoricalHead(in_dim, num_actions, self.support(), dueling, linear)

    def loss(self, q: Any, q_target: Any, obs: Tensor, action: Tensor, next_obs: Tensor, reward: Tensor,
             discount: Tensor | float, terminated: Tensor, double: bool) -> tuple[Tensor, Tensor]:
        """``(per-sample loss [B], Q(s, a) [B] detached)``."""
        with torch.no_grad():
            next_log_probs = q_target.distribution(next_obs)  # [B, A, K]
            support = self.support().to(reward.device, reward.dtype)
            best = _next_action(q, q_target, next_obs, double, (next_log_probs.exp() * support).sum(-1))
            target = categorical_projection(_pick(next_log_probs, best).exp(), reward, discount,
                                            1.0 - terminated.to(reward.dtype), support)  # [B, K]
        log_probs = _pick(q.distribution(obs), action.unsqueeze(-1))  # [B, K]
        q_a = (log_probs.detach().exp() * support).sum(-1)
        return -(target * log_probs).sum(-1), q_a

    def __repr__(self) -> str:
        return f"Categorical(num_atoms={self.num_atoms}, v_min={self.v_min}, v_max={self.v_max})"


class QuantileRegression:
    """QR-DQN (Dabney et al., 2018a): ``num_quantiles`` quantiles at fractions ``(2i + 1) / 2N`` (N = 200 in the
    paper's Atari runs), the quantile Huber loss with ``kappa`` (1 in the paper)."""

    def __init__(self, num_quantiles: int = 200, kappa: float = 1.0) -> None:
        if num_quantiles < 1 or kappa < 0:
            raise ValueError(f"need num_quantiles >= 1 and kappa >= 0, got {num_quantiles}, {kappa}")
        self.num_quantiles, self.kappa = int(num_quantiles), float(kappa)

    def fractions(self, device: Any = None) -> Tensor:
        n = self.num_quantiles
        return (2 * torch.arange(n, device=device, dtype=torch.float32) + 1) / (2 * n)  # tau-hat_i

    def head(self, in_dim: int, num_actions: int, dueling: bool = False,
             linear: LinearFactory = nn.Linear) -> nn.Module:
        return QuantileHead(in_dim, num_actions, self.num_quantiles, dueling, linear)

    def loss(self, q: Any, q_target: Any, obs: Tensor, action: Tensor, next_obs: Tensor, reward: Tensor,
             discount: Tensor | float, terminated: Tensor, double: bool) -> tuple[Tensor, Tensor]:
        with torch.no_grad():
            next_quantiles = q_target.distribution(next_obs)  # [B, A, N]
            best = _next_action(q, q_target, next_obs, double, next_quantiles.mean(-1))
            scale = (discount * (1.0 - terminated.to(reward.dtype))).unsqueeze(-1)  # [B, 1]
            target = reward.unsqueeze(-1) + scale * _pick(next_quantiles, best)  # [B, N]
        quantiles = _pick(q.distribution(obs), action.unsqueeze(-1))  # [B, N]
        loss = quantile_huber_loss(quantiles, target, self.fractions(obs.device), self.kappa)
        return loss, quantiles.detach().mean(-1)

    def __repr__(self) -> str:
        return f"QuantileRegression(num_quantiles={self.num_quantiles}, kappa={self.kappa})"


class ImplicitQuantile:
    """IQN (Dabney et al., 2018b): ``num_tau`` (N) sampled fractions for the online quantiles, ``num_tau_prime``
    (N') for the target's, ``num_tau_act`` (K) for the greedy action, a cosine embedding of ``embedding_dim``
    (n) features; the paper's Atari values N = N' = 64, K = 32, n = 64, kappa = 1. Fractions are drawn from the
    global torch generator (checkpointed by the trainer)."""

    def __init__(self, num_tau: int = 64, num_tau_prime: int = 64, num_tau_act: int = 32,
                 embedding_dim: int = 64, kappa: float = 1.0) -> None:
        if min(num_tau, num_tau_prime, num_tau_act, embedding_dim) < 1 or kappa < 0:
            raise ValueError("IQN's sample counts and embedding size must be >= 1 and kappa >= 0")
        self.num_tau, self.num_tau_prime, self.num_tau_act = int(num_tau), int(num_tau_prime), int(num_tau_act)
        self.embedding_dim, self.kappa = int(embedding_dim), float(kappa)

    #: The embedding is multiplied in before the network's last hidden layer, which becomes the first layer of ``f``
    #: (the paper's Sec. 4, Dopamine's ImplicitQuantileNetwork): ``build_q_network`` passes it as ``hidden_sizes``.
    takes_last_hidden = True

    def head(self, in_dim: int, num_actions: int, dueling: bool = False, linear: LinearFactory = nn.Linear,
             hidden_sizes: Sequence[int] = (), activation: str | type[nn.Module] = "relu") -> nn.Module:
        return ImplicitQuantileHead(in_dim, num_actions, self.embedding_dim, self.num_tau_act, dueling, linear,
                                    hidden_sizes, activation)

    def loss(self, q: Any, q_target: Any, obs: Tensor, action: Tensor, next_obs: Tensor, reward: Tensor,
             discount: Tensor | float, terminated: Tensor, double: bool) -> tuple[Tensor, Tensor]:
        batch = reward.shape[0]
        with torch.no_grad():
            best = _next_action(q, q_target, next_obs, double)  # K fractions inside each network's forward
            taus_prime = torch.rand(batch, self.num_tau_prime, device=reward.device)
            scale = (discount * (1.0 - terminated.to(reward.dtype))).unsqueeze(-1)
            target = reward.unsqueeze(-1) + scale * _pick(q_target.distribution(next_obs, taus_prime), best)
        taus = torch.rand(batch, self.num_tau, device=reward.device)
        quantiles = _pick(q.distribution(obs, taus), action.unsqueeze(-1))  # [B, N]
        return quantile_huber_loss(quantiles, target, taus, self.kappa), quantiles.detach().mean(-1)

    def __repr__(self) -> str:
        return (f"ImplicitQuantile(num_tau={self.num_tau}, num_tau_prime={self.num_tau_prime}, "
                f"num_tau_act={self.num_tau_act}, embedding_dim={self.embedding_dim}, kappa={self.kappa})")


Distributional = Categorical | QuantileRegression | ImplicitQuantile
