"""Distributional DQN blocks (C51, QR-DQN, IQN) and noisy layers: hand-computed answers and a known distribution."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
from torch import nn

from qlearn.agents import DQN, REDQ
from qlearn.distributional import Categorical, ImplicitQuantile, QuantileRegression
from qlearn.errors import QlearnError
from qlearn.losses.distributional import categorical_projection, quantile_huber_loss
from qlearn.networks.distributional import ImplicitQuantileHead
from qlearn.networks.noisy import NoisyLinear, has_noise
from qlearn.networks.q import build_q_network
from qlearn.targets import DoubleQNextValue, GreedyNextValue
from qlearn.types import Batch, EnvSpec
from qlearn.updaters import PolyakUpdate

SUPPORT = torch.tensor([0.0, 1.0, 2.0, 3.0, 4.0])


def test_projection_splits_an_atom_between_its_neighbours() -> None:
    probs = torch.tensor([[0.0, 0.0, 1.0, 0.0, 0.0]])  # all mass on z = 2
    got = categorical_projection(probs, torch.tensor([0.5]), 1.0, torch.tensor([1.0]), SUPPORT)
    assert torch.allclose(got, torch.tensor([[0.0, 0.0, 0.5, 0.5, 0.0]]))  # 2.5 lies halfway between 2 and 3


def test_projection_of_a_terminal_puts_everything_on_the_reward_and_clips_to_the_support() -> None:
    probs = torch.full((2, 5), 0.2)
    got = categorical_projection(probs, torch.tensor([1.0, 9.0]), 0.9, torch.tensor([0.0, 1.0]), SUPPORT)
    assert torch.allclose(got[0], torch.tensor([0.0, 1.0, 0.0, 0.0, 0.0]))  # r = 1 exactly on an atom
    # r + 0.9 z = 9 + {0, .9, 1.8, 2.7, 3.6} > 4 everywhere: all clipped onto v_max
    assert torch.allclose(got[1], torch.tensor([0.0, 0.0, 0.0, 0.0, 1.0]))


def test_projection_with_a_discount_by_hand() -> None:
    probs = torch.tensor([[0.5, 0.0, 0.0, 0.0, 0.5]])  # z = 0 and z = 4
    got = categorical_projection(probs, torch.tensor([0.0]), torch.tensor([0.5]), torch.tensor([1.0]), SUPPORT)
    # 0 -> 0 (atom 0); 4 -> 2 (atom 2)
    assert torch.allclose(got, torch.tensor([[0.5, 0.0, 0.5, 0.0, 0.0]]))
    got = categorical_projection(probs, torch.tensor([0.25]), torch.tensor([0.5]), torch.tensor([1.0]), SUPPORT)
    # 0.25 -> 0.75 on atom 0, 0.25 on atom 1; 2.25 -> 0.75 on atom 2, 0.25 on atom 3 (each times 0.5)
    assert torch.allclose(got, torch.tensor([[0.375, 0.125, 0.375, 0.125, 0.0]]))


def test_projection_keeps_rows_distributions() -> None:
    g = torch.Generator().manual_seed(0)
    probs = torch.rand(64, 5, generator=g).softmax(-1)
    got = categorical_projection(probs, torch.randn(64, generator=g) * 3, 0.99,
                                 (torch.rand(64, generator=g) > 0.3).float(), SUPPORT)
    assert torch.allclose(got.sum(-1), torch.ones(64))
    assert bool((got >= 0).all())


def test_quantile_huber_loss_by_hand() -> None:
    pred, target, tau = torch.tensor([[0.0]]), torch.tensor([[1.0, -1.0]]), torch.tensor([0.25])
    # u = +1: |0.25 - 0| * 0.5 = 0.125; u = -1: |0.25 - 1| * 0.5 = 0.375; mean over the two targets
    assert torch.allclose(quantile_huber_loss(pred, target, tau, kappa=1.0), torch.tensor([0.25]))
    # kappa = 0: the plain quantile loss, 0.25 * 1 and 0.75 * 1
    assert torch.allclose(quantile_huber_loss(pred, target, tau, kappa=0.0), torch.tensor([0.5]))
    # |u| = 3 > kappa = 2: L = kappa (|u| - kappa / 2) = 4, / kappa = 2, weight 0.25
    assert torch.allclose(quantile_huber_loss(pred, torch.tensor([[3.0]]), tau, kappa=2.0), torch.tensor([0.5]))


def test_minimising_the_quantile_loss_finds_the_quantiles_of_the_targets() -> None:
    targets = torch.arange(100.0).unsqueeze(0)  # 0..99
    taus = torch.tensor([0.1, 0.5, 0.9])
    pred = torch.zeros(1, 3, requires_grad=True)
    optimizer = torch.optim.Adam([pred], lr=0.5)
    for _ in range(600):
        optimizer.zero_grad()
        quantile_huber_loss(pred, targets, taus, kappa=0.0).sum().backward()
        optimizer.step()
    assert torch.allclose(pred.detach(), torch.tensor([[9.5, 49.5, 89.5]]), atol=1.0)


def test_iqn_embedding_is_the_cosine_features_of_the_paper() -> None:
    head = ImplicitQuantileHead(in_dim=3, num_actions=2, embedding_dim=4, num_tau_act=8)
    with torch.no_grad():
        linear = head.embedding[0]
        linear.weight.copy_(torch.eye(3, 4))  # phi_j = ReLU(cos(pi j tau)) for j = 0, 1, 2
        linear.bias.zero_()
    tau = torch.tensor([[1.0 / 3.0]])
    phi = head.embedding(torch.cos(tau.unsqueeze(-1) * head.frequencies))
    expected = torch.tensor([1.0, math.cos(math.pi / 3), max(0.0, math.cos(2 * math.pi / 3))])
    assert torch.allclose(phi.flatten(), expected, atol=1e-6)
    features, taus = torch.randn(5, 3), torch.rand(5, 7)
    assert head.distribution(features, taus).shape == (5, 2, 7)
    assert head(features).shape == (5, 2)


def test_iqn_network_multiplies_the_embedding_in_before_the_last_hidden_layer() -> None:
    """Paper Sec. 4 / Dopamine's ImplicitQuantileNetwork: Z_tau = out(ReLU(W (psi(s) * phi(tau)) + b)), the last
    hidden layer inside f; psi is the torso without it (the MLP's first layers, the CNN's convolutions)."""
    torch.manual_seed(0)
    block = ImplicitQuantile(embedding_dim=4)
    net = build_q_network((3,), 2, hidden_sizes=(8, 16), distributional=block)
    assert net.encoder.output_dim == 8
    hidden, output = net.head.quantiles[0], net.head.quantiles[-1].advantage
    assert (hidden.in_features, hidden.out_features, output.in_features) == (8, 16, 16)
    obs, taus = torch.randn(5, 3), torch.rand(5, 7)
    psi = net.encoder(obs)
    phi = net.head.embedding(torch.cos(taus.unsqueeze(-1) * net.head.frequencies))  # [B, N, 8]
    expected = output(torch.relu(hidden(psi.unsqueeze(1) * phi)))  # [B, N, A]
    assert torch.allclose(net.distribution(obs, taus), expected.transpose(1, 2), atol=1e-6)
    cnn = build_q_network((4, 84, 84), 3, kind="nature_cnn", distributional=block)
    assert cnn.encoder.output_dim == 64 * 7 * 7
    assert (cnn.head.quantiles[0].in_features, cnn.head.quantiles[0].out_features) == (64 * 7 * 7, 512)
    frames = torch.randint(0, 255, (2, 4, 84, 84), dtype=torch.uint8)
    assert cnn.distribution(frames, torch.rand(2, 5)).shape == (2, 3, 5)


def test_iqn_greedy_value_is_the_mean_over_sampled_fractions() -> None:
    torch.manual_seed(0)
    head = ImplicitQuantileHead(in_dim=3, num_actions=2, embedding_dim=4, num_tau_act=16)
    features = torch.randn(4, 3)
    torch.manual_seed(1)
    value = head(features)
    torch.manual_seed(1)
    taus = torch.rand(4, 16)
    assert torch.allclose(value, head.distribution(features, taus).mean(-1))


def test_categorical_head_reports_the_mean_of_its_distribution() -> None:
    block = Categorical(num_atoms=5, v_min=0.0, v_max=4.0)
    net = build_q_network((3,), 2, hidden_sizes=(8,), distributional=block, dueling=True)
    obs = torch.randn(6, 3)
    probs = net.distribution(obs).exp()
    assert torch.allclose(probs.sum(-1), torch.ones(6, 2))
    assert torch.allclose(net(obs), (probs * SUPPORT).sum(-1), atol=1e-6)


def test_noisy_linear_is_factorised_and_off_at_evaluation() -> None:
    torch.manual_seed(0)
    layer = NoisyLinear(4, 3, sigma0=0.5)
    assert torch.allclose(layer.weight_sigma, torch.full((3, 4), 0.25))  # sigma0 / sqrt(4)
    layer.reset_noise()
    x = torch.randn(2, 4)
    f_in, f_out = layer.eps_in, layer.eps_out
    weight = layer.weight_mu + layer.weight_sigma * f_out[:, None] * f_in[None, :]
    assert torch.allclose(layer(x), x @ weight.T + layer.bias_mu + layer.bias_sigma * f_out, atol=1e-6)
    layer.eval()
    assert torch.allclose(layer(x), x @ layer.weight_mu.T + layer.bias_mu)


def test_noisy_dqn_resamples_noise_when_acting_and_not_when_evaluating() -> None:
    torch.manual_seed(0)
    agent = DQN.from_spec(EnvSpec(obs_shape=(3,), obs_dtype="float32", action_shape=(), num_actions=2),
                          network={"hidden_sizes": (8,), "noisy": True})
    assert has_noise(agent.q) and agent.noisy
    layer = next(m for m in agent.q.modules() if isinstance(m, NoisyLinear))
    agent.act(torch.randn(1, 3))
    first = layer.eps_out.clone()
    agent.act(torch.randn(1, 3))
    assert not torch.equal(first, layer.eps_out)
    agent.train(False)
    kept = layer.eps_out.clone()
    agent.act(torch.randn(1, 3))
    assert torch.equal(kept, layer.eps_out)


def test_noisy_sigma0_sets_every_noisy_layer_and_is_refused_where_it_cannot_act() -> None:
    spec = EnvSpec(obs_shape=(3,), obs_dtype="float32", action_shape=(), num_actions=2)
    agent = DQN.from_spec(spec, network={"hidden_sizes": (8,), "dueling": True, "noisy": True, "noisy_sigma0": 0.1},
                          distributional=Categorical(num_atoms=5, v_min=0.0, v_max=4.0))
    layers = [m for m in agent.q.modules() if isinstance(m, NoisyLinear)]
    assert len(layers) >= 3  # the hidden layer and both dueling streams
    for layer in layers + [m for m in agent.q_target.modules() if isinstance(m, NoisyLinear)]:
        scale = 0.1 / math.sqrt(layer.in_features)  # Fortunato et al. (2018), Sec. 3.2: sigma0 / sqrt(p)
        assert torch.allclose(layer.weight_sigma, torch.full_like(layer.weight_sigma, scale))
        assert torch.allclose(layer.bias_sigma, torch.full_like(layer.bias_sigma, scale))
    default = next(m for m in DQN.from_spec(spec, network={"hidden_sizes": (8,), "noisy": True}).q.modules()
                   if isinstance(m, NoisyLinear))
    assert torch.allclose(default.weight_sigma, torch.full_like(default.weight_sigma, 0.5 / math.sqrt(3)))
    with pytest.raises(QlearnError, match="noisy_sigma0=0.1 takes effect only with noisy layers"):
        DQN.from_spec(spec, network={"hidden_sizes": (8,), "noisy_sigma0": 0.1})
    continuous = EnvSpec(obs_shape=(3,), obs_dtype="float32", action_shape=(1,), action_low=(-1.0,),
                         action_high=(1.0,))
    REDQ.from_spec(continuous, network={"hidden_sizes": (8,), "noisy": False, "noisy_sigma0": None})  # the defaults
    with pytest.raises(QlearnError, match="noisy_sigma0 unset"):
        REDQ.from_spec(continuous, network={"hidden_sizes": (8,), "noisy_sigma0": 0.1})


def _bandit_batch(rewards: torch.Tensor) -> Batch:
    """One state, one action, terminal after it: the return distribution is the reward's."""
    n = rewards.shape[0]
    return Batch(obs=torch.ones(n, 1), action=torch.zeros(n, dtype=torch.int64), reward=rewards,
                 next_obs=torch.ones(n, 1), terminated=torch.ones(n))


