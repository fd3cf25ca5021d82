"""Soft actor-critic losses: the policy loss and the automatic entropy-temperature loss."""

from __future__ import annotations

from torch import Tensor


def sac_actor_loss(log_prob: Tensor, q: Tensor, alpha: Tensor | float) -> Tensor:
    """Policy loss ``J_pi = E_s[ alpha * log pi(a~|s) - Q(s, a~) ]``, ``a~ ~ pi(.|s)`` reparameterised.

    Haarnoja et al., 2018 ("Soft Actor-Critic Algorithms and Applications"), Eq. 7/9. ``q`` is the
    critic's aggregate for the sampled action: the ensemble mean in REDQ (Chen et al., 2021, Alg. 1
    line 11), the minimum of two critics in SAC. ``alpha`` is treated as a constant.

    Args:
        log_prob: ``[B]`` log-probabilities of the sampled actions.
        q: ``[B]`` critic values of the same actions.
        alpha: entropy temperature (detached).
    """
    if log_prob.shape != q.shape:
        raise ValueError(f"log_prob {tuple(log_prob.shape)} and q {tuple(q.shape)} must both be [B]")
    return (alpha * log_prob - q).mean()


def temperature_loss(log_alpha: Tensor, log_prob: Tensor, target_entropy: float, of_alpha: bool = False) -> Tensor:
    """Automatic temperature loss ``J(alpha) = E[ -log(alpha) * (log pi(a~|s) + H_target) ]``.

    Haarnoja et al., 2018 ("Soft Actor-Critic Algorithms and Applications"), Eq. 18, optimised in
    ``log alpha`` as the SAC and REDQ reference code do. When the policy's entropy ``-log pi`` is
    below the target the gradient raises alpha, and lowers it when above. ``log_prob`` is detached.

    Args:
        log_alpha: scalar parameter ``log alpha``.
        log_prob: ``[B]`` log-probabilities of fresh policy samples.
        target_entropy: the entropy target ``H_target`` (``-|A|`` by default).
        of_alpha: use ``alpha = exp(log alpha)`` in place of ``log alpha`` (CleanRL's
            ``sac_continuous_action.py``): the same direction, the gradient scaled by alpha.
    """
    factor = log_alpha.exp() if of_alpha else log_alpha
    return -(factor * (log_prob.detach() + target_entropy)).mean()
