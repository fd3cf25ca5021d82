"""DQN against CleanRL's ``dqn.py`` (CartPole, MLP) and ``dqn_atari.py`` (Nature CNN), and C51 against its
``c51.py`` (CartPole), update for update.

CleanRL's scripts keep the update inline in ``__main__``; this pair runs, from the pinned snapshot, the script's
own statements: its network class, its ``q_network``/``optimizer``/``target_network`` lines and its whole
``if global_step > args.learning_starts:`` block (TD target, loss, Adam step, periodic target copy), with the
replay buffer's ``sample`` handing out the batches qlearn's agent gets too. qlearn's agent is built by the same
path as ``qlearn-train`` (the Hydra config of the preset named below, through ``qlearn.build_agent``).

    python benchmarks/lockstep/dqn_cleanrl.py
"""

from __future__ import annotations

import ast
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import gymnasium as gym
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import HEADER, Row, both_kernels, copy_layers, largest_difference, layers, script_block, script_namespace, snapshot  # noqa: E402

from qlearn import build_agent  # noqa: E402
from qlearn.types import Batch, EnvSpec  # noqa: E402


def qlearn_config(overrides: list[str]) -> Any:
    """``qlearn-train``'s composed config for these overrides (the command line a user would type)."""
    from hydra import compose, initialize_config_dir

    from qlearn.cli.build import CONFIG_DIR, register_resolvers

    register_resolvers()
    with initialize_config_dir(str(CONFIG_DIR), version_base=None):
        return compose("train", overrides=overrides)


def _main_statements(path: Path, targets: tuple[str, ...]) -> Any:
    """The ``__main__`` statements that build the networks and the optimizer (assignments to ``targets`` and
    ``target_network.load_state_dict``), compiled in their order in the script."""
    tree = ast.parse(path.read_text(), str(path))
    main = next(n for n in tree.body if isinstance(n, ast.If) and "__main__" in ast.unparse(n.test))
    picked = []
    for node in main.body:
        text = ast.unparse(node)
        if any(text.startswith(f"{t} =") for t in targets) or text.startswith("target_network.load_state_dict"):
            picked.append(node)
    return compile(ast.Module(body=picked, type_ignores=[]), str(path), "exec")


