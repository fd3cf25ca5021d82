"""Critic ensemble and tanh-Gaussian actor: equal to N separate nets, independent init, exact log-probs."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from qlearn.networks import MLP, EnsembleLinear, QEnsemble, TanhGaussianActor, tanh_gaussian_log_prob


def copy_mlps_into(ensemble: QEnsemble, mlps: list[MLP]) -> None:
    for i, mlp in enumerate(mlps):
        linears = [m for m in mlp.net if isinstance(m, nn.Linear)]
        for ens_layer, linear in zip(ensemble.linear_layers(), linears, strict=True):
            ens_layer.load_member(i, linear)


@pytest.mark.parametrize("layer_norm", [False, True])
def test_ensemble_equals_n_separate_networks_with_the_same_weights(layer_norm: bool) -> None:
    torch.manual_seed(0)
    obs_dim, act_dim, n = 5, 2, 4
    mlps = [MLP(obs_dim + act_dim, 1, (32, 16), layer_norm=layer_norm) for _ in range(n)]
    ensemble = QEnsemble(obs_dim, act_dim, n, (32, 16), layer_norm=layer_norm)
    copy_mlps_into(ensemble, mlps)
    obs, act = torch.randn(9, obs_dim), torch.randn(9, act_dim)
    expected = torch.stack([m(torch.cat((obs, act), -1)).squeeze(-1) for m in mlps])  # [N, B]
    torch.testing.assert_close(ensemble(obs, act), expected)
    members = torch.tensor([3, 1])
    torch.testing.assert_close(ensemble(obs, act, members=members), expected[members])


def test_ensemble_gradients_equal_separate_network_gradients() -> None:
    torch.manual_seed(1)
    mlps = [MLP(4, 1, (8,)) for _ in range(3)]
    ensemble = QEnsemble(3, 1, 3, (8,))
    copy_mlps_into(ensemble, mlps)
    obs, act, y = torch.randn(6, 3), torch.randn(6, 1), torch.randn(6)
    (ensemble(obs, act) - y).pow(2).mean(dim=1).sum().backward()
    for mlp in mlps:
        (mlp(torch.cat((obs, act), -1)).squeeze(-1) - y).pow(2).mean().backward()
    first = ensemble.linear_layers()[0]
    for i, mlp in enumerate(mlps):
        torch.testing.assert_close(first.weight.grad[i], mlp.net[0].weight.grad.T)


def test_ensemble_members_are_initialised_independently_like_nn_linear() -> None:
    torch.manual_seed(0)
    layer = EnsembleLinear(10, 64, 256)
    bound = 1 / math.sqrt(64)
    assert layer.weight.abs().max() <= bound and layer.weight.abs().max() > 0.95 * bound
    assert layer.weight.std().item() == pytest.approx(bound / math.sqrt(3), rel=0.02)  # U(-b, b)
    flat = layer.weight.flatten(1)
    assert not any(torch.equal(flat[0], flat[i]) for i in range(1, 10))
    corr = torch.corrcoef(flat)[0, 1:].abs().max()
    assert corr < 0.05


def test_ensemble_output_shape_dropout_and_train_eval_mode() -> None:
    torch.manual_seed(0)
    ensemble = QEnsemble(3, 2, num_q=5, hidden_sizes=(16, 16), layer_norm=True, dropout=0.5)
    obs, act = torch.randn(7, 3), torch.randn(7, 2)
    assert ensemble(obs, act).shape == (5, 7)
    ensemble.eval()
    torch.testing.assert_close(ensemble(obs, act), ensemble(obs, act))
    ensemble.train()
    assert not torch.equal(ensemble(obs, act), ensemble(obs, act))


def test_every_ensemble_parameter_updates_after_one_step() -> None:
    torch.manual_seed(0)
    ensemble = QEnsemble(3, 2, num_q=3, hidden_sizes=(8,), layer_norm=True)
    before = [p.detach().clone() for p in ensemble.parameters()]
    opt = torch.optim.SGD(ensemble.parameters(), lr=0.1)
    ensemble(torch.randn(5, 3), torch.randn(5, 2)).pow(2).sum().backward()
    opt.step()
    assert all(not torch.equal(b, p) for b, p in zip(before, ensemble.parameters()))


def numerical_log_density(actor: TanhGaussianActor, obs: torch.Tensor, action: float) -> float:
    """log p(a) for a 1-D action by change of variables with a finite-difference Jacobian."""
    mean, log_std = actor.distribution(obs)
    mean, std = mean.item(), log_std.exp().item()
    center, scale = actor.center.item(), actor.scale.item()
    u = math.atanh((action - center) / scale)
    h = 1e-6
    dadu = scale * (math.tanh(u + h) - math.tanh(u - h)) / (2 * h)
    log_normal = -0.5 * ((u - mean) / std) ** 2 - math.log(std) - 0.5 * math.log(2 * math.pi)
    return log_normal - math.log(dadu)


def test_tanh_gaussian_log_prob_matches_a_numerical_change_of_variables() -> None:
    torch.manual_seed(0)
    actor = TanhGaussianActor(3, action_low=[-2.0], action_high=[1.0], hidden_sizes=(16,)).double()
    obs = torch.randn(1, 3, dtype=torch.float64)
    for _ in range(5):
        action, log_prob = actor(obs)
        assert -2.0 < action.item() < 1.0
        assert log_prob.item() == pytest.approx(numerical_log_density(actor, obs, action.item()), abs=1e-5)


def test_tanh_gaussian_density_integrates_to_one() -> None:
    torch.manual_seed(0)
    actor = TanhGaussianActor(2, action_low=[-1.0], action_high=[3.0], hidden_sizes=(8,)).double()
    obs = torch.randn(1, 2, dtype=torch.float64)
    mean, log_std = actor.distribution(obs)
    a = torch.linspace(-1.0, 3.0, 400_001, dtype=torch.float64)[1:-1]
    u = torch.atanh((a - actor.center) / actor.scale).unsqueeze(-1)
    density = tanh_gaussian_log_prob(u, mean, log_std, actor.log_scale).exp()
    assert torch.trapezoid(density, a).item() == pytest.approx(1.0, abs=1e-3)


def test_actor_scales_actions_to_bounds_and_deterministic_is_the_squashed_mean() -> None:
    torch.manual_seed(0)
    actor = TanhGaussianActor(4, action_low=[-2.0, 0.0], action_high=[2.0, 1.0], hidden_sizes=(16,))
    obs = torch.randn(1000, 4) * 10
    action = actor.act(obs)
    assert action.shape == (1000, 2)
    assert (action[:, 0].abs() <= 2).all() and ((action[:, 1] >= 0) & (action[:, 1] <= 1)).all()
    mean, _ = actor.distribution(obs)
    torch.testing.assert_close(actor.act(obs, deterministic=True), actor.center + actor.scale * torch.tanh(mean))


def test_actor_refuses_infinite_or_inverted_bounds() -> None:
    with pytest.raises(ValueError, match="finite"):
        TanhGaussianActor(3, action_low=[-math.inf], action_high=[1.0])
    with pytest.raises(ValueError, match="high > low"):
        TanhGaussianActor(3, action_low=[1.0], action_high=[-1.0])


def test_log_prob_epsilon_selects_the_references_formula() -> None:
    """log(1 - tanh(u)^2 + 1e-6) (SB3, the REDQ code, CleanRL on [-1, 1]) by hand, at a u where it shows."""
    u, mean, log_std = torch.tensor([[6.0, -0.5]]), torch.tensor([[5.5, 0.0]]), torch.tensor([[-0.5, 0.2]])
    normal = -0.5 * ((u - mean) / log_std.exp()) ** 2 - log_std - 0.5 * math.log(2 * math.pi)
    expected = (normal - torch.log(1 - torch.tanh(u) ** 2 + 1e-6)).sum(-1)
    got = tanh_gaussian_log_prob(u, mean, log_std, torch.zeros(2), epsilon=1e-6)
    torch.testing.assert_close(got, expected, rtol=1e-6, atol=1e-6)
    exact = tanh_gaussian_log_prob(u, mean, log_std, torch.zeros(2))
    assert abs((exact - got).item()) > 1e-2  # the default is the exact density, not the reference's


def test_log_std_squash_tanh_is_cleanrls_bounds() -> None:
    actor = TanhGaussianActor(3, [-1.0], [1.0], hidden_sizes=(8,), log_std_min=-5.0, log_std_squash="tanh")
    obs = torch.randn(4, 3)
    raw = actor.head(actor.trunk(obs))[:, 1:]
    _, log_std = actor.distribution(obs)
    torch.testing.assert_close(log_std, -5.0 + 0.5 * 7.0 * (torch.tanh(raw) + 1))
    clamped = TanhGaussianActor(3, [-1.0], [1.0], hidden_sizes=(8,))
    clamped.load_state_dict(actor.state_dict())
    assert not torch.allclose(clamped.distribution(obs)[1], log_std)
    with pytest.raises(ValueError, match="log_std_squash"):
        TanhGaussianActor(3, [-1.0], [1.0], log_std_squash="sigmoid")


def test_log_std_affine_learns_corls_scale_and_offset() -> None:
    """CORL cql.py's policy: log sigma = m * head + c with learned scalars m, c (start 1, -1), then the bounds."""
    actor = TanhGaussianActor(3, [-1.0, -1.0], [1.0, 1.0], hidden_sizes=(8,), log_std_affine=(1.0, -1.0))
    plain = TanhGaussianActor(3, [-1.0, -1.0], [1.0, 1.0], hidden_sizes=(8,))
    assert len(list(actor.parameters())) == len(list(plain.parameters())) + 2  # both scalars are trained
    with torch.no_grad():
        actor.head.weight.zero_()
        actor.head.bias.copy_(torch.tensor([0.3, -0.2, 0.5, 30.0]))  # means 0.3, -0.2; raw log-stds 0.5, 30
        actor.log_std_multiplier.fill_(2.0)
        actor.log_std_offset.fill_(-1.5)
    mean, log_std = actor.distribution(torch.randn(4, 3))
    torch.testing.assert_close(mean, torch.tensor([[0.3, -0.2]]).expand(4, 2))
    torch.testing.assert_close(log_std, torch.tensor([[2.0 * 0.5 - 1.5, 2.0]]).expand(4, 2))  # 58.5 clamped to 2
    log_std[:, 0].sum().backward()
    torch.testing.assert_close(actor.log_std_multiplier.grad, torch.tensor(4 * 0.5))
    torch.testing.assert_close(actor.log_std_offset.grad, torch.tensor(4.0))
    with pytest.raises(ValueError, match="log_std_affine"):
        TanhGaussianActor(3, [-1.0], [1.0], log_std_affine=(1.0,))


