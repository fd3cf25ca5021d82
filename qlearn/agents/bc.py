"""Behaviour cloning: maximum likelihood of the dataset's actions, the baseline every offline agent must beat."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Literal

import torch.nn.functional as F
from torch import Tensor, nn

from qlearn.agents.base import Agent
from qlearn.agents.saving import records_build
from qlearn.networks.actors import CategoricalActor, GaussianActor
from qlearn.networks.mlp import mlp_settings
from qlearn.optim import OptimizerFactory, adam
from qlearn.types import Batch, EnvSpec, Metrics
from qlearn.utils import no_grad

DEFAULT_LR = 3e-4


class BC(Agent):
    """Behaviour cloning: ``L = -mean log pi(a_data | s)`` (Pomerleau, 1991; Ross & Bagnell, 2010).

    This is IQL's actor loss with every advantage weight equal to 1 (temperature 0), on the same
    actors: :class:`GaussianActor` (continuous; the loss is a Gaussian negative log-likelihood) or
    :class:`CategoricalActor` (discrete; cross-entropy). Evaluation acts with the mean / argmax.

    Args:
        actor: module with ``log_prob(obs, action) -> [B]`` and ``act(obs, deterministic)``.
        optimizer: factory called with the actor's parameters.
        loss: ``"log_likelihood"`` (default, the negative log-likelihood above) or ``"mse"``: the deterministic
            regression ``mean_{B, A} (mu(s) - a_data)^2`` of the policy's mean action, CORL's
            ``any_percent_bc.py`` (a tanh actor trained with ``F.mse_loss``); continuous actors only (it needs
            ``actor.distribution(obs) -> (mean, std)``), and the std is not trained.
    """

    def __init__(self, actor: nn.Module, *, optimizer: OptimizerFactory | None = None,
                 loss: Literal["log_likelihood", "mse"] = "log_likelihood") -> None:
        super().__init__()
        if loss not in ("log_likelihood", "mse"):
            raise ValueError(f"loss must be 'log_likelihood' or 'mse', got {loss!r}")
        if loss == "mse" and not hasattr(actor, "distribution"):
            raise ValueError(f"loss='mse' regresses a continuous policy's mean action; {type(actor).__name__} has none "
                             "(use loss='log_likelihood' for discrete actions)")
        self.actor, self.loss = actor, loss
        self.optimizers = {"actor": (optimizer or adam(DEFAULT_LR))(self.actor.parameters())}

    @classmethod
    @records_build  # a call with plain settings is remembered, so agent.save() can rebuild it
    def from_spec(
        cls,
        spec: EnvSpec,
        *,
        network: Mapping[str, Any] | None = None,
        dropout: float = 0.0,
        lr: float = DEFAULT_LR,
        **kwargs: Any,
    ) -> BC:
        """A Gaussian (continuous) or softmax (discrete) MLP policy for ``spec``."""
        hidden_sizes, activation = mlp_settings(network, "BC")
        obs_dim = int(math.prod(spec.obs_shape))
        actor: nn.Module
        if spec.discrete:
            assert spec.num_actions is not None
            actor = CategoricalActor(obs_dim, spec.num_actions, hidden_sizes, activation, dropout)
        else:
            assert spec.action_low is not None and spec.action_high is not None
            actor = GaussianActor(obs_dim, spec.action_low, spec.action_high, hidden_sizes, activation, dropout)
        return cls(actor, optimizer=adam(lr), **kwargs)

    @no_grad
    def act(self, obs: Tensor, deterministic: bool = False) -> Tensor:
        return self.actor.act(obs, deterministic=deterministic)

    def update(self, batch: Batch) -> Metrics:
        if self.loss == "mse":
            mean, _ = self.actor.distribution(batch.obs)
            loss = F.mse_loss(mean, batch.action.to(mean.dtype))
        else:
            loss = -self.actor.log_prob(batch.obs, batch.action).mean()
        self._step("actor", loss)
        self._count_update()
        return {"train/loss": loss.detach()}
