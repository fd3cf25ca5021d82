"""Bootstrapped TD targets and the next-state value blocks that feed them.

A next-value block is a plain callable ``(q, q_target, next_obs) -> [B]`` with its
hyperparameters in ``__init__``, so Hydra can pick it with ``_target_`` and an agent can swap
DQN for Double DQN without a flag.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from qlearn.utils import no_grad


def td_target(
    reward: Tensor, terminated: Tensor, next_value: Tensor, discount: float | Tensor
) -> Tensor:
    """One- or k-step TD target ``y = r + discount * (1 - terminated) * V(s')``.

    This is the target ``y_j`` of Mnih et al. (2015, Algorithm 1): ``r_j`` at a terminal
    transition, ``r_j + gamma * max_a' Q_target(s', a')`` otherwise, with ``V(s')`` supplied by a
    next-value block. Only true terminations cut the bootstrap; a time-limit truncation arrives
    here with ``terminated = 0`` and keeps ``discount * V(s')`` (Pardo et al., 2018, "Time Limits
    in Reinforcement Learning").

    Args:
        reward: ``[B]`` reward (or discounted k-step reward sum).
        terminated: ``[B]`` 1.0 where s' is terminal, else 0.0 (bool is accepted).
        next_value: ``[B]`` value estimate of s'.
        discount: factor in front of the bootstrap: a float gamma, or ``[B]`` per-sample
            gamma**k for k-step returns.

    Returns:
        ``[B]`` targets.

    Raises:
        ValueError: if the shapes are not all ``[B]``.
    """
    if reward.dim() != 1:
        raise ValueError(f"reward must be [B], got shape {tuple(reward.shape)}")
    for name, t in (("terminated", terminated), ("next_value", next_value)):
        if t.shape != reward.shape:
            raise ValueError(
                f"{name} has shape {tuple(t.shape)} but reward has {tuple(reward.shape)}; "
                "all per-transition tensors must be [B]"
            )
    if isinstance(discount, Tensor) and discount.dim() > 0 and discount.shape != reward.shape:
        raise ValueError(
            f"discount has shape {tuple(discount.shape)} but reward has {tuple(reward.shape)}"
        )
    not_done = 1.0 - (terminated if terminated.dtype == reward.dtype else terminated.to(reward.dtype))  # [B]
    return reward + discount * not_done * next_value  # [B]


class GreedyNextValue:
    """DQN next-state value ``V(s') = max_a' Q_target(s', a')`` (Mnih et al., 2015, Alg. 1).

    Runs under ``torch.no_grad()``: the target is a constant for the TD loss.
    """

    @no_grad
    def __call__(self, q: nn.Module, q_target: nn.Module, next_obs: Tensor) -> Tensor:
        return q_target(next_obs).max(dim=-1).values  # [B, A] -> [B]

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class DoubleQNextValue:
    """Double DQN next-state value ``V(s') = Q_target(s', argmax_a' Q(s', a'))``
    (van Hasselt et al., 2016, "Deep Reinforcement Learning with Double Q-learning", Eq. 4).

    The online network picks the action and the target network scores it, which removes the
    overestimation bias of taking a max over noisy estimates with one network. Runs under
    ``torch.no_grad()``.
    """

    @no_grad
    def __call__(self, q: nn.Module, q_target: nn.Module, next_obs: Tensor) -> Tensor:
        best = q(next_obs).argmax(dim=-1, keepdim=True)  # [B, 1] chosen by the online net
        return q_target(next_obs).gather(-1, best).squeeze(-1)  # [B] scored by the target net

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def min_of_random_subset(
    q: Tensor, m: int, generator: torch.Generator | None = None
) -> Tensor:
    """Minimum over ``m`` of the ``N`` ensemble members, the subset drawn without replacement.

    REDQ's in-target minimisation (Chen et al., 2021, "Randomized Ensembled Double Q-Learning",
    Alg. 1): ``min_{i in M} Q_i`` with ``M`` a random ``m``-subset of ``{1..N}``. As in the
    reference implementation, one subset is drawn per call and shared by the whole batch.
    ``m = N`` gives the plain ensemble minimum (the clipped double-Q of SAC/TD3 for N = 2).

    Args:
        q: ``[N, B]`` member estimates.
        m: subset size, ``1 <= m <= N``.
        generator: torch generator for the draw (for reproducibility); ``None`` uses the global one.

    Returns:
        ``[B]`` the subset minimum.
    """
    if q.dim() != 2:
        raise ValueError(f"q must be [N, B], got shape {tuple(q.shape)}")
    idx = random_subset(q.shape[0], m, generator).to(q.device)  # [M]
    return q.index_select(0, idx).min(dim=0).values  # [M, B] -> [B]


def random_subset(n: int, m: int, generator: torch.Generator | None = None) -> Tensor:
    """``m`` distinct member indices out of ``n``, drawn uniformly (on the generator's device)."""
    if not 1 <= m <= n:
        raise ValueError(f"the subset size must be in [1, {n}], got {m}")
    device = generator.device if generator is not None else torch.device("cpu")
    return torch.randperm(n, generator=generator, device=device)[:m]


@no_grad
def soft_subset_min_value(
    actor: nn.Module,
    critic_target: nn.Module,
    next_obs: Tensor,
    alpha: Tensor | float,
    num_min: int,
    generator: torch.Generator | None = None,
) -> Tensor:
    """REDQ's soft next-state value ``min_{i in M} Q_target_i(s', a') - alpha * log pi(a'|s')``.

    ``a' ~ pi(.|s')`` is a fresh policy sample and ``M`` a random ``num_min``-subset of the N target
    critics (Chen et al., 2021, Alg. 1 line 7; with N = M = 2 it is SAC's clipped double-Q soft
    value, Haarnoja et al., 2018, Eq. 3). Only the chosen members are evaluated.

    Args:
        actor: module ``obs -> (action [B, A], log_prob [B])``.
        critic_target: ensemble ``(obs, action, members) -> [M, B]``
            (see :class:`qlearn.networks.ensemble.QEnsemble`).
        next_obs: ``[B, *obs_shape]``.
        alpha: entropy temperature.
        num_min: subset size M.
        generator: torch generator for the subset draw; ``None`` uses the global one.

    Returns:
        ``[B]`` soft values of s'.
    """
    members = random_subset(critic_target.num_q, num_min, generator).to(next_obs.device)  # [M]
    return soft_min_value(actor, critic_target, next_obs, alpha, members)


@no_grad
def soft_min_value(
    actor: nn.Module, critic_target: nn.Module, next_obs: Tensor, alpha: Tensor | float, members: Tensor
) -> Tensor:
    """``min_{i in members} Q_target_i(s', a') - alpha * log pi(a'|s')`` for given member indices ``[M]``:
    :func:`soft_subset_min_value` with the subset drawn by the caller (no RNG inside, so it compiles)."""
    next_action, next_log_prob = actor(next_obs)
    q = critic_target(next_obs, next_action, members=members)  # [M, B]
    return q.min(dim=0).values - alpha * next_log_prob  # [B]
