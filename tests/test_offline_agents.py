"""IQL, CQL (discrete and continuous) and BC on tiny problems whose answers are known."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from qlearn.agents import BC, DQN, IQL, REDQ
from qlearn.envs import make_env
from qlearn.losses import ContinuousCQLPenalty, CQLPenalty
from qlearn.networks import MLP
from qlearn.offline import NormalizedScore, OfflineDataset
from qlearn.optim import adam
from qlearn.targets import DoubleQNextValue, SoftMinNextValue
from qlearn.trainers import OfflineTrainer
from qlearn.types import EnvSpec
from qlearn.updaters import PolyakUpdate

GAMMA = 0.9
N_STATES = 4  # chain 0..3; action 1 (right) from state 3 pays 1 and ends the episode


def chain_step(s: int, a: int) -> tuple[int, float, bool]:
    if a == 1:
        return (s, 1.0, True) if s == N_STATES - 1 else (s + 1, 0.0, False)
    return max(s - 1, 0), 0.0, False


def chain_dataset(actions: tuple[int, ...], copies: int, seed: int = 0) -> OfflineDataset:
    """Every (state, action in ``actions``) pair ``copies`` times, one-hot observations."""
    eye = np.eye(N_STATES, dtype=np.float32)
    rows = [(s, a, *chain_step(s, a)) for s in range(N_STATES) for a in actions] * copies
    s, a, s2, r, d = (np.array(col) for col in zip(*rows))
    return OfflineDataset(eye[s], a.astype(np.int64), r.astype(np.float32), eye[s2], d.astype(np.float32), seed=seed)


def iql_fixed_point(expectile: float) -> np.ndarray:
    """Q of IQL's operator with both actions equally represented: V(s) = tau-expectile of {Q(s,0), Q(s,1)}."""
    q = np.zeros((N_STATES, 2))
    for _ in range(500):
        lo, hi = q.min(axis=1), q.max(axis=1)
        v = expectile * hi + (1 - expectile) * lo  # the tau-expectile of two equally likely values
        for s in range(N_STATES):
            for a in (0, 1):
                s2, r, d = chain_step(s, a)
                q[s, a] = r + GAMMA * (0.0 if d else v[s2])
    return q


DISCRETE = EnvSpec((N_STATES,), "float32", (), num_actions=2)


def test_discrete_iql_learns_the_expectile_fixed_point_and_the_best_action() -> None:
    torch.manual_seed(0)
    data = chain_dataset((0, 1), copies=8)
    agent = IQL.from_spec(DISCRETE, network={"hidden_sizes": (64,)}, lr=3e-3, expectile=0.9, temperature=3.0,
                          gamma=GAMMA, target_updater=PolyakUpdate(0.05))
    for _ in range(1500):
        agent.update(data.sample(64))
    obs = torch.eye(N_STATES)
    with torch.no_grad():
        q = agent.critic(obs).min(dim=0).values.numpy()  # [S, A]
    np.testing.assert_allclose(q, iql_fixed_point(0.9), atol=0.05)
    assert agent.act(obs, deterministic=True).tolist() == [1] * N_STATES


def test_discrete_cql_pushes_unseen_actions_down_and_bc_copies_the_data() -> None:
    torch.manual_seed(0)
    data = chain_dataset((1,), copies=8)  # the expert only ever goes right
    q_star = np.array([GAMMA ** (N_STATES - 1 - s) for s in range(N_STATES)])
    obs = torch.eye(N_STATES)

    def train(regularizer: CQLPenalty | None) -> np.ndarray:
        torch.manual_seed(1)
        q_net = MLP(N_STATES, 2, (64,))
        with torch.no_grad():
            q_net.net[-1].bias.copy_(torch.tensor([5.0, 0.0]))  # start with the unseen action looking best
        agent = DQN(q_net, 2, optimizer=adam(3e-3), next_value=DoubleQNextValue(), gamma=GAMMA, loss="mse",
                    max_grad_norm=None, target_updater=PolyakUpdate(0.05), regularizer=regularizer)
        for _ in range(1000):
            agent.update(data.sample(64))
        with torch.no_grad():
            return q_net(obs).numpy()

    plain, cql = train(None), train(CQLPenalty(weight=1.0))
    assert (plain[:, 0] > plain[:, 1]).all()  # without the penalty the unseen action's value never comes down
    assert (cql[:, 1] > cql[:, 0] + 0.3).all()  # with it, the data action wins everywhere ...
    np.testing.assert_allclose(cql[:, 1], q_star, atol=0.25)  # ... at about its true value

    bc = BC.from_spec(DISCRETE, network={"hidden_sizes": (32,)}, lr=3e-3)
    for _ in range(200):
        bc.update(data.sample(64))
    assert bc.act(obs, deterministic=True).tolist() == [1] * N_STATES


def bandit_dataset(low: float, high: float, n: int = 512) -> OfflineDataset:
    """One state, one step, reward -(a - 0.5)^2, actions uniform on [low, high]."""
    rng = np.random.default_rng(0)
    a = rng.uniform(low, high, size=(n, 1)).astype(np.float32)
    r = -((a[:, 0] - 0.5) ** 2)
    obs = np.ones((n, 1), np.float32)
    return OfflineDataset(obs, a, r.astype(np.float32), obs, np.ones(n, np.float32), seed=0)


CONTINUOUS = EnvSpec((1,), "float32", (1,), action_low=(-1.0,), action_high=(1.0,))