def _is_training_block(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and ast.unparse(node.test) == "global_step > args.learning_starts"


class _Writer:
    def add_scalar(self, *args: Any, **kwargs: Any) -> None:
        pass


def run_pair(name: str, script: str, env_id: str, overrides: list[str], updates: int, make_obs: Any,
             differences: list[str]) -> Row:
    (worst, where), fused = both_kernels(lambda: compare(script, env_id, overrides, updates, make_obs))
    return Row(name, updates, worst, where, fused, differences)


def compare(script: str, env_id: str, overrides: list[str], updates: int, make_obs: Any) -> tuple[float, str]:
    """Build both sides from the same weights, make ``updates`` updates on the same batches, and return the
    largest relative parameter difference (online and target networks) and where it is."""
    path = snapshot("cleanrl") / "cleanrl" / script
    namespace = script_namespace(path, extra_sys_path=[snapshot("cleanrl")])
    args = namespace["Args"]()
    env = gym.make(env_id) if "NoFrameskip" not in env_id else None
    obs_shape = env.observation_space.shape if env is not None else (4, 84, 84)
    num_actions = int(env.action_space.n) if env is not None else 6
    observation_space = (gym.spaces.Box(-1.0, 1.0, obs_shape) if env is not None
                         else gym.spaces.Box(0, 255, obs_shape, dtype="uint8"))
    envs = SimpleNamespace(single_observation_space=observation_space,
                           single_action_space=gym.spaces.Discrete(num_actions))
    batches = []
    generator = torch.Generator().manual_seed(0)
    for _ in range(updates):
        batches.append(SimpleNamespace(
            observations=make_obs(args.batch_size, obs_shape, generator),
            next_observations=make_obs(args.batch_size, obs_shape, generator),
            actions=torch.randint(num_actions, (args.batch_size, 1), generator=generator),
            rewards=torch.randn(args.batch_size, 1, generator=generator),
            dones=(torch.rand(args.batch_size, 1, generator=generator) < 0.1).float()))
    queue = list(batches)
    rb = SimpleNamespace(sample=lambda batch_size: queue.pop(0))
    scope = dict(namespace, args=args, envs=envs, device=torch.device("cpu"), rb=rb, writer=_Writer(),
                 start_time=time.time())
    exec(_main_statements(path, ("q_network", "optimizer", "target_network")), scope)
    training_block = script_block(path, _is_training_block)

    cfg = qlearn_config(overrides)
    spec = EnvSpec.from_spaces(observation_space, envs.single_action_space)
    agent = build_agent(cfg.agent, spec)
    copy_layers(layers(scope["q_network"]), layers(agent.q))
    copy_layers(layers(scope["target_network"]), layers(agent.q_target))

    done = 0
    step = args.learning_starts + 1
    while done < updates:
        scope["global_step"] = step
        trains = step % args.train_frequency == 0
        if trains:
            data = batches[done]
            agent.update(Batch(obs=data.observations, action=data.actions.squeeze(-1), reward=data.rewards.flatten(),
                               next_obs=data.next_observations, terminated=data.dones.flatten()))
        exec(training_block, scope)
        done += trains
        step += 1
    pairs = [(f"q.{i}", a, b) for i, (a, b) in
             enumerate(zip(agent.q.parameters(), scope["q_network"].parameters()))]
    pairs += [(f"q_target.{i}", a, b) for i, (a, b) in
              enumerate(zip(agent.q_target.parameters(), scope["target_network"].parameters()))]
    return largest_difference(pairs)


def _floats(batch: int, shape: tuple[int, ...], generator: torch.Generator) -> torch.Tensor:
    return torch.randn(batch, *shape, generator=generator)


def _frames(batch: int, shape: tuple[int, ...], generator: torch.Generator) -> torch.Tensor:
    return torch.randint(256, (batch, *shape), generator=generator, dtype=torch.uint8)


def main(updates: int = 200) -> list[Row]:
    rows = [run_pair(
        "DQN (dqn_cartpole) vs CleanRL dqn.py", "dqn.py", "CartPole-v1",
        # dqn_cartpole departs from CleanRL on purpose (its comment): these overrides restore CleanRL's values
        ["experiment=dqn_cartpole", "agent.gamma=0.99", "network.hidden_sizes=[120,84]"],
        updates, _floats,
        ["gamma 0.998 -> agent.gamma=0.99", "256-256 MLP -> network.hidden_sizes=[120,84]",
         "(n_step 5, buffer 100k, learning starts 1k, epsilon schedule: buffer and trainer settings, not the update; 1-step batches here)"])]
    rows.append(run_pair(
        "C51 (c51_cartpole) vs CleanRL c51.py", "c51.py", "CartPole-v1",
        ["experiment=c51_cartpole", "agent.gamma=0.99", "network.hidden_sizes=[120,84]",
         "agent.distributional.num_atoms=101", "agent.distributional.v_min=-100", "agent.distributional.v_max=100",
         "agent.adam_eps=7.8125e-5"],
        updates, _floats,
        ["gamma 0.998 -> agent.gamma=0.99", "256-256 MLP -> network.hidden_sizes=[120,84]",
         "201 atoms on [-500, 500] -> 101 on [-100, 100]", "Adam eps 1e-8 -> agent.adam_eps=0.01/128",
         "CleanRL's log(clamp(p, 1e-5, 1 - 1e-5)) vs log_softmax: the same unless a probability leaves the clamp"]))
    rows.append(run_pair(
        "DQN (dqn_atari) vs CleanRL dqn_atari.py", "dqn_atari.py", "BreakoutNoFrameskip-v4",
        ["experiment=dqn_atari"], max(100, updates // 2), _frames, []))
    return rows


if __name__ == "__main__":
    print(HEADER)
    for row in main():
        print(row.line())
