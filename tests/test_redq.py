"""REDQ / SAC / DroQ agent: the target on hand-built values, update order and cadence, temperature
direction, state round trip, discrete-env refusal, and a one-step bandit whose Q* is known."""

from __future__ import annotations

import io
import math
import shutil
from collections import Counter

import pytest
import torch
from torch import Tensor, nn

from qlearn.agents import REDQ
from qlearn.errors import QlearnError
from qlearn.losses import ensemble_td_loss, sac_actor_loss, temperature_loss
from qlearn.targets import SoftMinNextValue, random_subset, td_target
from qlearn.types import Batch, EnvSpec
from qlearn.updaters import PolyakUpdate

PENDULUM = EnvSpec((3,), "float32", (1,), action_low=(-2.0,), action_high=(2.0,))


def random_batch(batch_size: int = 32, obs_dim: int = 3, act_dim: int = 1, seed: int = 0) -> Batch:
    g = torch.Generator().manual_seed(seed)
    return Batch(
        obs=torch.randn(batch_size, obs_dim, generator=g),
        action=torch.rand(batch_size, act_dim, generator=g) * 4 - 2,
        reward=torch.randn(batch_size, generator=g),
        next_obs=torch.randn(batch_size, obs_dim, generator=g),
        terminated=(torch.rand(batch_size, generator=g) < 0.25).float(),
    )


class FixedActor(nn.Module):
    """Returns the same action and log-probability for every state."""

    def __init__(self, action: float, log_prob: float) -> None:
        super().__init__()
        self.action, self.log_prob = action, log_prob

    def forward(self, obs: Tensor) -> tuple[Tensor, Tensor]:
        b = obs.shape[0]
        return torch.full((b, 1), self.action), torch.full((b,), self.log_prob)


class TableCritic(nn.Module):
    """Q_i(s, .) = table[i, s] for integer states s; evaluates only the requested members."""

    def __init__(self, table: list[list[float]]) -> None:
        super().__init__()
        self.table = torch.tensor(table)
        self.num_q = self.table.shape[0]

    def forward(self, obs: Tensor, action: Tensor, members: Tensor | None = None) -> Tensor:
        table = self.table if members is None else self.table[members]
        return table[:, obs.long()]  # [M, B]


# 3 target critics x 2 next states, chosen so that each 2-subset of members gives a distinct pair of minima.
TABLE = [[2.0, 4.0], [1.0, 6.0], [3.0, 5.0]]
SUBSET_MINIMA = {(0, 1): (1.0, 4.0), (0, 2): (2.0, 4.0), (1, 2): (1.0, 5.0)}


def soft_value(actor: nn.Module, next_obs: list[int], alpha: float, num_min: int,
               generator: torch.Generator | None = None, backup_entropy: bool = True) -> Tensor:
    """The agent's two calls: draw the subset, then the value for it."""
    block = SoftMinNextValue(num_min, backup_entropy=backup_entropy)
    critic = TableCritic(TABLE)
    return block(actor, critic, torch.tensor(next_obs), alpha, block.draw(critic.num_q, generator))


def test_soft_value_with_m_equal_n_is_the_plain_min_minus_the_entropy_term() -> None:
    v = soft_value(FixedActor(0.3, -1.5), [0, 1], alpha=0.2, num_min=3)
    torch.testing.assert_close(v, torch.tensor([1.0 + 0.3, 4.0 + 0.3]))  # min - 0.2 * (-1.5)
    v = soft_value(FixedActor(0.3, -1.5), [0, 1], alpha=0.2, num_min=3, backup_entropy=False)  # CQL's backup
    torch.testing.assert_close(v, torch.tensor([1.0, 4.0]))


def test_soft_value_takes_the_min_over_a_uniformly_random_pair() -> None:
    g = torch.Generator().manual_seed(0)
    seen: Counter[tuple[float, float]] = Counter()
    for _ in range(3000):
        v = soft_value(FixedActor(0.0, 0.5), [0, 1], 1.0, 2, g)
        seen[tuple(round(x + 0.5, 4) for x in v.tolist())] += 1  # add back alpha * log_prob
    assert set(seen) == set(SUBSET_MINIMA.values())
    for pair, count in seen.items():
        assert count / 3000 == pytest.approx(1 / 3, abs=0.04), pair


