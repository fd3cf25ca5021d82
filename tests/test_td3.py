"""TD3 / DDPG / TD3+BC: the deterministic actor's bounds, the action-noise block's distribution, the smoothed
clipped-double-Q target on hand-built values, one update against the TD3 paper's Algorithm 1 written out, the
policy delay and target cadence, TD3+BC's loss by hand, and a one-step bandit whose Q* is known."""

from __future__ import annotations

import copy
import io

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from qlearn.agents import TD3
from qlearn.errors import QlearnError
from qlearn.exploration import GaussianActionNoise
from qlearn.losses import deterministic_actor_loss, td3_bc_actor_loss
from qlearn.networks import DeterministicActor
from qlearn.targets import SmoothedMinNextValue
from qlearn.types import Batch, EnvSpec

PENDULUM = EnvSpec((3,), "float32", (1,), action_low=(-2.0,), action_high=(2.0,))
CARTPOLE = EnvSpec((4,), "float32", (), num_actions=2)


def random_batch(batch_size: int = 32, seed: int = 0, dtype: torch.dtype = torch.float32) -> Batch:
    g = torch.Generator().manual_seed(seed)
    return Batch(
        obs=torch.randn(batch_size, 3, generator=g, dtype=dtype),
        action=torch.rand(batch_size, 1, generator=g, dtype=dtype) * 4 - 2,
        reward=torch.randn(batch_size, generator=g, dtype=dtype),
        next_obs=torch.randn(batch_size, 3, generator=g, dtype=dtype),
        terminated=(torch.rand(batch_size, generator=g) < 0.25).to(dtype),
    )


def test_deterministic_actor_maps_tanh_onto_an_asymmetric_box() -> None:
    actor = DeterministicActor(2, action_low=(-1.0, 0.0), action_high=(3.0, 10.0), hidden_sizes=(8,))
    nn.init.zeros_(actor.head.weight)
    with torch.no_grad():
        actor.head.bias.copy_(torch.tensor([0.5, -1.0]))
    action = actor(torch.randn(5, 2))
    expected = torch.tensor([1.0 + 2.0 * torch.tanh(torch.tensor(0.5)), 5.0 + 5.0 * torch.tanh(torch.tensor(-1.0))])
    torch.testing.assert_close(action, expected.expand(5, 2))
    with torch.no_grad():
        actor.head.bias.fill_(50.0)  # saturated: at the upper bounds, never beyond
    assert torch.equal(actor.act(torch.randn(3, 2)), torch.tensor([[3.0, 10.0]] * 3))


def test_action_noise_has_sigma_times_scale_and_stays_in_the_box() -> None:
    scale, low, high = torch.tensor([2.0, 0.5]), torch.tensor([-100.0, -100.0]), torch.tensor([100.0, 100.0])
    g = torch.Generator().manual_seed(0)
    action = torch.zeros(200_000, 2)
    noisy = GaussianActionNoise(0.1)(action, scale, low, high, g)
    torch.testing.assert_close(noisy.std(dim=0), 0.1 * scale, rtol=0.01, atol=0.0)
    torch.testing.assert_close(noisy.mean(dim=0), torch.zeros(2), rtol=0.0, atol=2e-3)
    clipped = GaussianActionNoise(0.2, noise_clip=0.5)(action, scale, low, high, g)
    assert torch.equal(clipped.abs().amax(dim=0), 0.5 * scale)  # N(0, 0.2) beyond 2.5 sigma is clipped to 0.5
    assert 0.005 < float((clipped[:, 0].abs() == 1.0).float().mean()) < 0.02  # P(|z| > 2.5) = 0.0124
    tight = GaussianActionNoise(1.0)(torch.full((1000, 2), 0.9), scale, -torch.ones(2), torch.ones(2), g)
    assert float(tight.max()) == 1.0 and float(tight.min()) == -1.0
    assert GaussianActionNoise(0.0)(action, scale, low, high) is action
    with pytest.raises(ValueError, match="sigma"):
        GaussianActionNoise(-0.1)
    with pytest.raises(ValueError, match="noise_clip"):
        GaussianActionNoise(0.2, noise_clip=0.0)


class LinearCritics(nn.Module):
    """Q_i(s, a) = w_i * a + s_0 for two members, so the min depends on the sign of a."""

    def __init__(self, weights: list[float]) -> None:
        super().__init__()
        self.w = torch.tensor(weights)

    def forward(self, obs: Tensor, action: Tensor, members: Tensor | None = None) -> Tensor:
        w = self.w if members is None else self.w[members]
        return w[:, None] * action[:, 0][None, :] + obs[:, 0][None, :]


