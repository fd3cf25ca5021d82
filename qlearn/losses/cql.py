"""Conservative Q-learning penalties (Kumar et al., 2020): push Q down on sampled actions, up on data."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

if TYPE_CHECKING:
    from qlearn.types import Batch


def cql_discrete_penalty(q_all: Tensor, action: Tensor) -> Tensor:
    """``logsumexp_a Q(s, a) - Q(s, a_data)`` per sample: ``q_all [B, A], action [B] -> [B]``.

    Kumar et al., 2020 ("Conservative Q-Learning for Offline Reinforcement Learning"), Eq. 4, the
    CQL(H) regulariser. It is >= 0 and near 0 when the data action's value dominates the others.
    """
    q_data = q_all.gather(-1, action.long().unsqueeze(-1)).squeeze(-1)
    return torch.logsumexp(q_all, dim=-1) - q_data


def cql_continuous_penalty(q_sampled: Tensor, log_density: Tensor, q_data: Tensor, temperature: float = 1.0) -> Tensor:
    """Importance-sampled CQL(H) for continuous actions: ``[N, B]`` per critic and state.

    ``temperature * logsumexp_k((Q(s, a_k) - log mu(a_k|s)) / temperature) - Q(s, a_data)`` with the
    ``a_k`` drawn from proposals ``mu`` (uniform and the current policy), which estimates
    ``log int exp Q(s, a) da`` (Kumar et al., 2020, App. F, "CQL(H)" with importance sampling). As in
    the authors' code (``min_q_version=3``), the constant ``-log K`` of the estimator is left out;
    it changes no gradient, only the level a Lagrange threshold is compared with.

    Args:
        q_sampled: ``[N, B, K]`` critic values of the K sampled actions.
        log_density: ``[B, K]`` log-densities of those actions under their proposals.
        q_data: ``[N, B]`` critic values of the dataset actions.
        temperature: the logsumexp temperature (1 in the paper).
    """
    soft_max = temperature * torch.logsumexp((q_sampled - log_density) / temperature, dim=-1)  # [N, B]
    return soft_max - q_data


class CQLPenalty:
    """Discrete CQL(H) as a DQN regulariser: ``weight * mean_B [logsumexp_a Q(s, a) - Q(s, a_data)]``.

    ``DQN(..., next_value=DoubleQNextValue(), regularizer=CQLPenalty(weight))`` is discrete CQL on a
    plain Q-network; the CQL paper's Atari agent was built on QR-DQN instead (Kumar et al., 2020, Sec. 6.3).
    """

    def __init__(self, weight: float = 1.0) -> None:
        self.weight = float(weight)

    def __call__(self, q_all: Tensor, action: Tensor) -> Tensor:
        return self.weight * cql_discrete_penalty(q_all, action).mean()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(weight={self.weight})"


class ContinuousCQLPenalty(nn.Module):
    """Continuous CQL(H) as a critic regulariser of :class:`qlearn.agents.REDQ`: ``f(actor, critic, batch) -> scalar``.

    For each state, ``num_samples`` actions from each of three proposals (uniform over the action
    box, the policy at s, the policy at s' - evaluated at s, as the authors' code does) enter
    :func:`cql_continuous_penalty`; the result is averaged over the batch and summed over the critics
    (the critic TD loss is summed the same way). Fixed weight: ``weight * penalty``. With
    ``lagrange_gap`` set (CQL(H)-Lagrange, Kumar et al., 2020, Eq. 30), the weight is
    ``alpha' = exp(log alpha')`` tuned by gradient ascent on ``alpha' (weight * penalty - gap)``, which
    this module steps itself (Adam, ``lagrange_lr``) each call. Its ``optimizer`` is listed in the
    agent's ``optimizers`` (so it is saved and moved with the agent).

    Defaults follow the authors' MuJoCo settings (aviralkumar2907/CQL ``d4rl/examples/cql_mujoco_new.py``
    and its README: ``num_random=10``, ``temp=1``, ``min_q_weight=5`` without Lagrange).
    """

    def __init__(
        self,
        num_samples: int = 10,
        weight: float = 5.0,
        temperature: float = 1.0,
        lagrange_gap: float | None = None,
        lagrange_lr: float = 3e-4,
    ) -> None:
        super().__init__()
        if num_samples < 1:
            raise ValueError(f"num_samples must be >= 1, got {num_samples}")
        self.num_samples = int(num_samples)
        self.weight = float(weight)
        self.temperature = float(temperature)
        self.lagrange_gap = None if lagrange_gap is None else float(lagrange_gap)
        self.optimizer: torch.optim.Optimizer | None = None
        if self.lagrange_gap is not None:
            self.log_alpha_prime = nn.Parameter(torch.zeros(()))
            self.optimizer = torch.optim.Adam([self.log_alpha_prime], lr=lagrange_lr)

    def penalty(self, actor: nn.Module, critic: nn.Module, batch: Batch) -> Tensor:
        """The unweighted penalty per critic, averaged over the batch: ``[N]``.

        ``actor``: ``obs -> (action [B, A], log_prob [B])`` with ``center`` and ``scale`` buffers (the
        uniform proposal's box); ``critic``: ``(obs, action) -> [N, B]``. Densities are in env units (the
        actor's and the uniform one alike); the authors' code uses squashed units, which differ by the
        constant ``sum_j log scale_j`` (0 on [-1, 1] boxes): no gradient changes, only a Lagrange gap's level.
        """
        k, b = self.num_samples, batch.obs.shape[0]
        obs = batch.obs.repeat_interleave(k, dim=0)  # [B*K, O]
        with torch.no_grad():
            pi_action, pi_log_prob = actor(obs)
            next_action, next_log_prob = actor(batch.next_obs.repeat_interleave(k, dim=0))
            scale = actor.scale
            uniform = actor.center + scale * (2 * torch.rand_like(pi_action) - 1)
            uniform_log_density = -torch.log(2 * scale).sum()
        # one critic call for the 3*B*K sampled actions and the B data actions
        q_all = critic(torch.cat((obs.repeat(3, 1), batch.obs)), torch.cat((uniform, pi_action, next_action, batch.action)))
        n = q_all.shape[0]
        q = q_all[:, : 3 * b * k].reshape(n, 3, b, k).permute(0, 2, 1, 3).reshape(n, b, 3 * k)  # [N, B, 3K]
        q_data = q_all[:, 3 * b * k :]  # [N, B]
        log_density = torch.cat(
            (uniform_log_density.expand(b, k), pi_log_prob.view(b, k), next_log_prob.view(b, k)), dim=1
        )  # [B, 3K], in the same proposal order as q
        return cql_continuous_penalty(q, log_density, q_data, self.temperature).mean(dim=1)

    @property
    def alpha_prime(self) -> Tensor:
        """The current Lagrange multiplier (``weight`` when it is fixed)."""
        if self.lagrange_gap is None:
            return torch.tensor(self.weight)
        return self.log_alpha_prime.detach().exp().clamp(0.0, 1e6)

    def forward(self, actor: nn.Module, critic: nn.Module, batch: Batch) -> Tensor:
        penalty = self.penalty(actor, critic, batch)  # [N]
        if self.lagrange_gap is None:
            return self.weight * penalty.sum()
        assert self.optimizer is not None
        gap = self.weight * penalty.detach() - self.lagrange_gap  # [N]
        dual_loss = -(self.log_alpha_prime.exp().clamp(0.0, 1e6) * gap).mean()  # ascent on alpha'
        self.optimizer.zero_grad(set_to_none=True)
        dual_loss.backward()
        self.optimizer.step()
        return (self.alpha_prime * (self.weight * penalty - self.lagrange_gap)).sum()

    def extra_repr(self) -> str:
        return (f"num_samples={self.num_samples}, weight={self.weight}, temperature={self.temperature}, "
                f"lagrange_gap={self.lagrange_gap}")
