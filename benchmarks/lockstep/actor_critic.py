"""What the actor-critic pairs (SAC, REDQ, DroQ against their references) share: Hopper-v5's shapes, the batches,
and the weight copies between qlearn's stacked-weight ensemble / one-head actor and a reference's per-member
``nn.Linear`` layers / two-head actor. Nothing here re-implements a reference."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import Tensor, nn

from common import (HEADER, NullWriter, Row, adam_kernel, both_kernels, default_dtype,  # noqa: E402
                    is_cleanrl_training_block, main_statements, script_block, script_namespace, snapshot)
from qlearn import build_agent
from qlearn.types import Batch, EnvSpec

OBS_DIM, ACTION_DIM = 11, 3  # Hopper-v5; actions in [-1, 1]
BATCH_SIZE = 256


class HopperShapes(gym.Env):
    """An env with Hopper-v5's spaces and nothing else (the pairs never step an env): references that want an env
    object at construction (SB3) get one without MuJoCo."""

    observation_space = gym.spaces.Box(-np.inf, np.inf, (OBS_DIM,), np.float64)
    action_space = gym.spaces.Box(-1.0, 1.0, (ACTION_DIM,), np.float32)

    def reset(self, *, seed: int | None = None, options: Any = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        return np.zeros(OBS_DIM), {}

    def step(self, action: Any) -> Any:
        raise RuntimeError("HopperShapes only carries Hopper-v5's spaces")


SPEC = EnvSpec((OBS_DIM,), "float32", (ACTION_DIM,), action_low=(-1.0,) * ACTION_DIM,
               action_high=(1.0,) * ACTION_DIM)


def qlearn_agent(overrides: Sequence[str]) -> Any:
    """The agent ``qlearn-train <overrides>`` would build for Hopper-v5 (float32 observations, as qlearn's env)."""
    from dqn_cleanrl import qlearn_config

    cfg = qlearn_config(["env.id=Hopper-v5", *overrides])
    return build_agent(cfg.agent, SPEC)


def make_batches(updates: int, batch_size: int = BATCH_SIZE, seed: int = 0,
                 dtype: torch.dtype = torch.float32) -> list[Batch]:
    """Random transitions of Hopper's shapes: actions inside (-1, 1), about 10% terminal."""
    g = torch.Generator().manual_seed(seed)
    return [_cast(Batch(obs=torch.randn(batch_size, OBS_DIM, generator=g),
                  action=torch.rand(batch_size, ACTION_DIM, generator=g) * 1.98 - 0.99,
                  reward=torch.randn(batch_size, generator=g),
                  next_obs=torch.randn(batch_size, OBS_DIM, generator=g),
                  terminated=(torch.rand(batch_size, generator=g) < 0.1).float()), dtype) for _ in range(updates)]


def _cast(batch: Batch, dtype: torch.dtype) -> Batch:
    if dtype == torch.float32:
        return batch
    return Batch(*(t.to(dtype) for t in (batch.obs, batch.action, batch.reward, batch.next_obs, batch.terminated)))


# ---------------------------------------------------------------------------------------------------- weights


@torch.no_grad()
def copy_members(members: Sequence[Sequence[nn.Linear]], ensemble: nn.Module) -> None:
    """Member ``n``'s ``nn.Linear`` layers (input to output) into member ``n`` of a qlearn ``EnsembleMLP``."""
    targets = ensemble.linear_layers()
    for n, linears in enumerate(members):
        if len(linears) != len(targets):
            raise ValueError(f"member {n}: {len(linears)} layers vs {len(targets)}")
        for linear, target in zip(linears, targets):
            target.load_member(n, linear)


def member_pairs(name: str, ensemble: nn.Module,
                 members: Sequence[Sequence[nn.Linear]]) -> list[tuple[str, Tensor, Tensor]]:
    pairs = []
    for n, linears in enumerate(members):
        for i, (linear, target) in enumerate(zip(linears, ensemble.linear_layers())):
            pairs.append((f"{name}[{n}].{i}.weight", target.weight[n].T, linear.weight))
            pairs.append((f"{name}[{n}].{i}.bias", target.bias[n, 0], linear.bias))
    return pairs


@torch.no_grad()
def copy_actor(trunk: Sequence[nn.Linear], mean: nn.Linear, log_std: nn.Linear, actor: nn.Module) -> None:
    """A two-head reference actor into qlearn's ``TanhGaussianActor`` (one head: mean rows, then log-std rows)."""
    from common import copy_layers, layers

    copy_layers(trunk, layers(actor.trunk))
    actor.head.weight.copy_(torch.cat([mean.weight, log_std.weight]))
    actor.head.bias.copy_(torch.cat([mean.bias, log_std.bias]))


def actor_pairs(actor: nn.Module, trunk: Sequence[nn.Linear], mean: nn.Linear,
                log_std: nn.Linear) -> list[tuple[str, Tensor, Tensor]]:
    from common import layers

    pairs = []
    for i, (a, b) in enumerate(zip(layers(actor.trunk), trunk)):
        pairs += [(f"actor.{i}.weight", a.weight, b.weight), (f"actor.{i}.bias", a.bias, b.bias)]
    pairs += [("actor.mean.weight", actor.head.weight[:ACTION_DIM], mean.weight),
              ("actor.mean.bias", actor.head.bias[:ACTION_DIM], mean.bias),
              ("actor.log_std.weight", actor.head.weight[ACTION_DIM:], log_std.weight),
              ("actor.log_std.bias", actor.head.bias[ACTION_DIM:], log_std.bias)]
    return pairs


def rounding_floor(overrides: Sequence[str], updates: int, noise_draws: int = 2, draw: str = "randn_like") -> float:
    """How far qlearn drifts from *itself* in float32 by rounding alone: two copies of the agent from the same weights,
    on the same batches and noise, one with PyTorch's per-tensor Adam and one with the fused kernel (the same
    update, rounded differently); the largest relative parameter difference after ``updates`` updates. Random
    batches make the critics chase noise, and a ReLU or a min tipped one way by a rounding step grows under Adam;
    a pair whose float64 difference is ~1e-15 and whose float32 difference is of this size differs by rounding."""
    from common import NormalTape, adam_kernel, largest_difference

    torch.manual_seed(0)
    with adam_kernel(fused=False):
        a = qlearn_agent(overrides)
    b = qlearn_agent(overrides)
    with torch.no_grad():  # weights only: load_state_dict would also load a's optimizer settings (fused=None)
        for x, y in zip(a.parameters(), b.parameters()):
            y.copy_(x)
    tape = NormalTape([(BATCH_SIZE, ACTION_DIM)] * noise_draws, updates)
    for k, batch in enumerate(make_batches(updates)):
        for agent in (a, b):
            tape.load(k)  # each update takes the draws it needs, in order
            with getattr(tape, f"patch_{draw}")():  # the function the agent draws its noise through
                agent.update(batch)
    pairs = [(n, p, q) for (n, p), q in zip(a.named_parameters(), b.parameters())]
    return largest_difference(pairs)[0]


def pair_row(name: str, compare: Any, overrides: list[str], updates: int, differences: Sequence[str],
             noise_draws: int = 2, draw: str = "randn_like") -> Row:
    """An actor-critic pair's table row: float32 with one Adam kernel and with qlearn's fused one, and in the note
    the float64 comparison and the float32 rounding floor (qlearn loop vs fused Adam)."""
    (worst, where), fused = both_kernels(lambda: compare(overrides, updates))
    with adam_kernel(fused=False):
        exact, exact_where = compare(overrides, updates, dtype=torch.float64)
    floor = rounding_floor(overrides, updates, noise_draws, draw)
    return Row(name, updates, worst, where, fused, list(differences),
               note=f"float64: {exact:.1e} ({exact_where}); float32 floor, qlearn loop vs fused Adam: {floor:.1e}",
               float64_rel_diff=exact)


def command_line(main: Any) -> None:
    """``python <pair>.py [--updates N] [overrides...]``: the pair's row, or its row with other qlearn overrides."""
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("--updates", type=int, default=200)
    parser.add_argument("overrides", nargs="*", help="qlearn overrides instead of the pair's (e.g. to see it fail)")
    args = parser.parse_args()
    print(HEADER)
    for row in main(args.updates, args.overrides or None):
        print(row.line())


def cleanrl_scope(script: str, build: tuple[str, ...], updates: int,
                  dtype: torch.dtype = torch.float32) -> tuple[dict[str, Any], list[Batch], Any]:
    """CleanRL's continuous-action ``script`` from its snapshot, ready to run in lockstep: its module-level classes,
    then its ``__main__`` lines that start with ``build`` (networks, targets, optimizers) run into one scope with
    Hopper's spaces, and an ``rb.sample`` that hands out `make_batches`' batches (``updates`` of them, also
    returned for qlearn's side). Returns the scope, the batches and the compiled training block
    (``if global_step > args.learning_starts:``), which runs with ``exec(block, scope)`` after setting
    ``scope["global_step"]``."""
    import time
    from types import SimpleNamespace

    path = snapshot("cleanrl") / "cleanrl" / script
    namespace = script_namespace(path, extra_sys_path=[snapshot("cleanrl")])
    envs = SimpleNamespace(single_observation_space=gym.spaces.Box(-np.inf, np.inf, (OBS_DIM,)),
                           single_action_space=gym.spaces.Box(-1.0, 1.0, (ACTION_DIM,)))
    batches = make_batches(updates, dtype=dtype)
    queue = [SimpleNamespace(observations=b.obs, next_observations=b.next_obs, actions=b.action,
                             rewards=b.reward[:, None], dones=b.terminated[:, None]) for b in batches]
    scope = dict(namespace, args=namespace["Args"](), envs=envs, device=torch.device("cpu"),
                 rb=SimpleNamespace(sample=lambda batch_size: queue.pop(0)), writer=NullWriter(), start_time=time.time())
    torch.manual_seed(0)
    with default_dtype(dtype):
        exec(main_statements(path, build), scope)
    return scope, batches, script_block(path, is_cleanrl_training_block)
