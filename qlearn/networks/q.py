"""Discrete-action Q-networks: encoder + head, ``obs -> [B, A]``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import Tensor, nn

from qlearn.networks.encoders import NATURE_FC, MLPEncoder, NatureCNN
from qlearn.networks.init_schemes import fan_in_uniform_zero_bias, xavier_zero_bias
from qlearn.networks.mlp import MLP
from qlearn.networks.noisy import LinearFactory, linear_layer


class DuelingHead(nn.Module):
    """Dueling aggregation (Wang et al., 2016, "Dueling Network Architectures for Deep
    Reinforcement Learning", Eq. 9):

        Q(s, a) = V(s) + A(s, a) - 1/|A| * sum_a' A(s, a')

    The mean (not max, Eq. 8) is subtracted, as the paper does in its experiments.

    Args:
        in_dim: feature size coming from the encoder.
        num_actions: number of discrete actions |A|.
        hidden_sizes: hidden widths of *each* stream (value and advantage); empty means each
            stream is a single linear layer on the features. The paper uses one 512-unit layer per
            stream on top of the conv torso.
        activation: nonlinearity in the streams' hidden layers.
    """

    def __init__(
        self,
        in_dim: int,
        num_actions: int,
        hidden_sizes: Sequence[int] = (),
        activation: str | type[nn.Module] = "relu",
        linear: LinearFactory = nn.Linear,
    ) -> None:
        super().__init__()
        self.num_actions = int(num_actions)
        self.value = MLP(in_dim, 1, hidden_sizes, activation, linear=linear)
        self.advantage = MLP(in_dim, num_actions, hidden_sizes, activation, linear=linear)

    def forward(self, features: Tensor) -> Tensor:
        v = self.value(features)  # [B, 1]
        adv = self.advantage(features)  # [B, A]
        return v + adv - adv.mean(dim=-1, keepdim=True)  # [B, A]


class QNetwork(nn.Module):
    """``Q(s, .) = head(encoder(obs))``: ``[B, *obs_shape] -> [B, A]``.

    The encoder handles dtype: non-float observations are cast to float (and, for
    :class:`NatureCNN`, scaled by 1/255), so the network takes observations as the buffer
    stores them.

    Args:
        encoder: maps ``[B, *obs_shape]`` to ``[B, F]``.
        head: maps ``[B, F]`` to ``[B, A]`` (``nn.Linear``, :class:`MLP` or :class:`DuelingHead`).
    """

    def __init__(self, encoder: nn.Module, head: nn.Module) -> None:
        super().__init__()
        self.encoder = encoder
        self.head = head

    def forward(self, obs: Tensor) -> Tensor:
        return self.head(self.encoder(obs))  # [B, *obs_shape] -> [B, F] -> [B, A]

    def distribution(self, obs: Tensor, *args: Tensor) -> Tensor:
        """A distributional head's return distribution ``[B, A, K]`` (``qlearn.networks.distributional``);
        ``args`` are the head's extra inputs (IQN's fractions)."""
        return self.head.distribution(self.encoder(obs), *args)


def build_q_network(
    obs_shape: tuple[int, ...],
    num_actions: int,
    *,
    kind: str = "mlp",
    hidden_sizes: Sequence[int] = (120, 84),
    dueling: bool = False,
    activation: str | type[nn.Module] = "relu",
    padding: str = "valid",
    init: str = "torch",
    noisy: bool = False,
    noisy_sigma0: float | None = None,
    distributional: Any = None,
) -> nn.Module:
    """Build a :class:`QNetwork` for one observation shape and ``num_actions`` actions.

    * ``kind="mlp"``: observations are flattened and pass through ``hidden_sizes`` (the
      (120, 84) default is CleanRL's DQN on classic control), then a linear layer to ``[B, A]``.
    * ``kind="nature_cnn"``: :class:`NatureCNN` on ``[C, 84, 84]`` frames, then a linear layer
      (Mnih et al., 2015); ``hidden_sizes`` is not used.
    * ``kind="auto"``: ``nature_cnn`` for 3-D observations, ``mlp`` otherwise.

    ``padding`` is the CNN's (``"valid"`` or ``"same"``, see :class:`NatureCNN`). ``init="torch"`` keeps
    PyTorch's default initialisation; ``"xavier_uniform"`` draws every weight from Glorot & Bengio's (2010)
    uniform and zeroes the biases (Dopamine's DQN and full-Rainbow JAX networks, ``nn.initializers.xavier_uniform()``
    and Flax's zero bias); ``"fan_in_uniform"`` draws them from ``U(+-sqrt(sqrt(3) / fan_in))`` with zero biases
    (Dopamine's C51, QR-DQN and IQN networks, ``variance_scaling(1/sqrt(3), "fan_in", "uniform")``). Neither
    touches :class:`~qlearn.networks.noisy.NoisyLinear` layers, which keep the paper's initialisation.

    ``noisy=True`` builds every fully connected layer (hidden, fc and output; not the convolutions) as a
    :class:`~qlearn.networks.noisy.NoisyLinear` (Fortunato et al., 2018) with initial noise scale ``noisy_sigma0``
    (``None``: the paper's 0.5). ``distributional`` is a block of
    :mod:`qlearn.distributional` (C51, QR-DQN, IQN) that builds the head; the network's ``forward`` then
    returns expected Q-values and its ``distribution`` the return distribution. IQN's head takes the network's
    last hidden layer (the CNN's fc, the MLP's last ``hidden_sizes`` entry) into its ``f``, after the embedding
    is multiplied in, as the paper (Sec. 4) and Dopamine's ``ImplicitQuantileNetwork`` build it.

    With ``dueling=True`` the last hidden layer (the 512-unit fc for the CNN) feeds a value and an
    advantage stream, each one linear layer, combined by :class:`DuelingHead`. Wang et al. (2016)
    instead give each stream its own 512-unit layer on the conv output; build that by hand with
    ``QNetwork(encoder, DuelingHead(in_dim, num_actions, hidden_sizes=(512,)))``.

    Raises:
        ValueError: for an unknown ``kind`` or a CNN observation shape that is not ``(C, 84, 84)``.
    """
    obs_shape = tuple(int(d) for d in obs_shape)
    if kind == "auto":
        kind = "nature_cnn" if len(obs_shape) == 3 else "mlp"
    encoder: MLPEncoder | NatureCNN
    linear = linear_layer(noisy, noisy_sigma0)
    # IQN multiplies its embedding in before the last hidden layer, which then belongs to the head's f
    head_hidden = getattr(distributional, "takes_last_hidden", False)
    head_sizes: tuple[int, ...] = ()
    if kind == "mlp":
        sizes = tuple(int(h) for h in hidden_sizes)
        if head_hidden and sizes:
            sizes, head_sizes = sizes[:-1], sizes[-1:]
        encoder = MLPEncoder(obs_shape, sizes, activation, linear=linear)
    elif kind == "nature_cnn":
        if len(obs_shape) != 3 or obs_shape[1:] != (84, 84):
            raise ValueError(
                f"nature_cnn expects observations of shape (C, 84, 84), got {obs_shape}"
            )
        encoder = NatureCNN(in_channels=obs_shape[0], feature_dim=None if head_hidden else NATURE_FC,
                            padding=padding, linear=linear)
        if head_hidden:
            head_sizes, activation = (NATURE_FC,), "relu"  # the CNN's fc keeps its ReLU inside f
    else:
        raise ValueError(f"unknown kind {kind!r}; choose 'mlp', 'nature_cnn' or 'auto'")
    head: nn.Module
    if head_hidden:
        head = distributional.head(encoder.output_dim, num_actions, dueling=dueling, linear=linear,
                                   hidden_sizes=head_sizes, activation=activation)
    elif distributional is not None:
        head = distributional.head(encoder.output_dim, num_actions, dueling=dueling, linear=linear)
    elif dueling:
        head = DuelingHead(encoder.output_dim, num_actions, hidden_sizes=(), activation=activation, linear=linear)
    else:
        head = linear(encoder.output_dim, num_actions)
    net = QNetwork(encoder, head)
    schemes = {"torch": None, "xavier_uniform": xavier_zero_bias, "fan_in_uniform": fan_in_uniform_zero_bias}
    if init not in schemes:
        raise ValueError(f"unknown init {init!r}; choose one of {', '.join(map(repr, schemes))}")
    if (initialise := schemes[init]) is not None:
        for module in net.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                initialise(module)
    return net
