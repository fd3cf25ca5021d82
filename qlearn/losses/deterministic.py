"""Deterministic-policy losses: DDPG's/TD3's policy loss and TD3+BC's behaviour-cloning-regularised one."""

from __future__ import annotations

from torch import Tensor


def deterministic_actor_loss(q: Tensor) -> Tensor:
    """``J = -E_s[ Q_1(s, mu(s)) ]``, the deterministic policy gradient's objective (Silver et al., 2014;
    Lillicrap et al., 2016, Alg. 1; TD3 uses the first critic only, Fujimoto et al., 2018, Alg. 1). ``q``: ``[B]``."""
    return -q.mean()


def td3_bc_actor_loss(q: Tensor, policy_action: Tensor, data_action: Tensor, alpha: float) -> Tensor:
    """TD3+BC's policy loss ``-lambda E[Q(s, mu(s))] + E[(mu(s) - a)^2]``, ``lambda = alpha / E|Q(s, mu(s))|``.

    Fujimoto & Gu, 2021, "A Minimalist Approach to Offline Reinforcement Learning", Eq. 3-4; ``lambda`` is
    computed on the batch and held constant (no gradient), the squared error is averaged over batch and action
    dimensions, as in the authors' code (``F.mse_loss``). ``alpha = 2.5`` in the paper.

    Args:
        q: ``[B]`` the first critic's values of the policy's actions.
        policy_action: ``[B, A]`` the policy's actions ``mu(s)``.
        data_action: ``[B, A]`` the dataset's actions.
        alpha: the weight of the Q term relative to behaviour cloning, > 0.
    """
    if policy_action.shape != data_action.shape:
        raise ValueError(f"policy_action {tuple(policy_action.shape)} and data_action {tuple(data_action.shape)} differ")
    lmbda = alpha / q.abs().mean().detach()
    return -lmbda * q.mean() + (policy_action - data_action.to(policy_action.dtype)).pow(2).mean()
