"""Every agent config with a matching env, and every experiment preset, composes and trains a few steps through the
same path as ``qlearn-train`` (in-process: Hydra's compose API, then `qlearn.cli.train.train`)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import open_dict

from qlearn.cli.build import CONFIG_DIR, register_resolvers
from qlearn.cli.train import RunNames, train
from qlearn.envs import make_env
from qlearn.offline.collect import random_policy, rollout
from qlearn.offline.io import save_dataset

register_resolvers()

AGENTS = sorted(p.stem for p in (CONFIG_DIR / "agent").glob("*.yaml"))
PRESETS = sorted(p.stem for p in (CONFIG_DIR / "experiment").glob("*.yaml"))
OFFLINE_AGENTS = {"bc", "bcq_discrete", "cql", "cql_discrete", "iql", "td3_bc", "sac_n", "edac"}
CONTINUOUS = {"sac", "redq", "droq", "cql", "td3", "ddpg", "td3_bc", "sac_n", "edac"}  # the rest take discrete actions (iql and bc take both)
# a few steps of anything: tiny budgets, intervals, buffers and evaluations
TINY = ["total_steps=300", "eval.episodes=1", "+env.max_episode_steps=100", "device=cpu", "logger=none"]
TINY_ONLINE = ["eval.every=150", "trainer.learning_starts=64", "trainer.random_steps=0", "trainer.batch_size=32",
               "trainer.updates_per_step=1", "trainer.checkpoint_every=150", "buffer.capacity=2000"]
TINY_OFFLINE = ["trainer.total_updates=30", "trainer.batch_size=32", "trainer.checkpoint_every=15", "eval.every=15"]
PRESET_ENV = {"dqn_atari": "BreakoutNoFrameskip-v4", "double_dqn_atari": "PongNoFrameskip-v4",
              "drq_eps_atari100k": "BoxingNoFrameskip-v4", "der_atari100k": "BoxingNoFrameskip-v4",
              "c51_atari": "BreakoutNoFrameskip-v4", "qrdqn_atari": "BreakoutNoFrameskip-v4",
              "iqn_atari": "BreakoutNoFrameskip-v4", "rainbow_atari": "BreakoutNoFrameskip-v4"}
# Atari presets: fewer CNN updates (each costs 50-250 ms on a CPU core)
ATARI_STEPS = {"total_steps": "140", "trainer.learning_starts": "100", "eval.every": "0"}


@pytest.fixture(scope="module")
def datasets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Small random-policy datasets (D4RL layout) for a discrete and a continuous env."""
    out = tmp_path_factory.mktemp("data")
    paths = {}
    for env_id in ("CartPole-v1", "Pendulum-v1"):
        env = make_env(env_id, seed=0)
        arrays, returns = rollout(env, random_policy(env), 600, seed=0)
        env.close()
        paths[env_id] = out / f"{env_id}.hdf5"
        save_dataset(paths[env_id], arrays, {"env_id": env_id, "ref_min_score": float(returns.min()),
                                             "ref_max_score": float(returns.max()) + 1.0})
    return paths


def run(overrides: list[str], run_dir: Path) -> dict:
    keyed = {o.split("=", 1)[0]: o for o in overrides}  # a later override of a key replaces an earlier one
    overrides = list(keyed.values())
    GlobalHydra.instance().clear()
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("train", overrides=overrides, return_hydra_config=True)
    names = RunNames(cfg.hydra.runtime.choices.agent, cfg.hydra.runtime.choices.get("experiment"))
    with open_dict(cfg):
        del cfg["hydra"]
    return train(cfg, run_dir, overrides, names)


def offline_options(name: str, datasets: dict[str, Path], env_id: str) -> list[str]:
    return [f"dataset.path={datasets[env_id]}", *TINY_OFFLINE]


@pytest.mark.parametrize("agent", AGENTS)
def test_every_agent_trains_through_the_command_line_path(agent: str, datasets: dict[str, Path],
                                                         tmp_path: Path) -> None:
    env_id = "Pendulum-v1" if agent in CONTINUOUS else "CartPole-v1"
    extra = offline_options(agent, datasets, env_id) if agent in OFFLINE_AGENTS else TINY_ONLINE
    results = run([f"agent={agent}", f"env.id={env_id}", *TINY, *extra], tmp_path / "run")
    assert results["agent"] == agent and results["env_id"] == env_id
    assert results["updates"] > 0 and results["final_eval"]["episodes"] == 1
    if agent in OFFLINE_AGENTS:
        assert results["final_eval"]["normalized_score"] is not None  # the dataset's own reference scores
    assert json.loads((tmp_path / "run" / "results.json").read_text())["updates"] == results["updates"]


@pytest.mark.parametrize("preset", PRESETS)
def test_every_preset_trains_a_few_steps(preset: str, datasets: dict[str, Path], tmp_path: Path) -> None:
    overrides = [f"experiment={preset}", *TINY]
    if preset.startswith(("iql", "cql", "bc", "td3bc", "sac_n", "edac")):
        discrete = preset.endswith("discrete")
        overrides += offline_options(preset, datasets, "CartPole-v1" if discrete else "Pendulum-v1")
        if preset == "iql_finetune":  # offline updates, then online steps with the dataset in the buffer
            overrides = [o for o in overrides if not o.startswith(("trainer.total_updates", "trainer.checkpoint"))]
            overrides += ["trainer.offline_updates=30", "trainer.learning_starts=32", "buffer.capacity=2000"]
    else:
        overrides += TINY_ONLINE
        if preset in PRESET_ENV:
            overrides += [f"env.id={PRESET_ENV[preset]}", *(f"{k}={v}" for k, v in ATARI_STEPS.items())]
    results = run(overrides, tmp_path / "run")
    assert results["updates"] > 0 and results["final_eval"]["episodes"] == 1


@pytest.mark.parametrize("agent", ["td3_bc", "sac_n", "edac"])
def test_offline_continuous_agents_fine_tune_online(agent: str, datasets: dict[str, Path], tmp_path: Path) -> None:
    """trainer=finetune (offline updates, then online steps with the dataset in the buffer) for the offline agents
    of the actor-critic templates, not only IQL."""
    overrides = [f"agent={agent}", f"dataset.path={datasets['Pendulum-v1']}", "trainer=finetune", "buffer=replay",
                 "agent.num_q=3", "trainer.offline_updates=20", *TINY, *TINY_ONLINE]
    results = run(overrides, tmp_path / "run")
    assert results["agent"] == agent and results["updates"] > 0 and results["final_eval"]["episodes"] == 1
    assert (tmp_path / "run" / "offline" / "results.json").exists()  # the offline phase ran first, in its own folder
