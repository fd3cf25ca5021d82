"""Every MuJoCo preset's entropy target is reachable on its env's real action box.

The REDQ/DroQ presets take MBPO's per-env targets (Humanoid -2), stated for actions in [-1, 1]; Humanoid's box
is [-0.4, 0.4]^17, where the most entropy any policy has is 17 log 0.8 = -3.8 in env units. Compared in env
units the target -2 is out of reach and the temperature grows without bound; compared in squashed units
(as the REDQ code does) the ceiling is 17 log 2 = 11.8. The check is behavioural: at the actor's
highest-entropy policy the temperature must fall.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from qlearn.cli.build import CONFIG_DIR, build_agent, register_resolvers
from qlearn.envs import make_env
from qlearn.types import Batch, EnvSpec

pytest.importorskip("mujoco")
register_resolvers()

PRESETS = ("redq_mujoco", "droq_mujoco", "sac_mujoco")
ENVS = ("Hopper-v5", "HalfCheetah-v5", "Walker2d-v5", "Ant-v5", "Humanoid-v5")  # every env the presets name


def env_spec(env_id: str) -> EnvSpec:
    env = make_env(env_id)
    try:
        return EnvSpec.from_env(env)
    finally:
        env.close()


@pytest.mark.parametrize("env_id", ENVS)
@pytest.mark.parametrize("preset", PRESETS)
def test_preset_target_entropy_is_below_the_highest_reachable_entropy(
    preset: str, env_id: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # MuJoCo writes MUJOCO_LOG.TXT (a deprecation warning of Humanoid's model) here
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        # one actor (and alpha) step in the one update below; nothing else differs from the preset
        cfg = compose("train", overrides=[f"experiment={preset}", f"env.id={env_id}", "agent.actor_update_every=1"])
    cfg = OmegaConf.to_container(cfg, resolve=True)
    spec = env_spec(env_id)
    torch.manual_seed(0)
    agent = build_agent(cfg["agent"], spec, torch.device("cpu"))
    low, high = torch.tensor(spec.action_low), torch.tensor(spec.action_high)
    num_actions = low.numel()
    # The ceilings: a uniform policy over the box; the target is stated in squashed units (|A| log 2).
    assert agent.target_entropy < num_actions * math.log(2.0)
    # The actor's highest-entropy policy, u ~ N(0, 1) in every state (about 0.67 nats of the ceiling's 0.69 per dim):
    head = agent.actor.head
    torch.nn.init.zeros_(head.weight)
    torch.nn.init.zeros_(head.bias)
    b, obs_dim = 256, spec.obs_shape[0]
    g = torch.Generator().manual_seed(0)
    obs = torch.randn(b, obs_dim, generator=g)
    action = low + (high - low) * torch.rand(b, num_actions, generator=g)
    batch = Batch(obs, action, torch.zeros(b), torch.randn(b, obs_dim, generator=g), torch.zeros(b))
    agent.update(batch)
    assert agent.alpha.item() < 1.0, "the temperature rises at the highest-entropy policy: the target is out of reach"
