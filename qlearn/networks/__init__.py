"""Neural-network building blocks: MLPs, encoders, Q-networks, critic ensembles and actors."""

from __future__ import annotations

from qlearn.networks.actors import (
    CategoricalActor,
    DeterministicActor,
    GaussianActor,
    TanhGaussianActor,
    tanh_gaussian_log_prob,
)
from qlearn.networks.encoders import MLPEncoder, NatureCNN
from qlearn.networks.ensemble import DiscreteQEnsemble, EnsembleLayerNorm, EnsembleLinear, EnsembleMLP, QEnsemble
from qlearn.networks.init_schemes import ACTOR_CRITIC_INITS, init_actor_critic
from qlearn.networks.mlp import MLP, hidden_layers, mlp_settings, resolve_activation
from qlearn.networks.q import DuelingHead, QNetwork, build_q_network

__all__ = [
    "EnsembleLayerNorm",
    "EnsembleLinear",
    "QEnsemble",
    "DiscreteQEnsemble",
    "EnsembleMLP",
    "TanhGaussianActor",
    "GaussianActor",
    "CategoricalActor",
    "DeterministicActor",
    "tanh_gaussian_log_prob",
    "ACTOR_CRITIC_INITS",
    "init_actor_critic",
    "MLP",
    "DuelingHead",
    "MLPEncoder",
    "NatureCNN",
    "QNetwork",
    "build_q_network",
    "hidden_layers",
    "mlp_settings",
    "resolve_activation",
]