def test_smoothed_min_target_by_hand() -> None:
    actor = DeterministicActor(1, (-1.0,), (1.0,), hidden_sizes=())
    with torch.no_grad():
        actor.head.weight.fill_(1.0)
        actor.head.bias.zero_()
    next_obs = torch.tensor([[0.5], [-2.0]])
    critics = LinearCritics([1.0, 3.0])
    exact = SmoothedMinNextValue(GaussianActionNoise(0.0))(actor, critics, next_obs, None)
    a = torch.tanh(next_obs[:, 0])  # mu(s') = tanh(s')
    torch.testing.assert_close(exact, torch.minimum(1.0 * a, 3.0 * a) + next_obs[:, 0])
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    smoothed = SmoothedMinNextValue()(actor, critics, next_obs, g1)
    eps = (0.2 * torch.randn(2, 1, generator=g2)).clamp(-0.5, 0.5)
    a_noisy = (a[:, None] + eps).clamp(-1.0, 1.0)[:, 0]
    torch.testing.assert_close(smoothed, torch.minimum(a_noisy, 3.0 * a_noisy) + next_obs[:, 0])


def test_td3_bc_actor_loss_by_hand() -> None:
    q = torch.tensor([1.0, -3.0])
    pi = torch.tensor([[0.5, 0.0], [1.0, -1.0]])
    data = torch.tensor([[0.0, 0.0], [1.0, 1.0]])
    # lambda = 2.5 / mean|q| = 2.5 / 2; -lambda mean q = -1.25 * -1 = 1.25; mse = (0.25 + 0 + 0 + 4) / 4
    assert float(td3_bc_actor_loss(q, pi, data, 2.5)) == pytest.approx(1.25 + 1.0625)
    assert float(deterministic_actor_loss(q)) == pytest.approx(1.0)
    q_leaf = q.clone().requires_grad_(True)
    td3_bc_actor_loss(q_leaf, pi, data, 2.5).backward()  # lambda is a constant: d/dq = -lambda / B
    torch.testing.assert_close(q_leaf.grad, torch.full((2,), -1.25 / 2))


def reference_td3_step(agent: TD3, batch: Batch, it: int, rng_state: Tensor, policy_delay: int = 2,
                       tau: float = 0.005, gamma: float = 0.99) -> None:
    """The TD3 paper's Algorithm 1 (and the sfujim/TD3 code's ``train``) written out on ``agent``'s modules."""
    actor, critic, actor_t, critic_t = agent.actor, agent.critic, agent.actor_target, agent.critic_target
    torch.set_rng_state(rng_state)
    with torch.no_grad():
        noise = (torch.randn_like(batch.action) * 0.2).clamp(-0.5, 0.5) * actor.scale
        next_action = (actor_t(batch.next_obs) + noise).clamp(actor.low, actor.high)
        target_q = critic_t(batch.next_obs, next_action).min(dim=0).values
        target_q = batch.reward + (1 - batch.terminated) * gamma * target_q
    q1, q2 = critic(batch.obs, batch.action)
    critic_loss = F.mse_loss(q1, target_q) + F.mse_loss(q2, target_q)
    agent.optimizers["critic"].zero_grad()
    critic_loss.backward()
    agent.optimizers["critic"].step()
    if it % policy_delay == 0:
        actor_loss = -critic(batch.obs, actor(batch.obs))[0].mean()
        agent.optimizers["actor"].zero_grad()
        actor_loss.backward()
        agent.optimizers["actor"].step()
        with torch.no_grad():
            for online, target in ((critic, critic_t), (actor, actor_t)):
                for p, tp in zip(online.parameters(), target.parameters()):
                    tp.copy_(tau * p + (1 - tau) * tp)


def test_updates_equal_td3_algorithm_1_written_out() -> None:
    """Ten updates from the same weights and noise agree with the paper's loop to float64 round-off; the actor moves
    only on even updates and both targets with it."""
    torch.manual_seed(0)
    agent = TD3.from_spec(PENDULUM, network={"hidden_sizes": (16, 16)}).double()
    reference = copy.deepcopy(agent)
    for it in range(1, 11):
        batch = random_batch(seed=it, dtype=torch.float64)
        state = torch.get_rng_state()
        actor_before = [p.clone() for p in agent.actor.parameters()]
        target_before = [p.clone() for p in agent.critic_target.parameters()]
        agent.update(batch)
        reference_td3_step(reference, batch, it, state)
        actor_moved = any(not torch.equal(a, b) for a, b in zip(actor_before, agent.actor.parameters()))
        target_moved = any(not torch.equal(a, b) for a, b in zip(target_before, agent.critic_target.parameters()))
        assert actor_moved == target_moved == (it % 2 == 0)
    for name, p in agent.state_dict().items():
        if isinstance(p, Tensor) and p.is_floating_point():
            torch.testing.assert_close(p, reference.state_dict()[name], rtol=1e-12, atol=1e-12, msg=name)


