"""CQL, IQL and EDAC blocks against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from qlearn.losses import (
    ContinuousCQLPenalty,
    CQLPenalty,
    EnsembleGradientDiversity,
    awr_actor_loss,
    awr_weights,
    cql_continuous_penalty,
    cql_discrete_penalty,
    expectile_loss,
    gradient_diversity,
)
from qlearn.types import Batch


def test_expectile_loss_hand_values() -> None:
    diff = torch.tensor([2.0, -1.0, 0.5, -3.0])
    # |0.7 - 1(u<0)| u^2: 0.7*4, 0.3*1, 0.7*0.25, 0.3*9 -> mean
    expected = (0.7 * 4 + 0.3 * 1 + 0.7 * 0.25 + 0.3 * 9) / 4
    assert expectile_loss(diff, 0.7).item() == pytest.approx(expected)
    assert expectile_loss(diff, 0.5).item() == pytest.approx(0.5 * diff.pow(2).mean().item())


def test_expectile_loss_minimiser_is_the_expectile() -> None:
    """Minimising over a constant v gives the tau-expectile, above the mean for tau > 0.5."""
    q = torch.tensor([0.0, 0.0, 0.0, 10.0])
    v = torch.zeros((), requires_grad=True)
    opt = torch.optim.SGD([v], lr=0.5)
    for _ in range(500):
        opt.zero_grad()
        expectile_loss(q - v, 0.9).backward()
        opt.step()
    # expectile e solves 0.9 * (10 - e) = 0.1 * 3 * e  ->  e = 9 / 1.2 = 7.5
    assert v.item() == pytest.approx(7.5, abs=1e-3)
    with pytest.raises(ValueError, match="expectile"):
        expectile_loss(q, 1.0)


def test_awr_weights_clip_and_temperature_zero_is_bc() -> None:
    adv = torch.tensor([-1.0, 0.0, 1.0, 10.0])
    w = awr_weights(adv, temperature=3.0, max_weight=100.0)
    assert torch.allclose(w, torch.tensor([math.exp(-3.0), 1.0, math.exp(3.0), 100.0]))
    assert torch.equal(awr_weights(adv, temperature=0.0), torch.ones(4))
    log_prob = torch.tensor([-1.0, -2.0, -3.0, -4.0])
    assert awr_actor_loss(log_prob, torch.ones(4)).item() == pytest.approx(2.5)


def test_cql_discrete_penalty_hand_values() -> None:
    q = torch.tensor([[100.0, 0.0, 0.0], [0.0, 0.0, 0.0], [1.0, 2.0, 3.0]])
    a = torch.tensor([0, 1, 0])
    pen = cql_discrete_penalty(q, a)
    assert pen[0].item() == pytest.approx(0.0, abs=1e-6)  # the data action dominates
    assert pen[1].item() == pytest.approx(math.log(3.0))
    assert pen[2].item() == pytest.approx(math.log(math.exp(1) + math.exp(2) + math.exp(3)) - 1.0)
    assert (pen >= 0).all()
    assert CQLPenalty(weight=2.0)(q, a).item() == pytest.approx(2.0 * pen.mean().item())


def test_cql_continuous_penalty_matches_numpy() -> None:
    rng = np.random.default_rng(0)
    q_s = rng.normal(size=(2, 3, 4))
    log_d = rng.normal(size=(3, 4))
    q_d = rng.normal(size=(2, 3))
    temp = 0.5
    z = (q_s - log_d[None]) / temp
    ref = temp * (np.log(np.exp(z - z.max(-1, keepdims=True)).sum(-1)) + z.max(-1)) - q_d
    got = cql_continuous_penalty(torch.tensor(q_s), torch.tensor(log_d), torch.tensor(q_d), temp)
    np.testing.assert_allclose(got.numpy(), ref, rtol=1e-10)


class _FixedActor(nn.Module):
    """Returns action = obs[:, :1] + shift and a fixed log-prob, so proposals are known exactly."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("center", torch.zeros(1))
        self.register_buffer("scale", torch.full((1,), 2.0))  # bounds [-2, 2]

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return obs[:, :1] + 0.5, torch.full((obs.shape[0],), -1.0)


