"""Neural-network building blocks: MLPs, observation encoders and Q-networks."""

from __future__ import annotations

from qlearn.networks.encoders import MLPEncoder, NatureCNN
from qlearn.networks.mlp import MLP, hidden_layers, resolve_activation
from qlearn.networks.q import DuelingHead, QNetwork, build_q_network

__all__ = [
    "MLP",
    "DuelingHead",
    "MLPEncoder",
    "NatureCNN",
    "QNetwork",
    "build_q_network",
    "hidden_layers",
    "resolve_activation",
]
