"""Tests for qlearn.networks: shapes, dueling aggregation, gradients, pixel scaling, dropout."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from qlearn.networks import MLP, DuelingHead, MLPEncoder, NatureCNN, QNetwork, build_q_network


def _pixels(batch: int = 2, channels: int = 4, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (batch, channels, 84, 84), dtype=torch.uint8, generator=g)


def test_mlp_q_network_output_shape() -> None:
    torch.manual_seed(0)
    net = build_q_network((4,), 3)
    assert net(torch.randn(5, 4)).shape == (5, 3)
    # Multi-dimensional observations are flattened.
    net = build_q_network((2, 3), 4)
    assert net(torch.randn(7, 2, 3)).shape == (7, 4)


def test_nature_cnn_q_network_output_shape_uint8() -> None:
    torch.manual_seed(0)
    net = build_q_network((4, 84, 84), 6, kind="auto")
    assert isinstance(net, QNetwork)
    assert isinstance(net.encoder, NatureCNN)
    assert net.encoder.output_dim == 512
    out = net(_pixels(batch=3))
    assert out.shape == (3, 6)
    assert out.dtype == torch.float32


def test_auto_kind_picks_mlp_for_flat_obs() -> None:
    net = build_q_network((8,), 2, kind="auto")
    assert isinstance(net.encoder, MLPEncoder)


def test_nature_cnn_scales_uint8() -> None:
    torch.manual_seed(0)
    cnn = NatureCNN(in_channels=4)
    x = _pixels()
    out_uint8 = cnn(x)
    torch.testing.assert_close(out_uint8, cnn(x.float() / 255.0))
    # Sanity: without the 1/255 the output would differ, so the check above can fail.
    assert not torch.allclose(out_uint8, cnn(x.float()))


def test_integer_obs_cast_to_float_in_mlp() -> None:
    torch.manual_seed(0)
    net = build_q_network((3,), 2)
    obs = torch.tensor([[0, 1, 2], [3, 4, 5]])
    torch.testing.assert_close(net(obs), net(obs.float()))


@pytest.mark.parametrize("obs_shape", [(4,), (4, 84, 84)])
def test_dueling_aggregation(obs_shape: tuple[int, ...]) -> None:
    torch.manual_seed(0)
    net = build_q_network(obs_shape, 5, kind="auto", dueling=True)
    assert isinstance(net.head, DuelingHead)
    obs = torch.randn(6, 4) if len(obs_shape) == 1 else _pixels(batch=2)
    q = net(obs)
    features = net.encoder(obs)
    v = net.head.value(features)  # [B, 1]
    adv = net.head.advantage(features)  # [B, A]
    assert v.shape == (q.shape[0], 1)
    assert adv.shape == q.shape
    torch.testing.assert_close(q, v + adv - adv.mean(dim=-1, keepdim=True))
    # Identifiability (Wang et al., 2016, Eq. 9): the mean over actions of Q - V is zero.
    torch.testing.assert_close((q - v).mean(dim=-1), torch.zeros(q.shape[0]), atol=1e-5, rtol=0)
    # ...and it is not trivially so: A itself is not mean-zero.
    assert adv.mean(dim=-1).abs().max() > 1e-4


@pytest.mark.parametrize(
    "make_net, make_obs",
    [
        (lambda: build_q_network((4,), 3), lambda: torch.randn(32, 4)),
        (lambda: build_q_network((4,), 3, dueling=True), lambda: torch.randn(32, 4)),
        (
            lambda: QNetwork(nn.Flatten(), MLP(4, 3, (16, 16), layer_norm=True, dropout=0.1)),
            lambda: torch.randn(32, 4),
        ),
        (lambda: build_q_network((4, 84, 84), 3, kind="nature_cnn"), lambda: _pixels(batch=4)),
        (
            lambda: build_q_network((4, 84, 84), 3, kind="nature_cnn", dueling=True),
            lambda: _pixels(batch=4),
        ),
    ],
    ids=["mlp", "mlp-dueling", "mlp-ln-dropout", "cnn", "cnn-dueling"],
)
def test_every_parameter_updates(make_net, make_obs) -> None:
    torch.manual_seed(0)
    net = make_net()
    obs = make_obs()
    before = {name: p.detach().clone() for name, p in net.named_parameters()}
    assert before, "network has no parameters"
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    q = net(obs)
    target = torch.randn_like(q)
    loss = ((q - target) ** 2).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
    unchanged = [n for n, p in net.named_parameters() if torch.equal(p.detach(), before[n])]
    assert not unchanged, f"parameters not updated: {unchanged}"


def test_dropout_active_in_train_off_in_eval() -> None:
    torch.manual_seed(0)
    mlp = MLP(4, 3, hidden_sizes=(64, 64), dropout=0.5)
    x = torch.randn(8, 4)
    mlp.train()
    assert not torch.equal(mlp(x), mlp(x))  # dropout masks differ between calls
    mlp.eval()
    torch.testing.assert_close(mlp(x), mlp(x), rtol=0, atol=0)


def test_mlp_layer_order_is_droq() -> None:
    mlp = MLP(4, 2, hidden_sizes=(8, 8), activation="tanh", layer_norm=True, dropout=0.01)
    kinds = [type(m) for m in mlp.net]
    block = [nn.Linear, nn.Dropout, nn.LayerNorm, nn.Tanh]
    assert kinds == block + block + [nn.Linear]
    plain = MLP(4, 2, hidden_sizes=(8,))
    assert [type(m) for m in plain.net] == [nn.Linear, nn.ReLU, nn.Linear]


def test_mlp_accepts_activation_class_and_rejects_unknown_name() -> None:
    mlp = MLP(3, 1, hidden_sizes=(4,), activation=nn.ELU)
    assert isinstance(mlp.net[1], nn.ELU)
    with pytest.raises(ValueError, match="unknown activation"):
        MLP(3, 1, activation="swishy")


def test_build_q_network_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="unknown kind"):
        build_q_network((4,), 2, kind="transformer")
    with pytest.raises(ValueError, match="84"):
        build_q_network((3, 64, 64), 2, kind="nature_cnn")


def test_same_padding_matches_flax_sizes_and_pads_as_tf() -> None:
    from qlearn.networks.encoders import same_padding

    # Dopamine's FullRainbowNetwork (Flax nn.Conv, padding SAME) on 84x84: 84 -> 21 -> 11 -> 11, 64 * 11 * 11 = 7744.
    assert [same_padding(84, 8, 4), same_padding(21, 4, 2), same_padding(11, 3, 1)] == [(2, 2), (1, 2), (1, 1)]
    cnn = NatureCNN(4, padding="same")
    assert cnn.conv[-1](torch.zeros(1, 64, 11, 11)).shape[1] == cnn.fc[0].in_features == 7744
    assert cnn(_pixels()).shape == (2, 512)
    # SAME padding is zero padding around the frame: a conv on a padded frame sees the corners at offset 2
    first = cnn.conv[1]
    x = torch.rand(1, 4, 84, 84)
    manual = torch.relu(nn.functional.conv2d(nn.functional.pad(x, (2, 2, 2, 2)), first.weight, first.bias, stride=4))
    torch.testing.assert_close(cnn.conv[:3](x), manual)
    assert NatureCNN(4).fc[0].in_features == 3136  # the paper's valid padding is unchanged


def test_xavier_init_bounds_every_weight_and_zeroes_biases() -> None:
    torch.manual_seed(0)
    net = build_q_network((4, 84, 84), 6, kind="nature_cnn", dueling=True, padding="same", init="xavier_uniform")
    layers = [m for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    assert len(layers) == 6  # 3 conv, fc, value, advantage
    for layer in layers:
        w = layer.weight
        fan_in, fan_out = w.shape[1] * w[0, 0].numel(), w.shape[0] * w[0, 0].numel()
        bound = (6.0 / (fan_in + fan_out)) ** 0.5
        assert float(w.abs().max()) <= bound and float(w.abs().max()) > 0.9 * bound
        assert torch.count_nonzero(layer.bias) == 0
    with pytest.raises(ValueError, match="unknown init"):
        build_q_network((4,), 2, init="orthogonal")


def test_fan_in_uniform_init_is_dopamines_variance_scaling() -> None:
    """Dopamine's C51/QR-DQN/IQN init: U(+-sqrt(3 s / fan_in)), s = 1/sqrt(3), so variance s / fan_in; zero biases;
    noisy layers keep their own initialisation."""
    torch.manual_seed(0)
    net = build_q_network((4, 84, 84), 6, kind="nature_cnn", padding="same", init="fan_in_uniform")
    layers = [m for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    assert [layer.weight[0].numel() for layer in layers] == [4 * 8 * 8, 32 * 4 * 4, 64 * 3 * 3, 7744, 512]
    for layer in layers:
        fan_in, w = layer.weight[0].numel(), layer.weight.detach().double()
        bound = (3.0 ** 0.5 / fan_in) ** 0.5  # sqrt(3 * (1 / sqrt 3) / fan_in)
        assert float(w.abs().max()) <= bound and float(w.abs().max()) > 0.9 * bound
        assert abs(float(w.var()) * fan_in * 3.0 ** 0.5 - 1.0) < 0.1  # variance 1 / (sqrt(3) fan_in)
        assert torch.count_nonzero(layer.bias) == 0
    noisy = build_q_network((4,), 2, hidden_sizes=(8,), noisy=True, noisy_sigma0=0.1, init="fan_in_uniform")
    sigmas = [m.weight_sigma for m in noisy.modules() if hasattr(m, "weight_sigma")]
    assert sigmas and torch.allclose(sigmas[0], torch.full_like(sigmas[0], 0.1 / 2.0))  # sigma0 / sqrt(4 inputs)


def test_mlp_agents_take_the_network_group_and_refuse_what_they_cannot_build() -> None:
    from qlearn.errors import QlearnError
    from qlearn.networks import mlp_settings

    group = {"kind": "mlp", "hidden_sizes": [8, 4], "activation": "tanh", "dueling": False}
    assert mlp_settings(group, "BC") == ((8, 4), "tanh")
    assert mlp_settings(None, "BC") == ((256, 256), "relu")
    with pytest.raises(QlearnError, match="network.dueling=false"):
        mlp_settings({**group, "dueling": True}, "REDQ/SAC/DroQ")
    assert mlp_settings({**group, "init": "torch"}, "BC") == ((8, 4), "tanh")
    with pytest.raises(QlearnError, match="network.init=torch"):
        mlp_settings({**group, "init": "xavier_uniform"}, "TD3/DDPG")
    with pytest.raises(QlearnError, match="network.kind='nature_cnn' is not supported"):
        mlp_settings({"kind": "nature_cnn"}, "IQL")
    with pytest.raises(QlearnError, match="network.padding is not a setting"):
        mlp_settings({**group, "padding": "same"}, "IQL")
