"""REDQ (qlearn preset ``redq_mujoco``: N=10, M=2, G=20) against the authors' ``REDQSACAgent``, on Hopper-v5's shapes.

The authors' agent is imported from the pinned snapshot (``redq/algos/redq_sac.py``) and trained with its own
``train(logger)``, which makes G = 20 updates per call (the actor and alpha step on the last). Its replay buffer's
``sample_batch`` hands out the batches qlearn's agent gets too, its subset draw (``np.random.choice``) returns the
members qlearn's agent drew, and its Gaussian draws (``Normal.rsample``) read the same tape as qlearn's actor, in
the same order on both sides (each update's next-state action; the current-state action at the actor's turn).
qlearn's agent is built as ``qlearn-train experiment=redq_mujoco`` builds it.

    python benchmarks/lockstep/redq_authors.py [--updates 200] [overrides...]
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch
from torch import Tensor

sys.path.insert(0, str(Path(__file__).resolve().parent))
from actor_critic import (ACTION_DIM, BATCH_SIZE, OBS_DIM, actor_pairs, copy_actor, copy_members,  # noqa: E402
                          make_batches, member_pairs, qlearn_agent, command_line, pair_row)
from common import NormalTape, Row, default_dtype, largest_difference, layers, snapshot  # noqa: E402

UTD = 20  # G: the preset's trainer.updates_per_step and the code's utd_ratio = policy_update_delay
PRESET = ["experiment=redq_mujoco"]
SWITCHES = ["agent.actor_loss_before_critic_step=true", "agent.log_prob_epsilon=1e-6"]
DIFFERENCES = ["policy loss on the critic before its optimizer step -> agent.actor_loss_before_critic_step=true",
               "log(1 - tanh(u)^2 + 1e-6) in log pi -> agent.log_prob_epsilon=1e-6",
               "the code's first G updates use alpha=0.2 (its alpha argument overwrites exp(log_alpha)=1 in __init__; "
               "after the first alpha step alpha = exp(log_alpha)): REDQSACAgent(alpha=1.0) here, no switch",
               "Xavier-uniform init: weights are copied"]


def import_agent_class(root: Path) -> Any:
    """``REDQSACAgent`` from the snapshot at ``root``. The REDQ and DroQ snapshots both name their package ``redq``,
    so each import starts from an empty ``redq`` entry in ``sys.modules`` and leaves none behind."""
    def forget() -> None:
        for name in [n for n in sys.modules if n == "redq" or n.startswith("redq.")]:
            del sys.modules[name]

    forget()
    sys.path.insert(0, str(root))
    try:
        from redq.algos.redq_sac import REDQSACAgent
    finally:
        sys.path.remove(str(root))
        forget()
    return REDQSACAgent


def authors_agent(root: Path | None = None, env_name: str = "Hopper-v4", num_q: int = 10, **kwargs: Any) -> Any:
    """train_redq_sac.py's defaults (``env_name`` only names the MBPO target entropy: Hopper's -1, as the preset's)."""
    agent_class = import_agent_class(snapshot("REDQ") if root is None else root)
    return agent_class(env_name, OBS_DIM, ACTION_DIM, 1.0, "cpu", hidden_sizes=(256, 256), batch_size=BATCH_SIZE,
                       lr=3e-4, gamma=0.99, polyak=0.995, alpha=1.0, auto_alpha=True, target_entropy="mbpo",
                       start_steps=5000, utd_ratio=UTD, num_Q=num_q, num_min=2, q_target_mode="min",
                       policy_update_delay=UTD, **kwargs)


@contextlib.contextmanager
def numpy_choice(draws: list[np.ndarray], on_draw: Callable[[np.ndarray], None] | None = None) -> Iterator[None]:
    """``np.random.choice`` hands out ``draws`` in order (the subsets qlearn's agent drew); ``on_draw`` sees each."""
    original = np.random.choice

    def choice(*args: Any, **kwargs: Any) -> np.ndarray:
        subset = draws.pop(0)
        if on_draw is not None:
            on_draw(subset)
        return subset

    np.random.choice = choice  # type: ignore[assignment]
    try:
        yield
    finally:
        np.random.choice = original  # type: ignore[assignment]


