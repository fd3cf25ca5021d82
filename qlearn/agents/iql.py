"""IQL template: expectile value, TD critic toward V(s'), advantage-weighted actor; continuous or discrete."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Literal

import torch
from torch import Tensor, nn

from qlearn.agents.base import Agent
from qlearn.agents.saving import records_build
from qlearn.losses.iql import awr_actor_loss, awr_weights, expectile_loss
from qlearn.losses.td import ensemble_td_loss
from qlearn.networks.actors import CategoricalActor, GaussianActor
from qlearn.networks.ensemble import DiscreteQEnsemble, QEnsemble
from qlearn.networks.init_schemes import init_actor_critic
from qlearn.networks.mlp import MLP, mlp_settings
from qlearn.optim import OptimizerFactory, adam
from qlearn.targets import td_target
from qlearn.types import Batch, EnvSpec, Metrics
from qlearn.updaters import PolyakUpdate, make_target
from qlearn.utils import no_grad

DEFAULT_LR = 3e-4  # Kostrikov et al., 2022, reference configs/mujoco_config.py (actor, value and critic)


class IQL(Agent):
    """Implicit Q-learning (Kostrikov et al., 2022, "Offline RL with Implicit Q-Learning", Alg. 1).

    One ``update(batch)`` does, in the reference code's order (``learner.py``):

    1. value: ``L_V = expectile_loss(min_i Q_target_i(s, a) - V(s), expectile)`` (Eq. 5);
    2. actor: ``L_pi = -mean min(exp(temperature * (min_i Q_target_i(s, a) - V(s))), max_weight) log pi(a|s)``
       with the updated V (Eq. 7, advantage-weighted regression);
    3. critic: ``L_Q = sum_i mean (Q_i(s, a) - (r + gamma (1 - d) V(s')))^2`` with the updated V (Eq. 6);
    4. Polyak update of the target critics.

    Only dataset actions are ever evaluated, so no out-of-distribution action is queried. The
    critic may be a :class:`QEnsemble` (continuous) or a :class:`DiscreteQEnsemble` (discrete): both
    map ``(obs, action)`` to ``[N, B]``; the actor needs ``log_prob(obs, action)`` and ``act``.

    Args:
        actor: :class:`GaussianActor` or :class:`CategoricalActor` (any module with ``log_prob``/``act``).
        critic: ensemble ``(obs, action) -> [N, B]`` (two critics in the paper).
        value: module ``obs -> [B, 1]`` (or ``[B]``).
        expectile: IQL's tau (0.7 on MuJoCo locomotion, 0.9 on AntMaze).
        temperature: IQL's inverse temperature beta (3.0 locomotion, 10.0 AntMaze).
        max_weight: clip of the advantage weights (100 in the reference code).
        gamma: discount.
        target_updater: Polyak by default (tau 0.005).
        critic_optimizer: factory called with the critics' parameters (likewise the two below).
        value_optimizer: factory for the value network's optimizer.
        actor_optimizer: factory for the actor's optimizer.
        actor_lr_decay_steps: cosine-decay the actor's learning rate to 0 over this many updates (the
            reference decays over its 1M steps); ``None`` keeps it constant.
        value_before_step: ``False`` (the authors' order): the advantage and ``V(s')`` come from the value
            network after this update's value step. ``True``: both come from V as it was before the step, as in
            CORL's ``iql.py`` and gwthomas/IQL-PyTorch (one value forward pass fewer).
        critic_loss_reduction: ``"sum"`` over the critics (each member's own MSE, as the authors' code) or
            ``"mean"`` (CORL's ``sum(mse) / len(qs)``: half the gradient with two critics).
    """

    def __init__(
        self,
        actor: nn.Module,
        critic: nn.Module,
        value: nn.Module,
        *,
        expectile: float = 0.7,
        temperature: float = 3.0,
        max_weight: float = 100.0,
        gamma: float = 0.99,
        target_updater: PolyakUpdate | None = None,
        critic_optimizer: OptimizerFactory | None = None,
        value_optimizer: OptimizerFactory | None = None,
        actor_optimizer: OptimizerFactory | None = None,
        actor_lr_decay_steps: int | None = None,
        value_before_step: bool = False,
        critic_loss_reduction: Literal["sum", "mean"] = "sum",
    ) -> None:
        super().__init__()
        if not 0.0 < expectile < 1.0:
            raise ValueError(f"expectile must be in (0, 1), got {expectile}")
        if temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {temperature}")
        self.actor, self.critic, self.value = actor, critic, value
        self.critic_target = make_target(critic)
        self.expectile, self.temperature, self.max_weight = float(expectile), float(temperature), float(max_weight)
        self.gamma = float(gamma)
        if critic_loss_reduction not in ("sum", "mean"):
            raise ValueError(f"critic_loss_reduction must be 'sum' or 'mean', got {critic_loss_reduction!r}")
        self.value_before_step, self.critic_loss_reduction = bool(value_before_step), critic_loss_reduction
        self.target_updater = target_updater if target_updater is not None else PolyakUpdate(0.005)
        self.optimizers = {
            "value": (value_optimizer or adam(DEFAULT_LR))(self.value.parameters()),
            "actor": (actor_optimizer or adam(DEFAULT_LR))(self.actor.parameters()),
            "critic": (critic_optimizer or adam(DEFAULT_LR))(self.critic.parameters()),
        }
        self.actor_scheduler: torch.optim.lr_scheduler.LRScheduler | None = None
        if actor_lr_decay_steps is not None:
            self.actor_scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
                self.optimizers["actor"], T_max=max(1, int(actor_lr_decay_steps))
            )

    @classmethod
    @records_build  # a call with plain settings is remembered, so agent.save() can rebuild it
    def from_spec(
        cls,
        spec: EnvSpec,
        *,
        network: Mapping[str, Any] | None = None,
        num_q: int = 2,
        actor_dropout: float = 0.0,
        lr: float = DEFAULT_LR,
        actor_lr: float | None = None,
        value_lr: float | None = None,
        init: str = "torch",
        **kwargs: Any,
    ) -> IQL:
        """Two critics, a value MLP and a Gaussian (continuous) or softmax (discrete) actor for ``spec``, all MLPs
        of ``network = {"hidden_sizes", "activation"}``, initialised by ``init`` (:func:`qlearn.networks.
        init_actor_critic`; ``"orthogonal"`` is the IQL authors'); other keywords (``target_updater``, ...) go to
        the constructor."""
        hidden_sizes, activation = mlp_settings(network, "IQL")
        obs_dim = int(math.prod(spec.obs_shape))
        actor: nn.Module
        critic: nn.Module
        if spec.discrete:
            assert spec.num_actions is not None
            actor = CategoricalActor(obs_dim, spec.num_actions, hidden_sizes, activation, actor_dropout)
            critic = DiscreteQEnsemble(obs_dim, spec.num_actions, num_q, hidden_sizes, activation)
        else:
            assert spec.action_low is not None and spec.action_high is not None
            actor = GaussianActor(obs_dim, spec.action_low, spec.action_high, hidden_sizes, activation, actor_dropout)
            critic = QEnsemble(obs_dim, int(math.prod(spec.action_shape)), num_q, hidden_sizes, activation)
        value = MLP(obs_dim, 1, hidden_sizes, activation)
        init_actor_critic(actor, critic, init, value=value)
        return cls(
            actor,
            critic,
            value,
            critic_optimizer=adam(lr),
            value_optimizer=adam(lr if value_lr is None else value_lr),
            actor_optimizer=adam(lr if actor_lr is None else actor_lr),
            **kwargs,
        )

    @no_grad
    def act(self, obs: Tensor, deterministic: bool = False) -> Tensor:
        """The policy's mean / argmax action (deterministic) or a sample."""
        return self.actor.act(obs, deterministic=deterministic)

    def _value(self, obs: Tensor) -> Tensor:
        return self.value(obs.flatten(1)).reshape(-1)  # [B]

    def update(self, batch: Batch) -> Metrics:
        with torch.no_grad():
            q_target = self.critic_target(batch.obs, batch.action).min(dim=0).values  # [B]
            if self.value_before_step:
                next_v = self._value(batch.next_obs)
        residual = q_target - self._value(batch.obs)
        value_loss = expectile_loss(residual, self.expectile)
        self._step("value", value_loss)

        if self.value_before_step:
            advantage = residual.detach()
        else:
            with torch.no_grad():
                advantage = q_target - self._value(batch.obs)
                next_v = self._value(batch.next_obs)
        weights = awr_weights(advantage, self.temperature, self.max_weight)
        actor_loss = awr_actor_loss(self.actor.log_prob(batch.obs, batch.action), weights)
        self._step("actor", actor_loss)
        if self.actor_scheduler is not None:
            self.actor_scheduler.step()

        discount = self.gamma if batch.discount is None else batch.discount
        y = td_target(batch.reward, batch.terminated, next_v, discount)
        q = self.critic(batch.obs, batch.action)  # [N, B]
        critic_loss = ensemble_td_loss(q, y, kind="mse", weight=batch.weight)
        if self.critic_loss_reduction == "mean":
            critic_loss = critic_loss / q.shape[0]
        self._step("critic", critic_loss)

        self._count_update()
        self.target_updater(self.critic, self.critic_target, self.num_updates)
        metrics: Metrics = {
            "train/loss": critic_loss.detach(),
            "train/q_mean": q.detach().mean(),
            "train/value_loss": value_loss.detach(),
            "train/actor_loss": actor_loss.detach(),
            "train/advantage_mean": advantage.mean(),
            "train/weight_mean": weights.mean(),
        }
        if batch.weight is not None:
            metrics["td_error"] = (q.detach().mean(dim=0) - y).abs()
        return metrics

    def get_extra_state(self) -> dict[str, Any]:
        state = super().get_extra_state()
        state["actor_scheduler"] = self.actor_scheduler.state_dict() if self.actor_scheduler is not None else None
        return state

    def set_extra_state(self, state: dict[str, Any]) -> None:
        super().set_extra_state(state)
        if self.actor_scheduler is not None and state.get("actor_scheduler") is not None:
            self.actor_scheduler.load_state_dict(state["actor_scheduler"])