def test_actor_step_leaves_critic_gradients_alone_and_acting_adds_noise() -> None:
    torch.manual_seed(0)
    agent = TD3.from_spec(PENDULUM, network={"hidden_sizes": (16, 16)}, policy_delay=1)
    agent.update(random_batch())
    assert all(p.requires_grad for p in agent.critic.parameters())
    obs = torch.zeros(4000, 3)
    greedy = agent.act(obs, deterministic=True)
    noisy = agent.act(obs)
    assert torch.equal(greedy, agent.actor(obs).detach())
    inside = (greedy.abs() < 1.5).all()  # away from the bounds the noise is N(0, (0.1 * 2)^2)
    assert inside and float((noisy - greedy).std()) == pytest.approx(0.2, rel=0.05)


def test_ddpg_and_td3_bc_settings_and_refusals() -> None:
    ddpg = TD3.from_spec(PENDULUM, num_q=1, policy_delay=1, next_value=SmoothedMinNextValue(GaussianActionNoise(0.0)))
    assert ddpg.critic(torch.zeros(2, 3), torch.zeros(2, 1)).shape == (1, 2)
    ddpg.update(random_batch())
    bc = TD3.from_spec(PENDULUM, bc_alpha=2.5)
    assert set(bc.update(random_batch())) >= {"train/critic_loss", "train/q_mean"}
    with pytest.raises(ValueError, match="policy_delay"):
        TD3.from_spec(PENDULUM, policy_delay=0)
    with pytest.raises(ValueError, match="bc_alpha"):
        TD3.from_spec(PENDULUM, bc_alpha=0.0)
    with pytest.raises(QlearnError, match="continuous"):
        TD3.from_spec(CARTPOLE)


def test_state_round_trip_continues_identically() -> None:
    torch.manual_seed(0)
    agent = TD3.from_spec(PENDULUM, network={"hidden_sizes": (16, 16)})
    for i in range(3):
        agent.update(random_batch(seed=i))
    clone = TD3.from_spec(PENDULUM, network={"hidden_sizes": (16, 16)})
    saved = io.BytesIO()
    torch.save(agent.state_dict(), saved)
    saved.seek(0)
    clone.load_state_dict(torch.load(saved, weights_only=True))  # a copy: a loaded optimizer state can alias
    assert clone.num_updates == 3
    torch.manual_seed(1)
    agent.update(random_batch(seed=9))
    torch.manual_seed(1)
    clone.update(random_batch(seed=9))  # update 4: the actor and targets step, from restored Adam moments
    for (name, a), b in zip(agent.state_dict().items(), clone.state_dict().values()):
        if isinstance(a, Tensor):
            assert torch.equal(a, b), name


@pytest.mark.parametrize("settings", [{}, {"num_q": 1, "policy_delay": 1}])
def test_one_step_bandit_learns_q_star_and_the_best_action(settings: dict) -> None:
    """One-step episodes with r(a) = -(a - 0.5)^2 on [-2, 2]: Q*(s, a) = r(a) and the best action is 0.5."""
    torch.manual_seed(0)
    agent = TD3.from_spec(PENDULUM, network={"hidden_sizes": (64, 64)}, lr=3e-3, **settings)
    g = torch.Generator().manual_seed(0)
    for _ in range(1000):  # the actor steps every second update, on a gradient that flattens near 0.5
        action = torch.rand(64, 1, generator=g) * 4 - 2
        obs = torch.ones(64, 3)
        agent.update(Batch(obs, action, -(action[:, 0] - 0.5) ** 2, obs, torch.ones(64)))
    grid = torch.linspace(-1.5, 1.5, 7).unsqueeze(-1)
    q = agent.critic(torch.ones(7, 3), grid).mean(dim=0)
    torch.testing.assert_close(q, -(grid[:, 0] - 0.5) ** 2, atol=0.15, rtol=0.0)
    assert agent.act(torch.ones(1, 3), deterministic=True).item() == pytest.approx(0.5, abs=0.1)