def test_reference_init_schemes() -> None:
    """REDQ code's Xavier-uniform (zero biases; each policy head half bounded as a Linear(hidden, A)) and CORL's
    SAC-N/EDAC init (hidden biases 0.1, outputs U(+-3e-3) critic / U(+-1e-3) actor), drawn as those codes draw."""
    from qlearn.networks import init_actor_critic

    torch.manual_seed(0)
    obs_dim, act_dim, hidden = 11, 3, (256, 256)
    actor = TanhGaussianActor(obs_dim, [-1.0] * act_dim, [1.0] * act_dim, hidden_sizes=hidden)
    critic = QEnsemble(obs_dim, act_dim, 5, hidden)
    init_actor_critic(actor, critic, "xavier_uniform")
    for layer in critic.linear_layers():
        bound = math.sqrt(6 / (layer.in_features + layer.out_features))
        assert layer.weight.abs().max() <= bound and layer.weight.abs().max() > 0.9 * bound
        assert torch.all(layer.bias == 0)
    first = critic.linear_layers()[0].weight  # U(-b, b) has variance b^2 / 3
    torch.testing.assert_close(first.var(), torch.tensor(6 / (obs_dim + act_dim + 256) / 3), rtol=0.05, atol=0)
    head_bound = math.sqrt(6 / (256 + act_dim))  # the REDQ policy's separate mean and log-std layers
    assert 0.9 * head_bound < actor.head.weight.abs().max() <= head_bound and torch.all(actor.head.bias == 0)
    assert all(torch.all(m.bias == 0) for m in actor.trunk if isinstance(m, nn.Linear))
    wide = TanhGaussianActor(obs_dim, [-1.0] * 64, [1.0] * 64, hidden_sizes=(8,))  # Linear(8, 64) vs (8, 128) bounds
    init_actor_critic(wide, QEnsemble(obs_dim, 64, 2, (8,)), "xavier_uniform")
    assert wide.head.weight.abs().max() > 0.95 * math.sqrt(6 / (8 + 64)) > math.sqrt(6 / (8 + 128))

    critic = QEnsemble(obs_dim, act_dim, 5, hidden)  # fresh, PyTorch's default
    default_weights = [layer.weight.clone() for layer in critic.linear_layers()]
    init_actor_critic(actor, critic, "edac")
    *hidden_layers, output = critic.linear_layers()
    assert all(torch.all(layer.bias == 0.1) for layer in hidden_layers)
    assert 2.5e-3 < output.weight.abs().max() <= 3e-3 and output.bias.abs().max() <= 3e-3
    assert all(torch.all(m.bias == 0.1) for m in actor.trunk if isinstance(m, nn.Linear))
    assert 0.8e-3 < actor.head.weight.abs().max() <= 1e-3 and actor.head.bias.abs().max() <= 1e-3
    assert all(torch.equal(w, layer.weight) for w, layer in zip(default_weights, hidden_layers))  # weights kept
    before = [p.clone() for p in critic.parameters()]
    init_actor_critic(actor, critic, "torch")
    assert all(torch.equal(a, b) for a, b in zip(before, critic.parameters()))
    with pytest.raises(ValueError, match="unknown init"):
        init_actor_critic(actor, critic, "kaiming")


