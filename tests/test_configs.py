"""Every Hydra preset composes and builds its agent; Double DQN differs from DQN by one block."""

from __future__ import annotations


import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from qlearn.cli.build import CONFIG_DIR, build_agent, register_resolvers
from qlearn.types import EnvSpec

register_resolvers()
EXPERIMENTS = sorted(p.stem for p in (CONFIG_DIR / "experiment").glob("*.yaml"))
OFFLINE = {"iql_mujoco", "cql_mujoco", "bc_mujoco", "iql_discrete", "cql_discrete", "bc_discrete", "bcq_discrete",
           "iql_finetune", "td3bc_mujoco", "sac_n_mujoco", "edac_mujoco"}
ONLINE = [e for e in EXPERIMENTS if e not in OFFLINE]
SPECS = {
    "CartPole-v1": EnvSpec((4,), "float32", (), num_actions=2),
    "MountainCar-v0": EnvSpec((2,), "float32", (), num_actions=3),
    "PongNoFrameskip-v4": EnvSpec((4, 84, 84), "uint8", (), num_actions=6),
    "Pendulum-v1": EnvSpec((3,), "float32", (1,), action_low=(-2.0,), action_high=(2.0,)),
    "Hopper-v5": EnvSpec((11,), "float32", (3,), action_low=(-1.0,) * 3, action_high=(1.0,) * 3),
}


def resolved(overrides: list[str]) -> dict:
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        return OmegaConf.to_container(compose("train", overrides=overrides), resolve=True)