class _SumCritic(nn.Module):
    """Two members: Q_0(s, a) = a, Q_1(s, a) = 2 a."""

    def forward(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        a = action[:, 0]
        return torch.stack((a, 2 * a))


def test_continuous_cql_penalty_proposals_by_hand() -> None:
    torch.manual_seed(0)
    obs = torch.tensor([[0.0], [1.0]])
    next_obs = torch.tensor([[3.0], [-1.0]])
    batch = Batch(obs, torch.tensor([[0.25], [-0.5]]), torch.zeros(2), next_obs, torch.zeros(2))
    k = 3
    penalty_block = ContinuousCQLPenalty(num_samples=k, weight=1.0)
    torch.manual_seed(1)
    got = penalty_block.penalty(_FixedActor(), _SumCritic(), batch)  # [2]
    # Rebuild by hand with the same uniform draws: rand_like is called once, on a [B*K, 1] tensor.
    torch.manual_seed(1)
    u = 2.0 * (2 * torch.rand(2 * k, 1) - 1)  # uniform on [-2, 2]
    expected = []
    for member, factor in enumerate((1.0, 2.0)):
        per_state = []
        for i in range(2):
            values = [factor * u[i * k + j, 0].item() + math.log(4.0) for j in range(k)]  # - log(1/4)
            values += [factor * (obs[i, 0].item() + 0.5) + 1.0] * k  # policy at s, log-prob -1
            values += [factor * (next_obs[i, 0].item() + 0.5) + 1.0] * k  # policy at s', evaluated at s
            lse = math.log(sum(math.exp(v) for v in values))
            per_state.append(lse - factor * batch.action[i, 0].item())
        expected.append(sum(per_state) / 2)
    assert got.tolist() == pytest.approx(expected, rel=1e-5)
    torch.manual_seed(1)
    assert penalty_block(_FixedActor(), _SumCritic(), batch).item() == pytest.approx(sum(expected), rel=1e-5)  # summed over critics


def test_cql_lagrange_multiplier_moves_with_the_gap() -> None:
    batch = Batch(torch.zeros(4, 1), torch.zeros(4, 1), torch.zeros(4), torch.zeros(4, 1), torch.zeros(4))
    low_gap = ContinuousCQLPenalty(num_samples=4, weight=1.0, lagrange_gap=-100.0, lagrange_lr=0.1)
    high_gap = ContinuousCQLPenalty(num_samples=4, weight=1.0, lagrange_gap=100.0, lagrange_lr=0.1)
    for _ in range(5):
        low_gap(_FixedActor(), _SumCritic(), batch)
        high_gap(_FixedActor(), _SumCritic(), batch)
    assert low_gap.alpha_prime.item() > 1.0  # penalty above the threshold: alpha' grows
    assert high_gap.alpha_prime.item() < 1.0  # below: alpha' shrinks


def test_gradient_diversity_by_hand() -> None:
    """Two members, one state: unit gradients (0.6, 0.8) and (0, 1) have inner product 0.8, counted for i != j twice,
    divided by N - 1 = 1; a third member orthogonal to the first adds its inner products and N - 1 = 2."""
    grads = torch.tensor([[[3.0, 4.0]], [[0.0, 2.0]]])  # [N=2, B=1, A=2]
    assert float(gradient_diversity(grads)) == pytest.approx(1.6)
    three = torch.tensor([[[3.0, 4.0]], [[0.0, 2.0]], [[-4.0, 3.0]]])  # <g1,g3> = 0, <g2,g3> = 0.6
    assert float(gradient_diversity(three)) == pytest.approx(2 * (0.8 + 0.0 + 0.6) / 2)
    batch = torch.cat([grads, -grads], dim=1)  # a second state with opposite gradients: the same similarity
    assert float(gradient_diversity(batch)) == pytest.approx(1.6)
    with pytest.raises(ValueError, match="N >= 2"):
        gradient_diversity(grads[:1])


def test_edac_penalty_takes_each_members_own_action_gradient_and_trains_the_critics() -> None:
    """Linear critics Q_i(s, a) = W_i [s, a] + b_i: grad_a Q_i is W_i's action columns, whatever the batch."""
    from qlearn.networks import QEnsemble
    from qlearn.types import Batch

    torch.manual_seed(0)
    critic = QEnsemble(obs_dim=2, action_dim=2, num_q=3, hidden_sizes=())
    batch = Batch(torch.randn(5, 2), torch.rand(5, 2) * 2 - 1, torch.zeros(5), torch.randn(5, 2), torch.zeros(5))
    penalty = EnsembleGradientDiversity(eta=0.5)(None, critic, batch)
    action_columns = critic.linear_layers()[0].weight[:, 2:, 0].unsqueeze(1)  # [N, 1, A]: weight is [N, in, out]
    expected = 0.5 * gradient_diversity(action_columns.detach())
    torch.testing.assert_close(penalty.detach(), expected)
    penalty.backward()
    assert critic.linear_layers()[0].weight.grad.abs().sum() > 0  # create_graph: the penalty reaches the weights
    with pytest.raises(ValueError, match="eta"):
        EnsembleGradientDiversity(eta=-1.0)