def test_orthogonal_init_is_the_iql_authors() -> None:
    """ikostrikov/implicit_q_learning: every kernel orthogonal with gain sqrt(2) (outputs too), biases 0; each
    ensemble member separately, and the value network with them."""
    from qlearn.networks import GaussianActor, init_actor_critic

    torch.manual_seed(0)
    actor = GaussianActor(11, [-1.0] * 3, [1.0] * 3, (64, 64))
    critic, value = QEnsemble(11, 3, 2, (64, 64)), MLP(11, 1, (64, 64))
    init_actor_critic(actor, critic, "orthogonal", value=value)
    weights = [m.weight for m in (*actor.modules(), *value.modules()) if isinstance(m, nn.Linear)]
    weights += [w.T for layer in critic.linear_layers() for w in layer.weight]  # members' [in, out] as [out, in]
    assert len(weights) == 3 + 3 + 3 * 2
    for w in weights:  # semi-orthogonal rows or columns, scaled by the gain
        gram = w @ w.T if w.shape[0] <= w.shape[1] else w.T @ w
        torch.testing.assert_close(gram, 2.0 * torch.eye(gram.shape[0]), atol=1e-5, rtol=0)
    first = critic.linear_layers()[0].weight
    assert not torch.allclose(first[0], first[1])  # members drawn independently
    biases = [m.bias for m in (*actor.modules(), *value.modules(), *critic.linear_layers()) if hasattr(m, "bias")
              and isinstance(m.bias, torch.Tensor)]
    assert biases and all(torch.all(b == 0) for b in biases)