def leaf_differences(a: object, b: object, path: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        return [d for k in sorted(set(a) | set(b)) for d in leaf_differences(a.get(k), b.get(k), f"{path}.{k}")]
    return [] if a == b else [path]


@pytest.mark.parametrize("experiment", ONLINE)
def test_every_experiment_composes_and_builds_its_agent(experiment: str) -> None:
    import torch

    from qlearn.agents import DQN, REDQ, TD3

    cfg = resolved([f"experiment={experiment}"])
    spec = SPECS[cfg["env"]["id"]]
    agent = build_agent(cfg["agent"], spec, torch.device("cpu"))
    if spec.discrete:
        assert isinstance(agent, DQN) and agent.num_actions == spec.num_actions
    elif isinstance(agent, TD3):  # the policy's own noise explores; the targets move when the actor steps
        assert cfg.get("exploration") is None and agent.target_updater.every == agent.policy_delay
    else:
        assert isinstance(agent, REDQ) and cfg.get("exploration") is None
        assert agent.actor_update_every == cfg["trainer"]["updates_per_step"]  # one actor step per env step


@pytest.mark.parametrize("experiment", sorted(OFFLINE))
def test_offline_presets_carry_the_papers_settings(experiment: str) -> None:
    import torch

    from qlearn.agents import BC, DQN, IQL, REDQ, TD3
    from qlearn.losses import ContinuousCQLPenalty, CQLPenalty, EnsembleGradientDiversity
    from qlearn.targets import DoubleQNextValue

    assert {p.stem for p in (CONFIG_DIR / "experiment").glob("*.yaml")} >= OFFLINE
    env_id = "CartPole-v1" if experiment.endswith("discrete") else "Hopper-v5"
    cfg = resolved([f"experiment={experiment}", f"env.id={env_id}"])
    assert cfg["trainer"]["batch_size"] == 256 and cfg.get("exploration") is None
    if experiment == "iql_finetune":  # IQL Sec. 5.3: 1M offline updates, then online with the dataset in the buffer
        assert cfg["trainer"]["_target_"] == "qlearn.trainers.FinetuneTrainer" and cfg["trainer"]["offline_updates"] == 1_000_000
        assert cfg["buffer"]["capacity"] >= 2_000_000 and cfg["trainer"]["updates_per_step"] == 1
    else:
        assert cfg["trainer"]["_target_"] == "qlearn.trainers.OfflineTrainer" and cfg.get("buffer") is None
    agent = build_agent(cfg["agent"], SPECS[env_id], torch.device("cpu"))
    kind = experiment.split("_")[0]
    if kind == "iql":  # Kostrikov et al., 2022: tau 0.7, beta 3, cosine actor schedule over the run
        assert isinstance(agent, IQL) and (agent.expectile, agent.temperature, agent.max_weight) == (0.7, 3.0, 100.0)
        if experiment == "iql_finetune":
            assert agent.actor_scheduler is None  # the actor keeps learning online
        else:
            assert agent.actor_scheduler is not None and agent.actor_scheduler.T_max == cfg["trainer"]["total_updates"]
    elif experiment == "cql_mujoco":  # CQL authors: alpha 5, 10 samples, policy lr 1e-4, no entropy backup, 3x256
        assert isinstance(agent, REDQ) and not agent.next_value.backup_entropy and agent.actor_q == "min"
        reg = agent.critic_regularizer
        assert isinstance(reg, ContinuousCQLPenalty) and (reg.weight, reg.num_samples, reg.lagrange_gap) == (5.0, 10, None)
        assert agent.optimizers["actor"].param_groups[0]["lr"] == 1e-4
        assert len(agent.critic.linear_layers()) == 4  # three hidden layers of 256
    elif experiment == "bcq_discrete":  # sfujim/BCQ regular_parameters: threshold 0.3, Huber, Adam 3e-4, Polyak 0.005
        assert isinstance(agent, DQN) and isinstance(agent.next_value, DoubleQNextValue) and agent.loss == "huber"
        assert (agent.imitation.threshold, agent.imitation.logit_penalty) == (0.3, 0.01) and agent.max_grad_norm is None
        assert (agent.target_updater.tau, agent.target_updater.every) == (0.005, 1) and agent.gamma == 0.99
        assert agent.optimizers["q"].param_groups[0]["lr"] == 3e-4
        assert {id(p) for p in agent.imitation.parameters()} <= {id(p) for p in agent.optimizers["q"].param_groups[0]["params"]}
    elif experiment == "td3bc_mujoco":  # Fujimoto & Gu, 2021: TD3's settings, alpha 2.5, normalised observations
        assert isinstance(agent, TD3) and agent.bc_alpha == 2.5 and agent.policy_delay == 2
        assert agent.critic.num_q == 2 and cfg["dataset"]["normalize_observations"]
    elif kind in ("sac", "edac"):  # CORL Hopper medium-replay: SAC-N N = 200; EDAC N = 50, eta 1; min over all N
        assert isinstance(agent, REDQ) and agent.actor_q == "min" and agent.next_value.backup_entropy
        assert agent.critic.num_q == agent.next_value.num_min == (200 if kind == "sac" else 50)
        assert len(agent.critic.linear_layers()) == 4  # three hidden layers of 256
        if kind == "edac":
            assert isinstance(agent.critic_regularizer, EnsembleGradientDiversity) and agent.critic_regularizer.eta == 1.0
        else:
            assert agent.critic_regularizer is None
    elif experiment == "cql_discrete":
        assert isinstance(agent, DQN) and isinstance(agent.next_value, DoubleQNextValue)
        assert isinstance(agent.regularizer, CQLPenalty) and agent.regularizer.weight == 1.0
    else:
        assert isinstance(agent, BC)


# (experiment, N, M, UTD, actor aggregate, dropout, LayerNorm, target entropy on Hopper)
CONTINUOUS_PRESETS = [
    ("sac_mujoco", 2, 2, 1, "min", 0.0, False, -3.0),  # Haarnoja et al., 2018: -|A|
    ("redq_mujoco", 10, 2, 20, "mean", 0.0, False, -1.0),  # REDQ code: MBPO's Hopper entropy
    ("droq_mujoco", 2, 2, 20, "mean", 0.0001, True, -1.0),  # DroQ README: Hopper dropout 1e-4
]


@pytest.mark.parametrize("preset", CONTINUOUS_PRESETS, ids=lambda p: p[0])
def test_continuous_presets_carry_the_papers_settings(preset: tuple) -> None:
    import torch

    name, num_q, num_min, utd, actor_q, dropout, layer_norm, entropy = preset
    cfg = resolved([f"experiment={name}"])
    assert cfg["env"]["id"] == "Hopper-v5" and cfg["trainer"]["updates_per_step"] == utd
    agent = build_agent(cfg["agent"], SPECS["Hopper-v5"], torch.device("cpu"))
    assert (agent.critic.num_q, agent.next_value.num_min, agent.actor_q) == (num_q, num_min, actor_q)
    assert agent.target_entropy == entropy
    dropouts = [m.p for m in agent.critic.net if isinstance(m, torch.nn.Dropout)]
    assert dropouts == ([dropout] * 2 if dropout else [])
    assert any("LayerNorm" in type(m).__name__ for m in agent.critic.net) == layer_norm


def test_per_env_settings_follow_env_id() -> None:
    cfg = resolved(["experiment=droq_mujoco", "env.id=Humanoid-v5"])
    assert cfg["agent"]["dropout"] == 0.1 and cfg["agent"]["target_entropy"] == -2
    cfg = resolved(["experiment=droq_mujoco", "env.id=Swimmer-v5"])  # not in the tables: the defaults
    assert cfg["agent"]["dropout"] == 0.01 and cfg["agent"]["target_entropy"] == "auto"


def test_double_dqn_differs_from_dqn_only_in_the_target_block() -> None:
    assert leaf_differences(resolved(["agent=dqn"]), resolved(["agent=double_dqn"])) == [".agent.next_value._target_"]
    atari = leaf_differences(resolved(["experiment=dqn_atari"]), resolved(["experiment=double_dqn_atari"]))
    assert atari == [".agent.next_value._target_"]


def test_rainbow_differs_from_dqn_only_in_its_six_switches() -> None:
    assert leaf_differences(resolved(["experiment=dqn_cartpole"]), resolved(["experiment=c51_cartpole"])) == [
        ".agent.distributional"]
    assert leaf_differences(resolved(["experiment=dqn_cartpole"]), resolved(["experiment=rainbow_cartpole"])) == [
        ".agent.distributional",                                           # C51
        ".agent.network.dueling", ".agent.network.noisy",                  # dueling, noisy (the agent's copy)
        ".agent.network.noisy_sigma0",
        ".agent.next_value._target_",                                      # double Q
        ".buffer.sampler",                                                 # prioritized replay
        ".exploration.schedule.end", ".exploration.schedule.start",        # noisy nets: no epsilon,
        ".network.dueling", ".network.noisy", ".network.noisy_sigma0",     # their noise scale
        ".trainer.random_steps"]                                           # and a random start (n-step: 5 already)


def test_ddpg_differs_from_td3_in_the_critics_the_smoothing_and_the_delay() -> None:
    for td3, ddpg in (("td3_pendulum", "ddpg_pendulum"), ("td3_mujoco", "ddpg_mujoco")):
        assert leaf_differences(resolved([f"experiment={td3}"]), resolved([f"experiment={ddpg}"])) == [
            ".agent.next_value.noise.noise_clip", ".agent.next_value.noise.sigma",  # no target-policy smoothing
            ".agent.num_q", ".agent.policy_delay", ".agent.target_updater.every"]  # one critic, no delay
    td3 = resolved(["experiment=td3_mujoco"])  # the sfujim/TD3 code's main.py and TD3.py
    assert (td3["trainer"]["random_steps"], td3["trainer"]["batch_size"], td3["agent"]["target_updater"]["every"]) == (
        25_000, 256, 2)


def test_evaluations_follow_the_budget_unless_set() -> None:
    assert resolved([])["eval"]["every"] == 10_000  # the default job: unchanged at its 100k budget
    assert resolved(["total_steps=20000"])["eval"]["every"] == 2_000
    assert resolved(["agent=sac", "total_steps=30000"])["eval"]["every"] == 3_000
    assert resolved(["agent=iql", "trainer.total_updates=5000"])["eval"]["every"] == 500  # offline: updates
    assert resolved(["total_steps=20000", "eval.every=500"])["eval"]["every"] == 500
    assert resolved(["experiment=dqn_atari", "total_steps=1000"])["eval"]["every"] == 250_000  # a preset's own


def test_the_default_job_is_dqn_on_cartpole() -> None:
    cfg = resolved([])
    assert cfg["env"]["id"] == "CartPole-v1"
    assert cfg["agent"]["_target_"] == "qlearn.agents.DQN.from_spec"
    assert cfg["total_steps"] == 100_000


def test_run_directories_are_named_after_the_env_or_the_dataset() -> None:
    from hydra.core.hydra_config import HydraConfig

    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        online = compose("train", overrides=["seed=3"], return_hydra_config=True)
        offline = compose("train", overrides=["experiment=iql_discrete", "dataset.path=/data/CartPole-v1-medium.hdf5"],
                          return_hydra_config=True)
    names = []
    for cfg in (online, offline):
        HydraConfig.instance().set_config(cfg)  # what a real run does before resolving hydra.run.dir
        names.append(str(cfg.hydra.run.dir))
    assert names[0].endswith("_dqn_CartPole-v1_seed3")
    assert names[1].endswith("_iql_CartPole-v1-medium_seed0")  # env.id is null until the dataset is read


def test_drq_eps_atari100k_is_dopamines_drq_eps_gin() -> None:
    """Each number against google/dopamine labs/atari_100k/configs/DrQ_eps.gin and the code it configures."""
    import torch

    from qlearn.atari_scores import HumanNormalizedScore
    from qlearn.augment import Compose, RandomIntensity, RandomShift
    from qlearn.targets import DoubleQNextValue

    cfg = resolved(["experiment=drq_eps_atari100k", "env.id=BreakoutNoFrameskip-v4", "seed=7"])
    env, trainer, schedule = cfg["env"], cfg["trainer"], cfg["exploration"]["schedule"]
    assert (env["sticky_action_prob"], env["terminal_on_life_loss"], env["clip_reward"]) == (0.0, True, True)
    assert (env["frame_skip"], env["frame_stack"], env["screen_size"], env["fire_reset_actions"]) == (4, 4, 84, [])
    assert not env["life_loss_reset"] and "max_episode_steps" not in env  # the ALE's 108k frames = 27k steps
    assert cfg["total_steps"] == trainer["total_steps"] == 100_000
    assert (trainer["learning_starts"], trainer["train_every"], trainer["updates_per_step"], trainer["batch_size"]) == (
        1600, 1, 1, 32)
    assert cfg["buffer"]["n_step"] == 10 and cfg["buffer"]["capacity"] >= 100_000 and "alpha" not in cfg["buffer"]
    assert (schedule["start"], schedule["end"], schedule["duration"], schedule["delay"]) == (1.0, 0.01, 5000, 1600)
    assert (trainer["eval_every"], trainer["eval_episodes"], trainer["eval_epsilon"]) == (0, 100, 0.001)
    agent_cfg = cfg["agent"]
    assert (agent_cfg["lr"], agent_cfg["adam_eps"], agent_cfg["loss"], agent_cfg["max_grad_norm"]) == (
        1e-4, 1.5e-4, "huber", None)
    agent = build_agent(agent_cfg, EnvSpec((4, 84, 84), "uint8", (), num_actions=4), torch.device("cpu"))
    assert agent.gamma == 0.99 and isinstance(agent.next_value, DoubleQNextValue)
    assert (agent.target_updater.tau, agent.target_updater.every) == (1.0, 1)
    adam = agent.optimizers["q"]
    assert isinstance(adam, torch.optim.Adam) and adam.defaults["betas"] == (0.9, 0.999)
    assert adam.defaults["lr"] == 1e-4 and adam.defaults["eps"] == 1.5e-4
    assert agent.q.encoder.fc[0].in_features == 7744 and agent.q.head.advantage  # SAME padding, dueling
    assert torch.count_nonzero(agent.q.encoder.fc[0].bias) == 0  # xavier init, zero biases
    aug = agent.augmentation
    assert isinstance(aug, Compose) and [type(a) for a in aug.augmentations] == [RandomShift, RandomIntensity]
    assert (aug.augmentations[0].pad, aug.augmentations[1].scale) == (4, 0.05)
    assert torch.equal(agent.augmentation_generator.get_state(), torch.Generator().manual_seed(7).get_state())
    (score_cfg,) = cfg["scores"]
    from hydra.utils import instantiate

    score = instantiate(score_cfg)
    assert isinstance(score, HumanNormalizedScore) and score.reference == [1.7, 30.5]
