"""Initialisation schemes of the actor-critic reference codes, one switch (``agent.init`` of REDQ and IQL).

* ``"torch"``: PyTorch's default (``U(-1/sqrt(in), 1/sqrt(in))`` for weights and biases), qlearn's default.
* ``"xavier_uniform"``: the REDQ code's ``weights_init_`` (watchernyu/REDQ ``redq/algos/core.py``, also the DroQ
  authors' copy of it): every linear weight from Glorot & Bengio's (2010) uniform with gain 1, every bias 0. The
  policy's mean and log-std layers are separate ``Linear(hidden, A)`` there, so each half of qlearn's fused
  ``Linear(hidden, 2A)`` head gets the bound of a ``(hidden, A)`` layer.
* ``"edac"``: CORL's ``sac_n.py`` / ``edac.py`` ("init as in the EDAC paper", An et al., 2021): PyTorch's default
  weights, hidden biases 0.1, the critics' output layer (weight and bias) ``U(-3e-3, 3e-3)``, the policy's mean and
  log-std layers (weight and bias) ``U(-1e-3, 1e-3)``.
* ``"orthogonal"``: the IQL authors' JAX code (ikostrikov/implicit_q_learning ``common.py`` ``default_init``): every
  weight orthogonal with gain sqrt(2), output layers included, every bias 0 (Flax's default).

A value network (IQL's) is treated as a critic member: Xavier-uniform / zero biases, or biases 0.1 and a
``U(-3e-3, 3e-3)`` output layer, or orthogonal.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from qlearn.networks.ensemble import EnsembleLinear

ACTOR_CRITIC_INITS = ("torch", "xavier_uniform", "edac", "orthogonal")
Linear = nn.Linear | EnsembleLinear


@torch.no_grad()
def init_actor_critic(actor: nn.Module, critic: nn.Module, scheme: str, value: nn.Module | None = None) -> None:
    """Re-initialise ``actor``, ``critic`` (and ``value``) in place with ``scheme`` (one of :data:`ACTOR_CRITIC_INITS`).

    ``actor``'s last linear layer is its output (``TanhGaussianActor.head``, mean and log-std rows; a Gaussian or
    categorical actor's head); an :class:`EnsembleLinear` is initialised member by member, as separate layers."""
    if scheme not in ACTOR_CRITIC_INITS:
        raise ValueError(f"unknown init {scheme!r}; choose one of {list(ACTOR_CRITIC_INITS)}")
    if scheme == "torch":
        return
    critics = [critic] if value is None else [critic, value]
    *actor_hidden, actor_out = _linears(actor)
    if scheme == "orthogonal":
        for layer in [*actor_hidden, actor_out, *(m for c in critics for m in _linears(c))]:
            for weight in _member_weights(layer):
                nn.init.orthogonal_(weight, gain=math.sqrt(2.0))
            layer.bias.zero_()
    elif scheme == "xavier_uniform":
        for layer in [*actor_hidden, *(m for c in critics for m in _linears(c))]:
            xavier_zero_bias(layer)
        # the REDQ policy's mean and log-std are separate Linear(hidden, A): each half of a fused head gets that bound
        action_dim = getattr(actor, "action_dim", actor_out.out_features)
        _uniform(actor_out.weight, _xavier_bound(actor_out.in_features, action_dim))
        actor_out.bias.zero_()
    else:  # "edac"
        for c in critics:
            *hidden, output = _linears(c)
            for layer in hidden:
                layer.bias.fill_(0.1)
            _uniform(output.weight, 3e-3)
            _uniform(output.bias, 3e-3)
        for layer in actor_hidden:
            layer.bias.fill_(0.1)
        _uniform(actor_out.weight, 1e-3)
        _uniform(actor_out.bias, 1e-3)


def xavier_zero_bias(layer: nn.Linear | nn.Conv2d | EnsembleLinear) -> None:
    """Glorot & Bengio's (2010) uniform weights (gain 1) and zero biases; an :class:`EnsembleLinear` member by member
    (each with the bound of its own ``Linear(in, out)``)."""
    if isinstance(layer, EnsembleLinear):
        _uniform(layer.weight, _xavier_bound(layer.in_features, layer.out_features))
    else:
        nn.init.xavier_uniform_(layer.weight)
    nn.init.zeros_(layer.bias)


DOPAMINE_FAN_IN_SCALE = 1.0 / math.sqrt(3.0)  # Dopamine's RainbowNetwork, QuantileNetwork, ImplicitQuantileNetwork


def fan_in_uniform_zero_bias(layer: nn.Linear | nn.Conv2d, scale: float = DOPAMINE_FAN_IN_SCALE) -> None:
    """Weights from ``U(-b, b)``, ``b = sqrt(3 scale / fan_in)`` (variance ``scale / fan_in``), zero biases: Flax's
    ``variance_scaling(scale, "fan_in", "uniform")`` with its zero bias; ``scale = 1/sqrt(3)`` is Dopamine's C51,
    QR-DQN and IQN networks' (google/dopamine @5873f54, dopamine/jax/networks.py)."""
    fan_in = layer.weight[0].numel()  # in_features, or in_channels x kernel height x kernel width
    _uniform(layer.weight, math.sqrt(3.0 * scale / fan_in))
    nn.init.zeros_(layer.bias)


def _linears(module: nn.Module) -> list[Linear]:
    """The linear layers of ``module``, input to output (registration order)."""
    return [m for m in module.modules() if isinstance(m, (nn.Linear, EnsembleLinear))]


def _member_weights(layer: Linear) -> list[Tensor]:
    """One 2-D weight per member: ``[out, in]`` for ``nn.Linear``, ``[in, out]`` slices of an ensemble's ``[N, in, out]``."""
    return [layer.weight] if isinstance(layer, nn.Linear) else list(layer.weight.unbind(0))


def _xavier_bound(fan_in: int, fan_out: int) -> float:
    return math.sqrt(6.0 / (fan_in + fan_out))


def _uniform(tensor: Tensor, bound: float) -> None:
    nn.init.uniform_(tensor, -bound, bound)