@pytest.mark.parametrize("block", [Categorical(num_atoms=9, v_min=-1.0, v_max=3.0),
                                   QuantileRegression(num_quantiles=10, kappa=0.0),
                                   ImplicitQuantile(num_tau=32, num_tau_prime=8, num_tau_act=64, embedding_dim=16,
                                                    kappa=0.0)],
                         ids=["c51", "qrdqn", "iqn"])
def test_each_block_learns_a_known_return_distribution(block: object) -> None:
    """Reward 0 or 2 with probability 1/2: Q = 1, the lower half of the distribution at 0, the upper at 2."""
    torch.manual_seed(0)
    spec = EnvSpec(obs_shape=(1,), obs_dtype="float32", action_shape=(), num_actions=1)
    agent = DQN.from_spec(spec, network={"hidden_sizes": (16,)}, lr=3e-3, distributional=block,
                          target_updater=PolyakUpdate(1.0, every=1), max_grad_norm=None)
    g = torch.Generator().manual_seed(1)
    for _ in range(1000):
        agent.update(_bandit_batch(2.0 * (torch.rand(64, generator=g) < 0.5).float()))
    obs = torch.ones(1, 1)
    with torch.no_grad():
        if isinstance(block, Categorical):
            probs = agent.q.distribution(obs).exp()[0, 0]  # atoms -1, -0.5, 0, ..., 3: 0 and 2 are atoms 2 and 6
            assert torch.allclose(probs[[2, 6]], torch.tensor([0.5, 0.5]), atol=0.1)
        else:
            taus = torch.tensor([[0.1, 0.3, 0.7, 0.9]])
            args = (taus,) if isinstance(block, ImplicitQuantile) else ()
            z = agent.q.distribution(obs, *args)[0, 0]
            z = z if isinstance(block, ImplicitQuantile) else z[[1, 3, 6, 8]]  # fractions .15 .35 .65 .85
            assert torch.allclose(z, torch.tensor([0.0, 0.0, 2.0, 2.0]), atol=0.25)
        if isinstance(block, ImplicitQuantile):  # the mean over evenly spread fractions, not K random ones
            q = agent.q.distribution(obs, torch.linspace(0.005, 0.995, 100).unsqueeze(0)).mean()
        else:
            q = agent.q(obs)[0, 0]
        assert float(q) == pytest.approx(1.0, abs=0.1)


