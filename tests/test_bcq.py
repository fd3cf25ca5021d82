"""Discrete BCQ (Fujimoto et al., 2019): the imitation filter, the filtered next value and the update, against
hand-computed answers."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from torch import nn

from qlearn.agents import DQN
from qlearn.agents.saving import build_agent, load_agent
from qlearn.distributional import Categorical
from qlearn.errors import QlearnError
from qlearn.imitation import ImitationFilter
from qlearn.optim import adam
from qlearn.targets import DoubleQNextValue, GreedyNextValue
from qlearn.types import Batch, EnvSpec
from qlearn.updaters import PolyakUpdate

LOGITS = torch.tensor([[1.0, 2.0, -3.0]])  # relative probabilities e^-1 = 0.368, 1, e^-5 = 0.007


def linear(weight: list[list[float]]) -> nn.Linear:
    layer = nn.Linear(3, 3, bias=False)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor(weight))
    return layer


IDENTITY = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
FLIP_LAST = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, -1.0]]


def test_the_filter_keeps_actions_above_the_threshold_relative_to_the_likeliest() -> None:
    assert ImitationFilter(0.3, network=nn.Identity()).allowed(LOGITS).tolist() == [[True, True, False]]
    assert ImitationFilter(0.4, network=nn.Identity()).allowed(LOGITS).tolist() == [[False, True, False]]
    assert ImitationFilter(0.0, network=nn.Identity()).allowed(LOGITS).tolist() == [[True, True, True]]


def test_the_imitation_loss_is_nll_plus_the_logit_penalty() -> None:
    loss = ImitationFilter(0.3, logit_penalty=0.01, network=nn.Identity()).loss(LOGITS, torch.tensor([1]))
    expected = math.log(math.exp(1) + math.exp(2) + math.exp(-3)) - 2.0 + 0.01 * (1 + 4 + 9) / 3
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    d3rlpy_like = ImitationFilter(0.3, logit_penalty=0.5, penalize="log_probs", network=nn.Identity())
    log_probs = LOGITS - torch.logsumexp(LOGITS, dim=-1, keepdim=True)  # d3rlpy squares Categorical(...).logits
    nll = -log_probs[0, 1].item()
    assert d3rlpy_like.loss(LOGITS, torch.tensor([1])).item() == pytest.approx(
        nll + 0.5 * log_probs.pow(2).mean().item(), rel=1e-6)


def test_bad_settings_are_refused_in_one_line() -> None:
    with pytest.raises(QlearnError, match=r"threshold=1.0: use a value in \[0, 1\)"):
        ImitationFilter(1.0)
    with pytest.raises(QlearnError, match="logit_penalty=-1"):
        ImitationFilter(0.3, logit_penalty=-1)
    with pytest.raises(QlearnError, match="penalize='probs'"):
        ImitationFilter(0.3, penalize="probs")
    spec = EnvSpec(obs_shape=(3,), obs_dtype="float32", action_shape=(), num_actions=3)
    with pytest.raises(QlearnError, match="drop agent.distributional or agent.imitation"):
        DQN.from_spec(spec, imitation=ImitationFilter(), distributional=Categorical(5, 0.0, 1.0))


@pytest.mark.parametrize("block", [GreedyNextValue(), DoubleQNextValue()], ids=["greedy", "double"])
def test_next_values_pick_among_the_allowed_actions(block: object) -> None:
    q = linear(IDENTITY)  # Q(s', .) = s' = [1, 2, 3]
    next_obs = torch.tensor([[1.0, 2.0, 3.0]])
    assert block(q, q, next_obs).item() == 3.0  # type: ignore[operator]
    assert block(q, q, next_obs, torch.tensor([[True, True, False]])).item() == 2.0  # type: ignore[operator]


def bcq_agent() -> DQN:
    """Q(s, .) = s; imitation logits = s with the last sign flipped; the target starts equal to Q."""
    imitation = ImitationFilter(0.3, logit_penalty=0.01, network=linear(FLIP_LAST))
    return DQN(linear(IDENTITY), 3, optimizer=adam(1e-3), next_value=DoubleQNextValue(), gamma=0.99,
               target_updater=PolyakUpdate(0.005, every=1), loss="huber", max_grad_norm=None, imitation=imitation)


def test_the_greedy_action_is_the_best_allowed_one() -> None:
    agent = bcq_agent()
    assert agent.act(torch.tensor([[1.0, 2.0, 3.0]])).tolist() == [1]  # action 2 has the highest Q but e^-5 < 0.3
    assert agent.act(torch.tensor([[1.0, 2.0, -3.0]])).tolist() == [1]
    assert agent.act(torch.tensor([[3.0, 2.0, 0.0]])).tolist() == [0]


def test_one_update_has_the_hand_computed_loss_and_trains_both_networks() -> None:
    agent = bcq_agent()
    imitation_before = agent.imitation.network.weight.detach().clone()
    batch = Batch(obs=torch.tensor([[0.0, 0.0, 1.0]]), action=torch.tensor([0]), reward=torch.tensor([0.5]),
                  next_obs=torch.tensor([[1.0, 2.0, 3.0]]), terminated=torch.tensor([0.0]))
    metrics = agent.update(batch)
    y = 0.5 + 0.99 * 2.0  # the next action is 1 (Q 2), not the unfiltered argmax 2 (Q 3)
    td = abs(0.0 - y) - 0.5  # Huber beyond 1; Q(s, 0) = 0
    imitation = math.log(2 + math.exp(-1)) + 0.01 * (0 + 0 + 1) / 3  # logits at s: [0, 0, -1], action 0
    assert metrics["train/td_loss"].item() == pytest.approx(td, rel=1e-6)
    assert metrics["train/imitation_loss"].item() == pytest.approx(imitation, rel=1e-6)
    assert metrics["train/loss"].item() == pytest.approx(td + imitation, rel=1e-6)
    assert not torch.equal(agent.imitation.network.weight, imitation_before)  # one Adam over both networks
    assert not torch.equal(agent.q.weight, torch.tensor(IDENTITY))


def test_the_command_line_builder_shows_the_blocks_own_refusal() -> None:
    from qlearn.cli.build import build_agent as cli_build_agent

    config = {"_target_": "qlearn.agents.DQN.from_spec",
              "imitation": {"_target_": "qlearn.imitation.ImitationFilter", "threshold": 1.5}}
    with pytest.raises(QlearnError, match=r"^imitation threshold=1.5: use a value in \[0, 1\)"):
        cli_build_agent(config, EnvSpec((4,), "float32", (), num_actions=2), torch.device("cpu"))


def test_a_built_agent_saves_and_loads_its_imitation_network(tmp_path: Path) -> None:
    torch.manual_seed(0)
    spec = EnvSpec(obs_shape=(4,), obs_dtype="float32", action_shape=(), num_actions=2)
    config = {"_target_": "qlearn.agents.DQN.from_spec", "network": {"hidden_sizes": [8]},
              "imitation": {"_target_": "qlearn.imitation.ImitationFilter", "threshold": 0.3}}
    agent = build_agent(config, spec)
    with torch.no_grad():
        [m for m in agent.imitation.network.modules() if isinstance(m, nn.Linear)][-1].bias.copy_(
            torch.tensor([0.0, 50.0]))  # only action 1 allowed
    obs = torch.randn(64, 4)
    assert agent.act(obs).tolist() == [1] * 64
    loaded = load_agent(agent.save(tmp_path / "bcq.pt"))
    assert isinstance(loaded.imitation, ImitationFilter) and loaded.act(obs).tolist() == [1] * 64
