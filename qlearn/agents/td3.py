"""Deterministic-policy template: TD3, DDPG and TD3+BC are settings of the same agent."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from qlearn.agents.base import Agent, continuous_sizes
from qlearn.agents.saving import records_build
from qlearn.exploration import GaussianActionNoise
from qlearn.losses.deterministic import deterministic_actor_loss, td3_bc_actor_loss
from qlearn.losses.td import ensemble_td_loss
from qlearn.networks.actors import DeterministicActor
from qlearn.networks.ensemble import QEnsemble
from qlearn.networks.mlp import mlp_settings
from qlearn.optim import OptimizerFactory, adam
from qlearn.targets import SmoothedMinNextValue, td_target
from qlearn.types import Batch, EnvSpec, Metrics
from qlearn.updaters import PolyakUpdate, make_target
from qlearn.utils import no_grad

DEFAULT_LR = 3e-4  # the TD3 code (sfujim/TD3, TD3.py and OurDDPG.py): Adam 3e-4 for actor and critic


class TD3(Agent):
    """Twin Delayed DDPG (Fujimoto et al., 2018, Alg. 1); DDPG and TD3+BC are its settings.

    One ``update(batch)`` call is one critic step; every ``policy_delay`` calls the actor steps too, and the
    ``target_updater`` moves the target critic and the target actor on its own schedule (TD3: both every
    ``policy_delay`` calls, tau 0.005).

    * critic: ``y = r + discount (1 - d) V(s')`` with ``V`` the ``next_value`` block, by default
      ``min_i Q_target_i(s', clip(mu_target(s') + eps))`` (clipped double-Q with target-policy smoothing,
      Eq. 10 and 15); ``L = sum_i mean_B (Q_i(s, a) - y)^2`` (the TD3 code's sum of two MSEs).
    * actor: ``-mean_B Q_1(s, mu(s))`` on the just-updated critic (the first critic only, as the paper and code),
      or TD3+BC's ``-lambda mean Q_1 + mean (mu(s) - a)^2`` when ``bc_alpha`` is set (Fujimoto & Gu, 2021).
    * acting: ``mu(s)`` plus ``exploration_noise`` in training, ``mu(s)`` when deterministic.

    DDPG ("OurDDPG" of the TD3 paper, Sec. 6.1: DDPG with TD3's networks, learning rate, batch and start steps)
    is one critic, no smoothing noise, ``policy_delay=1`` and a target update every call.

    Args:
        actor: a :class:`DeterministicActor` (``obs -> action``, with ``scale``, ``low``, ``high`` buffers).
        critic: :class:`QEnsemble` ``(obs, action) -> [N, B]``; N = 2 for TD3, 1 for DDPG.
        next_value: the bootstrapped value; ``None`` is TD3's :class:`SmoothedMinNextValue`.
        exploration_noise: noise added to ``mu(s)`` when acting in training; ``None`` is sigma 0.1 (Sec. 6.1).
        policy_delay: the actor steps every this many critic steps (d = 2, Sec. 5.2).
        gamma: discount for one-step batches.
        target_updater: moves both targets; its ``every`` counts critic steps.
        critic_optimizer: factory called with the critics' parameters.
        actor_optimizer: factory called with the actor's parameters.
        bc_alpha: ``None`` for TD3/DDPG; TD3+BC's alpha (2.5) to add its behaviour-cloning term (offline).
    """

    def __init__(
        self,
        actor: DeterministicActor,
        critic: QEnsemble,
        *,
        next_value: SmoothedMinNextValue | None = None,
        exploration_noise: GaussianActionNoise | None = None,
        policy_delay: int = 2,
        gamma: float = 0.99,
        target_updater: PolyakUpdate | None = None,
        critic_optimizer: OptimizerFactory | None = None,
        actor_optimizer: OptimizerFactory | None = None,
        bc_alpha: float | None = None,
    ) -> None:
        super().__init__()
        if int(policy_delay) != policy_delay or policy_delay < 1:
            raise ValueError(f"policy_delay must be an integer >= 1, got {policy_delay}")
        if bc_alpha is not None and bc_alpha <= 0:
            raise ValueError(f"bc_alpha must be > 0 (TD3+BC uses 2.5) or null (TD3, DDPG), got {bc_alpha}")
        self.actor = actor
        self.critic = critic
        self.actor_target = make_target(actor)
        self.critic_target = make_target(critic)
        self.next_value = next_value if next_value is not None else SmoothedMinNextValue()
        self.exploration_noise = exploration_noise if exploration_noise is not None else GaussianActionNoise(0.1)
        self.policy_delay = int(policy_delay)
        self.gamma = float(gamma)
        self.target_updater = target_updater if target_updater is not None else PolyakUpdate(0.005, every=2)
        self.bc_alpha = None if bc_alpha is None else float(bc_alpha)
        self.optimizers = {
            "critic": (critic_optimizer or adam(DEFAULT_LR))(self.critic.parameters()),
            "actor": (actor_optimizer or adam(DEFAULT_LR))(self.actor.parameters()),
        }
        self.register_buffer("_first_critic", torch.zeros(1, dtype=torch.long), persistent=False)  # Q_1's index
        self._actor_metrics: Metrics = {}

    @classmethod
    @records_build  # a call with plain settings is remembered, so agent.save() can rebuild it
    def from_spec(
        cls,
        spec: EnvSpec,
        *,
        network: Mapping[str, Any] | None = None,
        num_q: int = 2,
        actor_hidden_sizes: Sequence[int] | None = None,
        lr: float = DEFAULT_LR,
        actor_lr: float | None = None,
        **kwargs: Any,
    ) -> TD3:
        """Build a deterministic tanh actor and an N-critic ensemble (MLPs on flat obs) for ``spec``.

        ``network``: ``{"hidden_sizes", "activation"}`` (default 256-256 ReLU, the TD3 code's); ``actor_lr``
        defaults to ``lr``. The other keywords (``next_value``, ``policy_delay``, ``bc_alpha``, ...) go to the
        constructor.
        """
        obs_dim, action_dim = continuous_sizes(spec, "TD3/DDPG/TD3+BC")
        hidden_sizes, activation = mlp_settings(network, "TD3/DDPG")
        actor = DeterministicActor(
            obs_dim, spec.action_low, spec.action_high,
            hidden_sizes=hidden_sizes if actor_hidden_sizes is None else actor_hidden_sizes,
            activation=activation,
        )
        critic = QEnsemble(obs_dim, action_dim, num_q, hidden_sizes, activation)
        return cls(actor, critic, critic_optimizer=adam(lr), actor_optimizer=adam(lr if actor_lr is None else actor_lr),
                   **kwargs)

    @no_grad
    def act(self, obs: Tensor, deterministic: bool = False) -> Tensor:
        """Actions ``[E, A]`` in the env's bounds: ``mu(s)``, plus exploration noise unless deterministic."""
        action = self.actor(obs)
        if deterministic:
            return action
        return self.exploration_noise(action, self.actor.scale, self.actor.low, self.actor.high)

    def update(self, batch: Batch) -> Metrics:
        next_v = self.next_value(self.actor_target, self.critic_target, batch.next_obs, None)  # [B]
        discount = self.gamma if batch.discount is None else batch.discount
        y = td_target(batch.reward, batch.terminated, next_v, discount).detach()  # [B]
        q = self.critic(batch.obs, batch.action)  # [N, B]
        critic_loss = ensemble_td_loss(q, y, kind="mse", weight=batch.weight)
        self._step("critic", critic_loss)
        if self._count_update() % self.policy_delay == 0:
            self._actor_metrics = self._update_actor(batch)
        self.target_updater(self.critic, self.critic_target, self.num_updates)
        self.target_updater(self.actor, self.actor_target, self.num_updates)
        metrics: Metrics = {
            "train/critic_loss": critic_loss.detach(),
            "train/loss": critic_loss.detach(),
            "train/q_mean": q.detach().mean(),
            **self._actor_metrics,
        }
        if batch.weight is not None:  # prioritized replay: |delta| of the ensemble mean as the priority
            metrics["td_error"] = (q.detach().mean(dim=0) - y).abs()
        return metrics

    def _update_actor(self, batch: Batch) -> Metrics:
        """One actor step on ``-Q_1(s, mu(s))`` (or TD3+BC's loss); the critic's weights get no gradient."""
        self.critic.requires_grad_(False)
        try:
            action = self.actor(batch.obs)
            q1 = self.critic(batch.obs, action, members=self._first_critic)[0]  # [B]
            if self.bc_alpha is None:
                loss = deterministic_actor_loss(q1)
            else:
                loss = td3_bc_actor_loss(q1, action, batch.action, self.bc_alpha)
            self._step("actor", loss)
        finally:
            self.critic.requires_grad_(True)
        return {"train/actor_loss": loss.detach()}
