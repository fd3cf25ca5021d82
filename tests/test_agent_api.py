"""The library user's doors: predict on one observation or a batch, save/load without knowing the architecture,
and qlearn.load_run on a qlearn-train run directory."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch

import qlearn
from qlearn import DQN, REDQ, Agent, EnvSpec
from qlearn.checkpoint import load_checkpoint
from qlearn.errors import QlearnError
from qlearn.targets import DoubleQNextValue


def plain_spec(env_id: str) -> tuple[gym.Env, EnvSpec]:
    env = gym.make(env_id)
    return env, EnvSpec.from_spaces(env.observation_space, env.action_space)


def test_dqn_predicts_one_observation_or_a_batch_and_round_trips_through_save_and_load(tmp_path: Path) -> None:
    env, spec = plain_spec("CartPole-v1")
    torch.manual_seed(0)
    agent = DQN.from_spec(spec, network={"hidden_sizes": [16]}, lr=1e-3)
    obs, _ = env.reset(seed=0)
    action = agent.predict(obs)
    assert action.shape == () and env.action_space.contains(int(action))
    batch = np.stack([env.observation_space.sample() for _ in range(5)])
    actions = agent.predict(batch)
    assert actions.shape == (5,) and actions.dtype == np.int64
    assert np.array_equal(actions, agent.predict(torch.as_tensor(batch)))  # tensors as numpy
    assert np.array_equal(agent.predict(batch.astype(np.float64)), actions)  # float64 is cast, not refused
    path = agent.save(tmp_path / "agents" / "dqn.pt")
    loaded = Agent.load(path)
    assert isinstance(loaded, DQN) and loaded.q.encoder is not None
    assert np.array_equal(loaded.predict(batch), actions)
    for (name, a), b in zip(agent.state_dict().items(), loaded.state_dict().values()):
        if isinstance(a, torch.Tensor):
            assert torch.equal(a, b), name
    with pytest.raises(TypeError, match="holds a DQN"):
        REDQ.load(path)


def test_a_soft_actor_critic_predicts_in_the_env_bounds_and_reloads_its_deterministic_policy(tmp_path: Path) -> None:
    env, spec = plain_spec("Pendulum-v1")
    agent = REDQ.from_spec(spec, num_q=2, network={"hidden_sizes": [16, 16]}, actor_q="min")
    obs, _ = env.reset(seed=0)
    action = agent.predict(obs)
    assert action.shape == (1,) and action.dtype == np.float32 and env.action_space.contains(action)
    loaded = REDQ.load(agent.save(tmp_path / "sac.pt"), device="cpu")
    assert np.array_equal(loaded.predict(obs), action)
    assert agent.predict(np.stack([obs, obs]), deterministic=False).shape == (2, 1)


def test_save_refuses_an_agent_built_from_objects_and_load_refuses_other_files(tmp_path: Path) -> None:
    _, spec = plain_spec("CartPole-v1")
    agent = DQN.from_spec(spec, next_value=DoubleQNextValue())
    with pytest.raises(QlearnError, match="torch.save"):
        agent.save(tmp_path / "x.pt")
    assert not (tmp_path / "x.pt").exists()
    torch.save({"weights": torch.zeros(1)}, tmp_path / "other.pt")
    with pytest.raises(QlearnError, match="not a saved qlearn agent"):
        Agent.load(tmp_path / "other.pt")
    with pytest.raises(QlearnError, match="does not exist"):
        Agent.load(tmp_path / "missing.pt")


def test_build_agent_takes_the_command_lines_agent_config_and_the_agent_saves(tmp_path: Path) -> None:
    _, spec = plain_spec("CartPole-v1")
    config = {"_target_": "qlearn.agents.DQN.from_spec", "lr": 1e-3, "network": {"hidden_sizes": [8]},
              "next_value": {"_target_": "qlearn.targets.DoubleQNextValue"}}
    agent = qlearn.build_agent(config, spec)
    assert isinstance(agent.next_value, DoubleQNextValue)
    assert isinstance(Agent.load(agent.save(tmp_path / "a.pt")).next_value, DoubleQNextValue)


def test_load_run_gives_the_trained_agent_and_its_env(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-m", "qlearn.cli.train", "total_steps=600", "trainer.learning_starts=200",
                           "eval.every=600", "eval.episodes=1", "logger=none", "device=cpu",
                           f"hydra.run.dir={run_dir}"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    run = qlearn.load_run(run_dir)
    saved = load_checkpoint(run_dir)["agent"]
    assert all(torch.equal(v, saved[k]) for k, v in run.agent.state_dict().items() if isinstance(v, torch.Tensor))
    env = run.make_env(seed=3)
    obs, _ = env.reset(seed=3)
    assert env.single_action_space.contains(int(run.agent.predict(obs[0])))
    assert run.agent.predict(obs).shape == (1,)
    env.close()
    with pytest.raises(QlearnError, match="does not exist"):
        qlearn.load_run(tmp_path / "nowhere")


def test_trainers_take_a_plain_env_and_a_same_step_make_vec_env_and_refuse_next_step(tmp_path: Path) -> None:
    from qlearn import OnlineTrainer, ReplayBuffer, evaluate

    env, spec = plain_spec("CartPole-v1")
    agent = DQN.from_spec(spec, network={"hidden_sizes": [16]})
    trainer = OnlineTrainer(agent, env, ReplayBuffer(1000, seed=0), eval_env=gym.make("CartPole-v1"), total_steps=300,
                            learning_starts=100, eval_every=300, eval_episodes=2, progress=False)
    results = trainer.run()
    assert results["total_steps"] == 300 and results["final_eval"]["episodes"] == 2
    same_step = {"autoreset_mode": gym.vector.AutoresetMode.SAME_STEP}
    recorded = gym.make_vec("CartPole-v1", 2, vectorization_mode="sync", vector_kwargs=same_step,
                            wrappers=[gym.wrappers.RecordEpisodeStatistics])
    assert evaluate(agent, recorded, 2, seed=0)["episodes"] == 2
    with pytest.raises(QlearnError, match="RecordEpisodeStatistics"):  # no returns to read: said, not looped on
        evaluate(agent, gym.make_vec("CartPole-v1", 2, vectorization_mode="sync", vector_kwargs=same_step), 2, seed=0)
    with pytest.raises(QlearnError, match="same-step autoreset"):
        OnlineTrainer(agent, gym.make_vec("CartPole-v1", 2), ReplayBuffer(1000), total_steps=300)


def test_env_kwargs_reach_gymnasium_make_and_a_wrong_one_is_named() -> None:
    """``+env.kwargs.<name>=<value>`` on the command line: the env config's ``kwargs`` go to gymnasium.make."""
    from qlearn.cli.build import build_env
    from qlearn.envs import EnvConfigError

    env = build_env({"id": "Pendulum-v1", "num_envs": 1, "kwargs": {"g": 3.5}}, seed=0)
    assert env.envs[0].unwrapped.g == 3.5
    env.close()
    with pytest.raises(EnvConfigError, match="does not take the keyword argument 'gravity'"):
        build_env({"id": "Pendulum-v1", "num_envs": 1, "kwargs": {"gravity": 0.0}}, seed=0)


def test_a_class_entry_point_makes_an_env_and_names_a_valid_run_directory() -> None:
    """``env.id=package.module:EnvClass`` builds the class unregistered; gymnasium's ``module:Env-v0`` form still
    imports the module and makes the registered id; run-directory labels hold no ``:`` or ``/``."""
    from gymnasium.envs.classic_control.cartpole import CartPoleEnv

    from qlearn.cli.build import _run_label
    from qlearn.envs import make_env

    env = make_env("gymnasium.envs.classic_control.cartpole:CartPoleEnv", seed=0, env_kwargs={"sutton_barto_reward": True})
    assert isinstance(env.envs[0].unwrapped, CartPoleEnv) and env.envs[0].unwrapped._sutton_barto_reward
    env.close()
    registered = make_env("gymnasium.envs.classic_control:CartPole-v1", seed=0)
    assert registered.envs[0].spec.max_episode_steps == 500  # the registered id, with its time limit
    registered.close()
    assert _run_label("gymnasium.envs.classic_control.cartpole:CartPoleEnv") == \
        "gymnasium.envs.classic_control.cartpole_CartPoleEnv"
    assert _run_label("ALE/Pong-v5") == "ALE_Pong-v5"