def test_redq_target_on_a_hand_built_batch() -> None:
    # y = r + gamma (1 - d) (min_{M} Q_target(s', a') - alpha log pi(a'|s')), with M = N = 3.
    next_v = soft_value(FixedActor(0.0, -2.0), [1, 0, 1], 0.5, 3)
    y = td_target(torch.tensor([1.0, -1.0, 0.5]), torch.tensor([0.0, 0.0, 1.0]), next_v, 0.9)
    # next values: s1: 4 + 1 = 5, s0: 1 + 1 = 2; the third is terminal.
    torch.testing.assert_close(y, torch.tensor([1.0 + 0.9 * 5.0, -1.0 + 0.9 * 2.0, 0.5]))


def test_random_subset_draws_distinct_members() -> None:
    g = torch.Generator().manual_seed(1)
    for _ in range(50):
        idx = random_subset(10, 2, g)
        assert idx.shape == (2,) and idx[0] != idx[1] and 0 <= int(idx.min()) and int(idx.max()) < 10
    with pytest.raises(ValueError, match="subset size"):
        random_subset(2, 3)


def test_ensemble_td_loss_sums_member_mses() -> None:
    q = torch.tensor([[1.0, 2.0], [0.0, 4.0]])
    y = torch.tensor([1.0, 1.0])
    assert ensemble_td_loss(q, y).item() == pytest.approx((0 + 1) / 2 + (1 + 9) / 2)
    with pytest.raises(ValueError, match=r"\[N, B\]"):
        ensemble_td_loss(q, y.unsqueeze(-1))


def test_sac_actor_loss_and_temperature_direction() -> None:
    assert sac_actor_loss(torch.tensor([1.0, -1.0]), torch.tensor([2.0, 4.0]), 0.5).item() == pytest.approx(-3.0)
    for log_prob, should_rise in ((torch.full((8,), 2.0), True), (torch.full((8,), -5.0), False)):
        log_alpha = nn.Parameter(torch.tensor(0.0))
        opt = torch.optim.SGD([log_alpha], lr=0.1)
        temperature_loss(log_alpha, log_prob, target_entropy=-1.0).backward()
        opt.step()
        # log_prob 2: entropy -2 is below the target -1, so alpha must rise; log_prob -5: entropy 5, alpha falls
        assert (log_alpha.item() > 0) == should_rise


def test_agent_temperature_rises_when_the_policy_entropy_is_below_target() -> None:
    torch.manual_seed(0)
    agent = REDQ.from_spec(PENDULUM, network={"hidden_sizes": (16,)}, target_entropy=50.0)  # unreachable: alpha must rise
    for _ in range(5):
        agent.update(random_batch())
    assert agent.alpha.item() > 1.0
    agent = REDQ.from_spec(PENDULUM, network={"hidden_sizes": (16,)}, target_entropy=-50.0)
    for _ in range(5):
        agent.update(random_batch())
    assert agent.alpha.item() < 1.0


def test_entropy_is_measured_and_targeted_in_squashed_units() -> None:
    """On a box of [-100, 100] the actor's env-unit log-density is log 100 below the squashed one, whose
    entropy ceiling is log 2: the metric is the squashed entropy, and a target of 2 is out of reach
    (alpha rises) although the env-unit entropy is above it."""
    wide = EnvSpec((3,), "float32", (1,), action_low=(-100.0,), action_high=(100.0,))
    torch.manual_seed(0)
    agent = REDQ.from_spec(wide, network={"hidden_sizes": (16,)}, target_entropy=2.0)
    batch = random_batch()
    with torch.random.fork_rng():
        torch.manual_seed(1)
        agent.actor(batch.next_obs)  # update() samples the target's a' first
        _, log_prob = agent.actor(batch.obs)  # then the actor step's a~; env units
    torch.manual_seed(1)
    metrics = agent.update(batch)
    env_entropy = -log_prob.mean().item()
    assert env_entropy > 2.0 + 2.0
    assert metrics["train/entropy"].item() == pytest.approx(env_entropy - math.log(100.0), rel=1e-5)
    assert agent.alpha.item() > 1.0


