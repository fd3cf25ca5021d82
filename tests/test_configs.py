"""Every Hydra preset composes and builds its agent; Double DQN differs from DQN by one block."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from qlearn.cli.build import CONFIG_DIR, build_agent, register_resolvers
from qlearn.types import EnvSpec

register_resolvers()
EXPERIMENTS = sorted(p.stem for p in (CONFIG_DIR / "experiment").glob("*.yaml"))
SPECS = {
    "CartPole-v1": EnvSpec((4,), "float32", (), num_actions=2),
    "PongNoFrameskip-v4": EnvSpec((4, 84, 84), "uint8", (), num_actions=6),
}


def resolved(overrides: list[str]) -> dict:
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        return OmegaConf.to_container(compose("train", overrides=overrides), resolve=True)


def leaf_differences(a: object, b: object, path: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        return [d for k in sorted(set(a) | set(b)) for d in leaf_differences(a.get(k), b.get(k), f"{path}.{k}")]
    return [] if a == b else [path]


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_every_experiment_composes_and_builds_its_agent(experiment: str) -> None:
    import torch

    cfg = resolved([f"experiment={experiment}"])
    agent = build_agent(cfg["agent"], SPECS[cfg["env"]["id"]], torch.device("cpu"))
    assert agent.num_actions == SPECS[cfg["env"]["id"]].num_actions


def test_double_dqn_differs_from_dqn_only_in_the_target_block() -> None:
    assert leaf_differences(resolved(["agent=dqn"]), resolved(["agent=double_dqn"])) == [".agent.next_value._target_"]
    atari = leaf_differences(resolved(["experiment=dqn_atari"]), resolved(["experiment=double_dqn_atari"]))
    assert atari == [".agent.next_value._target_"]


def test_the_default_job_is_dqn_on_cartpole() -> None:
    cfg = resolved([])
    assert cfg["env"]["id"] == "CartPole-v1"
    assert cfg["agent"]["_target_"] == "qlearn.agents.DQN.from_spec"
    assert cfg["total_steps"] == 100_000
