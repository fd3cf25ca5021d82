"""Observation encoders: obs -> feature vector ``[B, output_dim]``.

Every encoder exposes ``output_dim`` so a head can be sized without a dummy forward pass.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from qlearn.networks.mlp import hidden_layers
from qlearn.networks.noisy import LinearFactory


PIXEL_MAX = 255.0  # uint8 frames: 0..255


def pixels_to_unit(obs: Tensor, dtype: torch.dtype | None = None) -> Tensor:
    """uint8 (any non-float) pixels scaled to [0, 1] as ``dtype`` (default: the default float dtype); a float
    input is taken as already scaled and returned as is."""
    if obs.is_floating_point():
        return obs
    return obs.to(dtype or torch.get_default_dtype()) / PIXEL_MAX


class MLPEncoder(nn.Module):
    """Flatten ``[B, *obs_shape]`` and apply hidden layers whose outputs are all activated.

    Non-float observations (e.g. integer states) are cast to the parameters' float dtype, not
    rescaled. With empty ``hidden_sizes`` this is just a flatten.

    Args:
        obs_shape: shape of one observation.
        hidden_sizes: width of each hidden layer.
        activation: nonlinearity name or ``nn.Module`` class.
        layer_norm: LayerNorm in each hidden layer.
        dropout: dropout probability in each hidden layer.
        linear: the class of the hidden weight layers (``NoisyLinear`` for noisy nets).
    """

    def __init__(
        self,
        obs_shape: Sequence[int],
        hidden_sizes: Sequence[int] = (256, 256),
        activation: str | type[nn.Module] = "relu",
        layer_norm: bool = False,
        dropout: float = 0.0,
        linear: LinearFactory = nn.Linear,
    ) -> None:
        super().__init__()
        in_dim = math.prod(int(d) for d in obs_shape)
        self.output_dim = int(hidden_sizes[-1]) if len(hidden_sizes) > 0 else in_dim
        self.net = nn.Sequential(
            nn.Flatten(start_dim=1),
            *hidden_layers(in_dim, hidden_sizes, activation, layer_norm, dropout, linear),
        )

    def forward(self, obs: Tensor) -> Tensor:
        if not obs.is_floating_point():
            # Cast to the parameters' dtype (the default dtype when there are no layers).
            param = next(self.parameters(), None)
            obs = obs.to(param.dtype if param is not None else torch.get_default_dtype())
        return self.net(obs)  # [B, *obs_shape] -> [B, output_dim]


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """(before, after) zero padding of TF/Flax ``padding="SAME"``: output size ``ceil(size / stride)``, the odd
    pixel after (``jax.lax.padtype_to_pads``)."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


NATURE_FC = 512  # the fc width of Mnih et al. (2015), Methods


class NatureCNN(nn.Module):
    """The DQN convolutional torso (Mnih et al., 2015, "Human-level control through deep
    reinforcement learning", Methods: "Model architecture").

    conv 32 8x8 stride 4 -> conv 64 4x4 stride 2 -> conv 64 3x3 stride 1 -> fc ``feature_dim``,
    each followed by ReLU. Input ``[B, C, 84, 84]``; with ``padding="valid"`` (the paper's) the spatial sizes
    are 84 -> 20 -> 9 -> 7 and the flattened conv output has 64 * 7 * 7 = 3136 features; with ``"same"``
    (Dopamine's JAX networks, Flax's default padding) 84 -> 21 -> 11 -> 11 and 64 * 11 * 11 = 7744.

    Pixels: a non-float input (uint8 frames) is scaled to [0, 1] by 1/255 inside ``forward``,
    so the replay buffer can keep uint8. A float input is taken as already scaled.

    Args:
        in_channels: stacked frames (4 in the paper).
        feature_dim: width of the final fully connected layer (512 in the paper); ``None`` leaves it out.
        padding: ``"valid"`` (no padding) or ``"same"`` (zero padding as TF/Flax ``SAME``).
        screen_size: height and width of the input frames.
        linear: the class of the fc layer (``NoisyLinear`` for noisy nets).
    """

    def __init__(self, in_channels: int = 4, feature_dim: int | None = NATURE_FC, padding: str = "valid",
                 screen_size: int = 84, linear: LinearFactory = nn.Linear) -> None:
        super().__init__()
        if padding not in ("valid", "same"):
            raise ValueError(f"padding must be 'valid' or 'same', got {padding!r}")
        layers: list[nn.Module] = []
        size, channels = int(screen_size), int(in_channels)
        for out_channels, kernel, stride in ((32, 8, 4), (64, 4, 2), (64, 3, 1)):
            if padding == "same":
                before, after = same_padding(size, kernel, stride)
                layers.append(nn.ZeroPad2d((before, after, before, after)))  # (left, right, top, bottom)
                size += before + after
            layers += [nn.Conv2d(channels, out_channels, kernel_size=kernel, stride=stride), nn.ReLU()]
            size, channels = (size - kernel) // stride + 1, out_channels  # valid: 20, 9, 7; same: 21, 11, 11
        self.conv = nn.Sequential(*layers, nn.Flatten(start_dim=1))  # [B, 64 * size * size]
        flat = channels * size * size
        # feature_dim=None: no fc, the flattened conv features are the output (IQN's f takes the fc, see build_q_network)
        self.fc = nn.Identity() if feature_dim is None else nn.Sequential(linear(flat, feature_dim), nn.ReLU())
        self.output_dim = flat if feature_dim is None else int(feature_dim)

    def forward(self, obs: Tensor) -> Tensor:
        obs = pixels_to_unit(obs, next(self.conv.parameters()).dtype)  # uint8 pixels -> [0, 1]
        return self.fc(self.conv(obs))  # [B, C, 84, 84] -> [B, output_dim]