def test_critic_loss_is_the_summed_mse_to_the_redq_target() -> None:
    """On Pendulum's [-2, 2] the backup's log pi is in squashed units: the actor's env-unit value + log 2."""
    torch.manual_seed(0)
    agent = REDQ.from_spec(PENDULUM, num_q=4, network={"hidden_sizes": (16,)}, gamma=0.9, actor_update_every=100)
    batch = random_batch()
    generator = torch.Generator().set_state(agent.subset_generator.get_state())
    with torch.no_grad(), torch.random.fork_rng():
        torch.manual_seed(7)
        next_action, next_log_prob = agent.actor(batch.next_obs)
        members = random_subset(4, 2, generator)
        q_next = agent.critic_target(batch.next_obs, next_action)[members].min(dim=0).values
        squashed_log_prob = next_log_prob + math.log(2.0)
        y = batch.reward + 0.9 * (1 - batch.terminated) * (q_next - agent.alpha * squashed_log_prob)
        expected = (agent.critic(batch.obs, batch.action) - y).pow(2).mean(dim=1).sum()
    torch.manual_seed(7)
    metrics = agent.update(batch)
    assert metrics["train/critic_loss"].item() == pytest.approx(expected.item(), rel=1e-5)


@pytest.mark.parametrize("actor_q", ["mean", "min"])
def test_actor_loss_aggregates_the_critics_as_configured(actor_q: str) -> None:
    torch.manual_seed(0)
    agent = REDQ.from_spec(PENDULUM, num_q=5, network={"hidden_sizes": (16,)}, actor_q=actor_q)
    obs, alpha = random_batch().obs, torch.tensor(0.3)
    with torch.random.fork_rng():
        action, log_prob = agent.actor(obs)
        q = agent.critic(obs, action)  # [N, B]; the members disagree at init
    q_pi = q.mean(dim=0) if actor_q == "mean" else q.min(dim=0).values
    loss, _ = agent._actor_loss(obs, alpha)
    squashed_log_prob = log_prob + math.log(2.0)  # Pendulum's scale is 2
    assert loss.item() == pytest.approx((alpha * squashed_log_prob - q_pi).mean().item(), rel=1e-5)
    assert not torch.allclose(q.mean(dim=0), q.min(dim=0).values)


def test_update_order_is_critic_actor_alpha_target_and_actor_waits_its_turn() -> None:
    torch.manual_seed(0)
    agent = REDQ.from_spec(PENDULUM, network={"hidden_sizes": (16,)}, actor_update_every=3)
    calls: list[str] = []
    for name, opt in agent.optimizers.items():
        step = opt.step
        opt.step = lambda *a, _n=name, _s=step, **k: (calls.append(_n), _s(*a, **k))[1]  # type: ignore[method-assign]
    updater = agent.target_updater
    agent.target_updater = lambda online, target, step: (calls.append("target"), updater(online, target, step))  # type: ignore[assignment]
    for _ in range(3):
        agent.update(random_batch())
    assert calls == ["critic", "target", "critic", "target", "critic", "actor", "alpha", "target"]


def test_target_critic_moves_by_polyak_and_never_receives_gradients() -> None:
    torch.manual_seed(0)
    agent = REDQ.from_spec(PENDULUM, network={"hidden_sizes": (16,)}, target_updater=PolyakUpdate(0.1))
    online_before = [p.detach().clone() for p in agent.critic.parameters()]
    target_before = [p.detach().clone() for p in agent.critic_target.parameters()]
    agent.update(random_batch())
    for p0, t0, p, t in zip(online_before, target_before, agent.critic.parameters(), agent.critic_target.parameters()):
        assert t.grad is None and not t.requires_grad
        torch.testing.assert_close(t, 0.9 * t0 + 0.1 * p)
        assert not torch.equal(p, p0)


