"""Bootstrapped TD targets and the next-state value blocks that feed them.

A next-value block is a plain callable with its hyperparameters in ``__init__``, so Hydra can pick
it with ``_target_`` and an agent can swap variants without a flag: ``(q, q_target, next_obs) -> [B]``
for DQN (Greedy, Double), ``(policy, critic_target, next_obs, alpha, members) -> [B]`` for the soft
actor-critics (REDQ, SAC, DroQ, CQL), ``(actor_target, critic_target, next_obs, generator) -> [B]`` for the
deterministic ones (TD3, DDPG, TD3+BC).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from qlearn.exploration import GaussianActionNoise
from qlearn.utils import no_grad

Policy = Callable[[Tensor], tuple[Tensor, Tensor]]


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


def masked_argmax(values: Tensor, allowed: Tensor | None) -> Tensor:
    """``argmax_a`` over the allowed actions, ``[B, A] -> [B, 1]`` (over all of them when ``allowed`` is ``None``)."""
    if allowed is not None:
        values = values.masked_fill(~allowed, float("-inf"))
    return values.argmax(dim=-1, keepdim=True)


class GreedyNextValue:
    """DQN next-state value ``V(s') = max_a' Q_target(s', a')`` (Mnih et al., 2015, Alg. 1).

    Runs under ``torch.no_grad()``: the target is a constant for the TD loss.
    """

    selects_with_online = False  # distributional blocks take the next action from the target network

    @no_grad
    def __call__(self, q: nn.Module, q_target: nn.Module, next_obs: Tensor, allowed: Tensor | None = None) -> Tensor:
        """``allowed`` ``[B, A]`` (bool) restricts the max to those actions (discrete BCQ's filter)."""
        scores = q_target(next_obs)  # [B, A]
        if allowed is not None:
            scores = scores.masked_fill(~allowed, float("-inf"))
        return scores.max(dim=-1).values  # [B]

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class DoubleQNextValue:
    """Double DQN next-state value ``V(s') = Q_target(s', argmax_a' Q(s', a'))``
    (van Hasselt et al., 2016, "Deep Reinforcement Learning with Double Q-learning", Eq. 4).

    The online network picks the action and the target network scores it, which removes the
    overestimation bias of taking a max over noisy estimates with one network. Runs under
    ``torch.no_grad()``. Passed ``q_target is q`` (a target synced after every update, as DrQ(eps) on
    Atari 100k), it makes one forward pass and the value is ``max_a' Q(s', a')``.
    """

    selects_with_online = True  # distributional blocks take the next action from the online network

    @no_grad
    def __call__(self, q: nn.Module, q_target: nn.Module, next_obs: Tensor, allowed: Tensor | None = None) -> Tensor:
        """``allowed`` ``[B, A]`` (bool) restricts the online argmax to those actions (discrete BCQ, Fujimoto et
        al., 2019, Eq. 4)."""
        online = q(next_obs)  # [B, A]
        scores = online if q_target is q else q_target(next_obs)  # [B, A]
        best = masked_argmax(online, allowed)  # [B, 1] chosen by the online net
        return scores.gather(-1, best).squeeze(-1)  # [B] scored by the target net

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def random_subset(n: int, m: int, generator: torch.Generator | None = None) -> Tensor:
    """``m`` distinct member indices out of ``n``, drawn uniformly (on the generator's device)."""
    if not 1 <= m <= n:
        raise ValueError(f"the subset size must be in [1, {n}], got {m}")
    device = generator.device if generator is not None else torch.device("cpu")
    return torch.randperm(n, generator=generator, device=device)[:m]


class SoftMinNextValue:
    """REDQ's soft next-state value ``V(s') = min_{i in M} Q_target_i(s', a') - alpha * log pi(a'|s')``.

    ``a' ~ pi(.|s')`` is a fresh policy sample and ``M`` a random ``num_min``-subset of the N target
    critics, one subset per update shared by the whole batch (Chen et al., 2021, "Randomized Ensembled
    Double Q-Learning", Alg. 1 line 7). With N = M = 2 it is SAC's clipped double-Q soft value
    (Haarnoja et al., 2018, Eq. 3). ``backup_entropy=False`` drops ``- alpha log pi``: CQL's
    ``deterministic_backup`` (Kumar et al., 2020). Only the drawn members are evaluated.

    Two calls, so that the random draw stays outside ``torch.compile``: ``draw(N, generator)`` picks the
    subset (the agent owns and checkpoints the generator), ``__call__`` computes the value for it.
    ``log pi`` is in whatever units ``policy`` reports (:class:`qlearn.agents.REDQ` passes squashed ones).

    Args:
        num_min: M, the subset size, ``1 <= M <= N``.
        backup_entropy: keep ``- alpha log pi(a'|s')`` in the value.
    """

    def __init__(self, num_min: int = 2, backup_entropy: bool = True) -> None:
        if num_min < 1:
            raise ValueError(f"num_min must be >= 1, got {num_min}")
        self.num_min = int(num_min)
        self.backup_entropy = bool(backup_entropy)

    def draw(self, num_q: int, generator: torch.Generator | None = None) -> Tensor:
        """The member indices ``[M]`` for the next call; ``generator=None`` uses the global one."""
        return random_subset(num_q, self.num_min, generator)

    @no_grad
    def __call__(
        self, policy: Policy, critic_target: nn.Module, next_obs: Tensor, alpha: Tensor | float, members: Tensor
    ) -> Tensor:
        """``[B]`` soft values of ``next_obs`` for the drawn ``members`` ``[M]``.

        Args:
            policy: ``obs -> (action [B, A], log_prob [B])``.
            critic_target: ensemble ``(obs, action, members) -> [M, B]`` (see :class:`QEnsemble`).
            next_obs: ``[B, *obs_shape]``.
            alpha: entropy temperature.
            members: indices from :meth:`draw`, on ``next_obs``'s device.
        """
        next_action, next_log_prob = policy(next_obs)
        q_min = critic_target(next_obs, next_action, members=members).min(dim=0).values  # [M, B] -> [B]
        return q_min - alpha * next_log_prob if self.backup_entropy else q_min

    def __repr__(self) -> str:
        return f"{type(self).__name__}(num_min={self.num_min}, backup_entropy={self.backup_entropy})"


class SmoothedMinNextValue:
    """TD3's next-state value ``V(s') = min_i Q_target_i(s', clip(mu_target(s') + eps, low, high))`` over all critics.

    ``eps`` is the target-policy smoothing noise, ``clip(N(0, sigma^2), -c, c)`` in units of the action box's
    half-width (Fujimoto et al., 2018, Eq. 15; the TD3 code: sigma 0.2, c 0.5), drawn by ``noise``. With two
    critics the min is clipped double-Q (Eq. 10); with one critic and ``sigma = 0`` it is DDPG's
    ``Q_target(s', mu_target(s'))`` (Lillicrap et al., 2016, Alg. 1).

    Args:
        noise: the smoothing noise; ``None`` is TD3's ``GaussianActionNoise(0.2, noise_clip=0.5)``.
    """

    def __init__(self, noise: GaussianActionNoise | None = None) -> None:
        self.noise = noise if noise is not None else GaussianActionNoise(0.2, noise_clip=0.5)

    @no_grad
    def __call__(
        self, actor_target: nn.Module, critic_target: nn.Module, next_obs: Tensor, generator: torch.Generator | None
    ) -> Tensor:
        """``[B]`` values of ``next_obs``; ``actor_target`` has ``scale``, ``low``, ``high`` (a DeterministicActor)."""
        next_action = self.noise(actor_target(next_obs), actor_target.scale, actor_target.low, actor_target.high,
                                 generator)
        return critic_target(next_obs, next_action).min(dim=0).values  # [N, B] -> [B]

    def __repr__(self) -> str:
        return f"{type(self).__name__}(noise={self.noise!r})"
