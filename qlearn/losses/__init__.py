"""Loss functions: pure functions of tensors, each with its paper equation in the docstring."""

from __future__ import annotations

from qlearn.losses.cql import CQLPenalty, ContinuousCQLPenalty, cql_continuous_penalty, cql_discrete_penalty
from qlearn.losses.deterministic import deterministic_actor_loss, td3_bc_actor_loss
from qlearn.losses.distributional import categorical_projection, quantile_huber_loss
from qlearn.losses.edac import EnsembleGradientDiversity, gradient_diversity
from qlearn.losses.iql import awr_actor_loss, awr_weights, expectile_loss
from qlearn.losses.sac import sac_actor_loss, temperature_loss
from qlearn.losses.td import ensemble_td_loss, td_loss

__all__ = [
    "CQLPenalty",
    "ContinuousCQLPenalty",
    "EnsembleGradientDiversity",
    "awr_actor_loss",
    "awr_weights",
    "categorical_projection",
    "cql_continuous_penalty",
    "cql_discrete_penalty",
    "deterministic_actor_loss",
    "ensemble_td_loss",
    "expectile_loss",
    "gradient_diversity",
    "quantile_huber_loss",
    "sac_actor_loss",
    "td3_bc_actor_loss",
    "td_loss",
    "temperature_loss",
]