def test_state_dict_round_trip_reproduces_the_next_update() -> None:
    torch.manual_seed(0)
    a = REDQ.from_spec(PENDULUM, num_q=5, network={"hidden_sizes": (16,)}, seed=3)
    for i in range(4):
        a.update(random_batch(seed=i))
    buf = io.BytesIO()
    torch.save(a.state_dict(), buf)
    buf.seek(0)
    b = REDQ.from_spec(PENDULUM, num_q=5, network={"hidden_sizes": (16,)}, seed=99)
    b.load_state_dict(torch.load(buf, weights_only=True))
    assert b.num_updates == 4 and b.alpha.item() == a.alpha.item()
    torch.manual_seed(5)
    ma = a.update(random_batch(seed=9))
    torch.manual_seed(5)
    mb = b.update(random_batch(seed=9))
    for key in ma:
        assert torch.equal(ma[key], mb[key]), key


def test_discrete_action_space_is_refused_with_a_clear_message() -> None:
    with pytest.raises(QlearnError, match="continuous"):
        REDQ.from_spec(EnvSpec((4,), "float32", (), num_actions=2))


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="num_min"):
        REDQ.from_spec(PENDULUM, num_q=2, next_value=SoftMinNextValue(3))
    with pytest.raises(ValueError, match="num_min"):
        SoftMinNextValue(0)
    with pytest.raises(ValueError, match="actor_q"):
        REDQ.from_spec(PENDULUM, actor_q="max")


@pytest.mark.parametrize("settings", [{"num_q": 2, "actor_q": "min"}, {"num_q": 5, "next_value": SoftMinNextValue(2)}])
def test_one_step_bandit_learns_q_star_and_the_best_action(settings: dict) -> None:
    """One-step episodes with r(a) = -(a - 0.5)^2 on [-2, 2]: Q*(s, a) = r(a) and the best action is 0.5."""
    torch.manual_seed(0)
    agent = REDQ.from_spec(PENDULUM, network={"hidden_sizes": (64, 64)}, init_alpha=0.01, learn_alpha=False, lr=3e-3, **settings)
    g = torch.Generator().manual_seed(0)
    for _ in range(400):
        action = torch.rand(64, 1, generator=g) * 4 - 2
        obs = torch.ones(64, 3)
        batch = Batch(obs, action, -(action[:, 0] - 0.5) ** 2, obs, torch.ones(64))
        agent.update(batch)
    grid = torch.linspace(-1.5, 1.5, 7).unsqueeze(-1)
    q = agent.critic(torch.ones(7, 3), grid).mean(dim=0)
    torch.testing.assert_close(q, -(grid[:, 0] - 0.5) ** 2, atol=0.15, rtol=0.0)
    best = agent.act(torch.ones(1, 3), deterministic=True).item()
    assert best == pytest.approx(0.5, abs=0.1)


@pytest.mark.skipif(shutil.which("g++") is None and shutil.which("clang++") is None,
                    reason="torch.compile's CPU backend needs a C++ compiler")
