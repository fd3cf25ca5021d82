"""Multi-layer perceptrons, with optional LayerNorm and dropout per hidden layer (DroQ)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from torch import Tensor, nn

from qlearn.errors import QlearnError
from qlearn.networks.noisy import LinearFactory

_ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "elu": nn.ELU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "leaky_relu": nn.LeakyReLU,
}


def resolve_activation(activation: str | type[nn.Module]) -> type[nn.Module]:
    """Turn an activation name (``"relu"``, ``"tanh"``, ...) or an ``nn.Module`` class into a class.

    Raises:
        ValueError: for an unknown name or something that is not an ``nn.Module`` subclass.
    """
    if isinstance(activation, str):
        try:
            return _ACTIVATIONS[activation.lower()]
        except KeyError:
            raise ValueError(
                f"unknown activation {activation!r}; choose one of {sorted(_ACTIVATIONS)} "
                "or pass an nn.Module class"
            ) from None
    if isinstance(activation, type) and issubclass(activation, nn.Module):
        return activation
    raise ValueError(f"activation must be a name or an nn.Module class, got {activation!r}")


def hidden_layers(
    in_dim: int,
    hidden_sizes: Sequence[int],
    activation: str | type[nn.Module] = "relu",
    layer_norm: bool = False,
    dropout: float = 0.0,
    linear: LinearFactory = nn.Linear,
) -> list[nn.Module]:
    """The hidden blocks of an MLP, each ``Linear -> [Dropout] -> [LayerNorm] -> activation``.

    The order inside a block is the one of DroQ (Hiraoka et al., 2022, "Dropout Q-Functions for
    Doubly Efficient Reinforcement Learning", Sec. 3 / Fig. 1): dropout right after the weight
    layer, then layer normalisation, then the nonlinearity.

    Args:
        in_dim: size of the input features.
        hidden_sizes: width of each hidden layer, in order; may be empty.
        activation: nonlinearity after each hidden layer.
        layer_norm: add ``nn.LayerNorm`` to each hidden block.
        dropout: drop probability of the ``nn.Dropout`` in each hidden block; 0 adds none.
        linear: the weight layer's class (``nn.Linear``, or :class:`qlearn.networks.noisy.NoisyLinear`).
    """
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout}")
    act = resolve_activation(activation)
    layers: list[nn.Module] = []
    width = in_dim
    for size in hidden_sizes:
        layers.append(linear(width, size))
        if dropout > 0.0:
            layers.append(nn.Dropout(dropout))
        if layer_norm:
            layers.append(nn.LayerNorm(size))
        layers.append(act())
        width = size
    return layers


class MLP(nn.Module):
    """Fully connected network ``[B, in_dim] -> [B, out_dim]``; the output layer is linear.

    Each hidden layer is ``Linear -> Dropout -> LayerNorm -> activation`` (DroQ order, see
    :func:`hidden_layers`); dropout and LayerNorm are left out when disabled and are never put on
    the output layer. DroQ's critic is ``MLP(..., layer_norm=True, dropout=0.01)``
    (Hiraoka et al., 2022).

    Args:
        in_dim: input features.
        out_dim: output features.
        hidden_sizes: width of each hidden layer.
        activation: nonlinearity name or ``nn.Module`` class.
        layer_norm: LayerNorm in each hidden layer.
        dropout: dropout probability in each hidden layer (active only in ``train()`` mode).
        linear: the class of every weight layer (``NoisyLinear`` for noisy nets).
    """

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        hidden_sizes: Sequence[int] = (256, 256),
        activation: str | type[nn.Module] = "relu",
        layer_norm: bool = False,
        dropout: float = 0.0,
        linear: LinearFactory = nn.Linear,
    ) -> None:
        super().__init__()
        self.in_dim = int(in_dim)
        self.out_dim = int(out_dim)
        last = hidden_sizes[-1] if len(hidden_sizes) > 0 else in_dim
        self.net = nn.Sequential(
            *hidden_layers(in_dim, hidden_sizes, activation, layer_norm, dropout, linear),
            linear(last, out_dim),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)  # [B, in_dim] -> [B, out_dim]


def mlp_settings(network: Mapping[str, Any] | None, owner: str) -> tuple[tuple[int, ...], str]:
    """``(hidden_sizes, activation)`` from a ``network`` config (the ``network`` group: kind, hidden_sizes,
    activation, dueling, init, noisy) for an agent whose networks are MLPs; refuses settings it cannot honour."""
    network = dict(network or {})
    kind = network.pop("kind", "mlp")
    if kind not in ("mlp", "auto"):
        raise QlearnError(f"{owner} builds MLP networks on flat observations; network.kind={kind!r} is not supported "
                          "(use network=mlp).")
    if network.pop("dueling", False):
        raise QlearnError(f"{owner} has no Q-head over discrete actions to make dueling: set network.dueling=false.")
    if network.pop("noisy", False) or network.pop("noisy_sigma0", None) is not None:
        raise QlearnError(f"{owner} explores without noisy layers: set network.noisy=false and leave "
                          "network.noisy_sigma0 unset.")
    if (init := network.pop("init", "torch")) != "torch":
        raise QlearnError(f"network.init={init!r} does not reach {owner}'s networks: set network.init=torch "
                          "(REDQ/SAC/DroQ and IQL choose theirs with agent.init).")
    hidden_sizes = tuple(int(h) for h in network.pop("hidden_sizes", (256, 256)))
    activation = str(network.pop("activation", "relu"))
    if network:
        raise QlearnError(f"network.{sorted(network)[0]} is not a setting of {owner}'s MLPs (hidden_sizes, activation).")
    return hidden_sizes, activation