def test_double_selection_takes_the_online_argmax() -> None:
    from qlearn.distributional import _next_action

    online = nn.Linear(1, 2)
    target = nn.Linear(1, 2)
    with torch.no_grad():
        online.weight.copy_(torch.tensor([[1.0], [0.0]]))
        online.bias.zero_()
        target.weight.copy_(torch.tensor([[0.0], [1.0]]))
        target.bias.zero_()
    x = torch.ones(1, 1)
    assert _next_action(online, target, x, double=True).item() == 0
    assert _next_action(online, target, x, double=False).item() == 1
    assert GreedyNextValue.selects_with_online is False and DoubleQNextValue.selects_with_online is True


def test_prioritized_batches_get_the_per_sample_distributional_loss() -> None:
    torch.manual_seed(0)
    spec = EnvSpec(obs_shape=(1,), obs_dtype="float32", action_shape=(), num_actions=1)
    agent = DQN.from_spec(spec, network={"hidden_sizes": (8,)}, distributional=QuantileRegression(8))
    batch = dataclasses.replace(_bandit_batch(torch.tensor([0.0, 5.0])), weight=torch.ones(2))
    errors = agent.update(batch)["td_error"]
    assert errors.shape == (2,) and float(errors[1]) > float(errors[0])  # the surprising reward has more loss


def test_a_plain_q_network_with_a_distributional_block_is_refused() -> None:
    with pytest.raises(QlearnError, match="distributional head"):
        DQN(nn.Linear(2, 2), 2, distributional=Categorical())
