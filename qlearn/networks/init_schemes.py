"""Initialisation schemes of the actor-critic reference codes, one switch (``REDQ.from_spec(init=...)``).

* ``"torch"``: PyTorch's default (``U(-1/sqrt(in), 1/sqrt(in))`` for weights and biases), qlearn's default.
* ``"xavier_uniform"``: the REDQ code's ``weights_init_`` (watchernyu/REDQ ``redq/algos/core.py``, also the DroQ
  authors' copy of it): every linear weight from Glorot & Bengio's (2010) uniform with gain 1, every bias 0. The
  policy's mean and log-std layers are separate ``Linear(hidden, A)`` there, so each half of qlearn's fused
  ``Linear(hidden, 2A)`` head gets the bound of a ``(hidden, A)`` layer.
* ``"edac"``: CORL's ``sac_n.py`` / ``edac.py`` ("init as in the EDAC paper", An et al., 2021): PyTorch's default
  weights, hidden biases 0.1, the critics' output layer (weight and bias) ``U(-3e-3, 3e-3)``, the policy's mean and
  log-std layers (weight and bias) ``U(-1e-3, 1e-3)``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from qlearn.networks.actors import TanhGaussianActor
from qlearn.networks.ensemble import QEnsemble

ACTOR_CRITIC_INITS = ("torch", "xavier_uniform", "edac")


@torch.no_grad()
def init_actor_critic(actor: TanhGaussianActor, critic: QEnsemble, scheme: str) -> None:
    """Re-initialise ``actor`` and ``critic`` in place with ``scheme`` (one of :data:`ACTOR_CRITIC_INITS`)."""
    if scheme not in ACTOR_CRITIC_INITS:
        raise ValueError(f"unknown init {scheme!r}; choose one of {list(ACTOR_CRITIC_INITS)}")
    if scheme == "torch":
        return
    critic_layers = critic.linear_layers()
    actor_hidden = [m for m in actor.trunk if isinstance(m, nn.Linear)]
    action_dim = actor.action_dim
    if scheme == "xavier_uniform":
        for layer in critic_layers:  # weight [N, in, out]: the bound of one member's Linear(in, out)
            _uniform(layer.weight, _xavier_bound(layer.in_features, layer.out_features))
            layer.bias.zero_()
        for layer in actor_hidden:
            nn.init.xavier_uniform_(layer.weight)
            layer.bias.zero_()
        head_bound = _xavier_bound(actor.head.in_features, action_dim)
        _uniform(actor.head.weight, head_bound)  # both halves (mean rows, log-std rows) have the same bound
        actor.head.bias.zero_()
    else:  # "edac"
        *hidden, output = critic_layers
        for layer in hidden:
            layer.bias.fill_(0.1)
        _uniform(output.weight, 3e-3)
        _uniform(output.bias, 3e-3)
        for layer in actor_hidden:
            layer.bias.fill_(0.1)
        _uniform(actor.head.weight, 1e-3)
        _uniform(actor.head.bias, 1e-3)


def _xavier_bound(fan_in: int, fan_out: int) -> float:
    return math.sqrt(6.0 / (fan_in + fan_out))


def _uniform(tensor: Tensor, bound: float) -> None:
    nn.init.uniform_(tensor, -bound, bound)