def test_compiled_update_matches_the_eager_one(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch._inductor.config as inductor_config

    monkeypatch.setattr(inductor_config, "fallback_random", True)  # the same action samples as eager
    agents = []
    for compile_ in (False, True):
        torch.manual_seed(0)
        agents.append(REDQ.from_spec(PENDULUM, num_q=3, network={"hidden_sizes": (16,)}, actor_update_every=2, compile=compile_))
    for i in range(4):
        metrics = []
        for agent in agents:
            torch.manual_seed(i)
            metrics.append(agent.update(random_batch(seed=i)))
        for key in metrics[0]:
            torch.testing.assert_close(metrics[0][key], metrics[1][key], rtol=1e-4, atol=1e-5)
    for p_eager, p_compiled in zip(agents[0].parameters(), agents[1].parameters()):
        torch.testing.assert_close(p_eager, p_compiled, rtol=1e-4, atol=1e-5)


def test_critic_loss_factor_scales_the_critic_loss_and_its_gradient() -> None:
    """SB3's SAC critic loss is 0.5 * sum of the critics' MSEs: critic_loss_factor=0.5."""
    losses, grads = {}, {}
    for factor in (1.0, 0.5):
        torch.manual_seed(0)
        agent = REDQ.from_spec(PENDULUM, network={"hidden_sizes": (16,)}, critic_loss_factor=factor)
        torch.manual_seed(1)
        losses[factor] = agent.update(random_batch())["train/critic_loss"].item()
        grads[factor] = agent.critic.linear_layers()[0].weight.grad.clone()
    assert losses[0.5] == pytest.approx(0.5 * losses[1.0], rel=1e-6)
    torch.testing.assert_close(grads[0.5], 0.5 * grads[1.0])


@pytest.mark.parametrize("before", [False, True])
def test_actor_loss_before_critic_step_sees_the_pre_step_critic(before: bool) -> None:
    """The REDQ code computes its policy loss before the critic's optimizer step; qlearn by default after."""
    torch.manual_seed(0)
    agent = REDQ.from_spec(PENDULUM, network={"hidden_sizes": (16,)}, actor_loss_before_critic_step=before)
    initial = [p.detach().clone() for p in agent.critic.parameters()]
    seen: list[list[Tensor]] = []
    actor_loss = agent._actor_loss

    def watched(obs: Tensor, alpha: Tensor) -> tuple[Tensor, Tensor]:
        seen.append([p.detach().clone() for p in agent.critic.parameters()])
        return actor_loss(obs, alpha)

    agent._actor_loss = watched  # type: ignore[method-assign]
    agent.update(random_batch())
    same = all(torch.equal(a, b) for a, b in zip(seen[0], initial))
    assert same is before
    assert not all(torch.equal(a, b) for a, b in zip(agent.critic.parameters(), initial))  # the critic did step


def test_alpha_actor_critic_is_corls_sac_n_order() -> None:
    """CORL's sac_n.py/edac.py (and the EDAC authors): alpha on a fresh sample, the actor with the new alpha on the
    pre-step critic, then the critic, whose target samples the updated actor and uses the new alpha."""
    torch.manual_seed(0)
    agent = REDQ.from_spec(PENDULUM, network={"hidden_sizes": (16,)}, alpha_actor_critic=True)
    calls: list[str] = []
    for name, opt in agent.optimizers.items():
        step = opt.step
        opt.step = lambda *a, _n=name, _s=step, **k: (calls.append(_n), _s(*a, **k))[1]  # type: ignore[method-assign]
    forward = agent.actor.forward
    agent.actor.forward = lambda *a, **k: (calls.append("sample"), forward(*a, **k))[1]  # type: ignore[method-assign]
    alphas: list[float] = []
    actor_loss = agent._actor_loss
    agent._actor_loss = lambda obs, alpha: (alphas.append(float(alpha)), actor_loss(obs, alpha))[1]  # type: ignore
    critic_loss = agent._critic_loss
    agent._critic_loss = lambda batch, members, alpha: (alphas.append(float(alpha)), critic_loss(batch, members, alpha))[1]  # type: ignore
    agent.update(random_batch())
    assert calls == ["sample", "alpha", "sample", "actor", "sample", "critic"]
    assert alphas[0] == alphas[1] == pytest.approx(float(agent.alpha)) and alphas[0] != 1.0  # both after alpha's step
    with pytest.raises(ValueError, match="alpha_actor_critic"):
        REDQ.from_spec(PENDULUM, alpha_actor_critic=True, actor_update_every=2)


def test_cleanrl_actor_cadence_two_actor_steps_every_second_update_and_a_fresh_alpha_sample() -> None:
    """CleanRL's policy_frequency=2 (two actor steps every second update), each followed by an alpha step on a
    fresh sample from the updated actor (alpha_resample)."""
    torch.manual_seed(0)
    agent = REDQ.from_spec(PENDULUM, network={"hidden_sizes": (16,)}, actor_update_every=2, actor_steps=2,
                           alpha_resample=True)
    calls: list[str] = []
    for name, opt in agent.optimizers.items():
        step = opt.step
        opt.step = lambda *a, _n=name, _s=step, **k: (calls.append(_n), _s(*a, **k))[1]  # type: ignore[method-assign]
    forward = agent.actor.forward
    agent.actor.forward = lambda *a, **k: (calls.append("sample"), forward(*a, **k))[1]  # type: ignore[method-assign]
    for _ in range(2):
        agent.update(random_batch())
    assert calls == ["sample", "critic", "sample", "critic", "sample", "actor", "sample", "alpha",
                     "sample", "actor", "sample", "alpha"]