def compare(overrides: list[str], updates: int, dtype: torch.dtype = torch.float32,
            make_ref: Callable[[], Any] = authors_agent, dropout: Any = None) -> tuple[float, str]:
    """Both sides from the same weights, ``updates`` updates (a multiple of G) on the same batches, subsets and noise;
    the largest relative parameter difference and where. ``dropout`` (DroQ): a mask tape with ``attach(agent, ref)``,
    ``new_update(update, subset)`` and ``patch()``, so both sides drop the same units."""
    if updates % UTD:
        raise ValueError(f"updates must be a multiple of G={UTD}, got {updates}")
    torch.manual_seed(0)
    with default_dtype(dtype):
        ref = make_ref()
    agent = qlearn_agent(overrides).to(dtype)  # before the copy: the code's float64 weights are not float32 numbers
    policy = ref.policy_net
    trunk = list(policy.hidden_layers)
    members = [layers(q) for q in ref.q_net_list]
    target_members = [layers(q) for q in ref.q_target_net_list]
    copy_actor(trunk, policy.last_fc_layer, policy.last_fc_log_std, agent.actor)
    copy_members(members, agent.critic)
    copy_members(target_members, agent.critic_target)
    with torch.no_grad():
        agent.log_alpha.copy_(ref.log_alpha.squeeze())

    batches = make_batches(updates, dtype=dtype)
    queue = [{"obs1": b.obs.numpy(), "obs2": b.next_obs.numpy(), "acts": b.action.numpy(), "rews": b.reward.numpy(),
              "done": b.terminated.numpy()} for b in batches]
    ref.replay_buffer.sample_batch = lambda batch_size=32, idxs=None: queue.pop(0)
    ref.replay_buffer.size = ref.delay_update_steps + 1  # past the code's start: every train() call makes G updates
    logger = SimpleNamespace(store=lambda **kwargs: None)
    subsets: list[Tensor] = []
    draw = agent.next_value.draw

    def recorded_draw(*args: Any, **kwargs: Any) -> Tensor:  # qlearn's subsets, for the code's np.random.choice
        subset = draw(*args, **kwargs)
        subsets.append(subset)
        if dropout is not None:
            dropout.new_update(len(subsets) - 1, subset.tolist())
        return subset

    agent.next_value.draw = recorded_draw
    patch_dropout = contextlib.nullcontext if dropout is None else dropout.patch
    if dropout is not None:
        dropout.attach(agent, ref)
    # one tape entry per env step: G next-state actions, then the current-state action of the actor step
    tape = NormalTape([(BATCH_SIZE, ACTION_DIM)] * (UTD + 1), updates // UTD)
    for chunk in range(updates // UTD):
        tape.load(chunk)
        with tape.patch_randn_like(), patch_dropout():
            for batch in batches[chunk * UTD:(chunk + 1) * UTD]:
                agent.update(batch)
        tape.check_empty()
        tape.load(chunk)
        drawn = [s.numpy() for s in subsets[chunk * UTD:(chunk + 1) * UTD]]
        counter = iter(range(chunk * UTD, (chunk + 1) * UTD))
        on_draw = None if dropout is None else (lambda subset: dropout.new_update(next(counter), subset.tolist()))
        with tape.patch_distributions(), numpy_choice(drawn, on_draw), default_dtype(dtype), patch_dropout():
            ref.train(logger)
        tape.check_empty()
        assert not drawn, "the code drew fewer subsets than qlearn"
    pairs = actor_pairs(agent.actor, trunk, policy.last_fc_layer, policy.last_fc_log_std)
    pairs += member_pairs("critic", agent.critic, members)
    pairs += member_pairs("critic_target", agent.critic_target, target_members)
    pairs += [("log_alpha", agent.log_alpha.detach().reshape(1), ref.log_alpha.detach())]
    if dropout is not None:
        pairs += dropout.layer_norm_pairs()
    return largest_difference(pairs)


def main(updates: int = 200, overrides: list[str] | None = None) -> list[Row]:
    overrides = PRESET + SWITCHES if overrides is None else overrides
    updates = max(UTD, updates // UTD * UTD)
    return [pair_row("REDQ (redq_mujoco) vs REDQ authors' REDQSACAgent", compare, overrides, updates, DIFFERENCES)]


if __name__ == "__main__":
    command_line(main)