def test_continuous_iql_improves_on_bc_on_a_bandit() -> None:
    torch.manual_seed(0)
    data = bandit_dataset(-1.0, 1.0)
    iql = IQL.from_spec(CONTINUOUS, network={"hidden_sizes": (32, 32)}, lr=1e-3, expectile=0.7, temperature=10.0)
    bc = BC.from_spec(CONTINUOUS, network={"hidden_sizes": (32, 32)}, lr=1e-3)
    for _ in range(800):
        batch = data.sample(128)
        iql.update(batch)
        bc.update(batch)
    obs = torch.ones(1, 1)
    iql_action, bc_action = iql.act(obs, True).item(), bc.act(obs, True).item()
    assert abs(bc_action) < 0.15  # the data's mean action
    assert 0.3 < iql_action < 0.7  # advantage weighting moves it toward the best action, 0.5


def test_continuous_cql_keeps_out_of_data_actions_below_the_data() -> None:
    """Data only covers a in [-0.6, -0.4], where reward rises with a; CQL must not trust a = 1."""
    data = bandit_dataset(-0.6, -0.4)
    obs, far, near = torch.ones(1, 1), torch.ones(1, 1), torch.full((1, 1), -0.5)

    def gap(regularizer: ContinuousCQLPenalty | None) -> float:
        torch.manual_seed(0)
        agent = REDQ.from_spec(CONTINUOUS, num_q=2, actor_q="min", network={"hidden_sizes": (32, 32)}, lr=1e-3,
                               next_value=SoftMinNextValue(2, backup_entropy=False), critic_regularizer=regularizer)
        for _ in range(300):
            agent.update(data.sample(64))
        with torch.no_grad():
            return float(agent.critic(obs, far).min() - agent.critic(obs, near).min())

    conservative, plain = gap(ContinuousCQLPenalty(num_samples=4, weight=5.0)), gap(None)
    assert conservative < -0.5
    assert conservative < plain - 0.5


def test_iql_state_dict_round_trip_with_scheduler() -> None:
    agent = IQL.from_spec(CONTINUOUS, network={"hidden_sizes": (8,)}, actor_lr_decay_steps=10)
    data = bandit_dataset(-1.0, 1.0, n=32)
    for _ in range(3):
        agent.update(data.sample(8))
    clone = IQL.from_spec(CONTINUOUS, network={"hidden_sizes": (8,)}, actor_lr_decay_steps=10)
    clone.load_state_dict(agent.state_dict())
    assert clone.num_updates == 3
    assert clone.optimizers["actor"].param_groups[0]["lr"] == pytest.approx(agent.optimizers["actor"].param_groups[0]["lr"])
    assert agent.optimizers["actor"].param_groups[0]["lr"] < 3e-4  # the cosine schedule moved it
    for a, b in zip(agent.state_dict().values(), clone.state_dict().values()):
        if isinstance(a, torch.Tensor):
            assert torch.equal(a, b)


def cartpole_random_dataset(n: int = 400, seed: int = 0) -> OfflineDataset:
    env = make_env("CartPole-v1", seed=seed)
    rng = np.random.default_rng(seed)
    rows: dict[str, list] = {k: [] for k in ("o", "a", "r", "o2", "d", "t")}
    obs, _ = env.reset(seed=seed)
    for _ in range(n):
        action = rng.integers(2, size=1)
        nxt, r, term, trunc, info = env.step(action)
        final = info["final_obs"][0] if (term | trunc)[0] and "final_obs" in info else nxt[0]
        for k, v in zip(rows, (obs[0], action[0], r[0], final, term[0], trunc[0])):
            rows[k].append(v)
        obs = nxt
    env.close()
    o, a, r, o2, d, t = (np.array(v) for v in rows.values())
    return OfflineDataset(o.astype(np.float32), a.astype(np.int64), r.astype(np.float32), o2.astype(np.float32),
                          d.astype(np.float32), t, seed=seed)


def test_offline_trainer_writes_normalized_scores_and_resumes_exactly(tmp_path) -> None:
    def run(run_dir, total: int, resume: bool = False) -> IQL:
        torch.manual_seed(0)
        agent = IQL.from_spec(DISCRETE_CARTPOLE, network={"hidden_sizes": (16,)}, actor_lr_decay_steps=40)
        eval_env = make_env("CartPole-v1", seed=1)
        trainer = OfflineTrainer(agent, cartpole_random_dataset(), total_updates=total, batch_size=32,
                                 eval_env=eval_env, eval_every=20, eval_episodes=2, scores=[NormalizedScore(10.0, 510.0)],
                                 run_dir=run_dir, checkpoint_every=20, keep_checkpoints=5, log_every=10, progress=False)
        if resume:
            trainer.resume_from(run_dir / "checkpoints" / "step_000000020.pt")
        trainer.run()
        eval_env.close()
        return agent

    full = run(tmp_path / "a", 40)
    results = json.loads((tmp_path / "a" / "results.json").read_text())
    final = results["final_eval"]
    assert results["updates"] == 40 and final["episodes"] == 2 and results["scores"] == {"normalized_score": [10.0, 510.0]}
    assert final["normalized_score"] == pytest.approx(100 * (final["mean"] - 10.0) / 500.0)
    header, *rows = (tmp_path / "a" / "evaluations.csv").read_text().splitlines()
    assert header == "step,mean,std,episodes,normalized_score" and [r.split(",")[0] for r in rows] == ["20", "40"]

    resumed = run(tmp_path / "a", 40, resume=True)  # from update 20, same run dir: the second half again
    for key, value in full.state_dict().items():
        if isinstance(value, torch.Tensor):
            assert torch.equal(value, resumed.state_dict()[key]), key


DISCRETE_CARTPOLE = EnvSpec((4,), "float32", (), num_actions=2)
