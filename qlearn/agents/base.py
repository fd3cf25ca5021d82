"""The agent interface every trainer drives: ``act``, ``update`` and a complete ``state_dict``."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from qlearn.agents import saving
from qlearn.errors import QlearnError
from qlearn.types import Batch, EnvSpec, Metrics


def continuous_sizes(spec: EnvSpec, agents: str) -> tuple[int, int]:
    """``(flat observation size, flat action size)`` of a continuous-action ``spec``; a discrete one is refused with
    one line that names ``agents`` (e.g. ``"REDQ/SAC/DroQ"``) and what to choose instead."""
    if spec.discrete:
        raise QlearnError(
            f"{agents} need a continuous (Box) action space, but this env's actions are Discrete({spec.num_actions}). "
            f"Choose an env with continuous actions (e.g. env.id=Pendulum-v1) or a discrete-action agent (agent=dqn)."
        )
    assert spec.action_low is not None and spec.action_high is not None
    return int(math.prod(spec.obs_shape)), int(math.prod(spec.action_shape))


class Agent(nn.Module):
    """Owns networks, target networks, optimizers and an update counter — never an env, buffer or logger.

    ``state_dict()`` holds the networks (from ``nn.Module``) plus, through the extra-state hook,
    the optimizer states and the update counter, so one call captures everything a resume needs.
    Subclasses list their optimizers in ``self.optimizers`` (name -> optimizer).

    ``predict``, ``save`` and ``load`` are the library-user's doors (as in SB3 or d3rlpy): ``save`` writes the
    weights with the config that rebuilds the agent (`qlearn.agents.saving`), known when the agent came from
    ``from_spec`` with plain settings or from ``qlearn.build_agent``.
    """

    def __init__(self) -> None:
        super().__init__()
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self.num_updates = 0
        self.build_config: dict[str, Any] | None = None  # {"agent": _target_ config, "spec": EnvSpec fields}

    @torch.no_grad()
    def predict(self, obs: np.ndarray | Tensor, deterministic: bool = True) -> np.ndarray:
        """Actions for one observation ``[*obs_shape]`` or a batch ``[B, *obs_shape]``, numpy or tensor, as a numpy
        array in the env's format (an int64 index or ``[B]`` indices; float32 ``[A]`` or ``[B, A]`` in the env's
        bounds). ``deterministic=False`` samples stochastic policies; DQN stays greedy (exploration is the
        trainer's). One observation is told from a batch by the observation shape the agent was built for, so an
        agent built from objects (no build config) takes batches only."""
        x = obs if isinstance(obs, Tensor) else torch.as_tensor(np.asarray(obs))
        if x.dtype == torch.float64:
            x = x.float()
        spec = (self.build_config or {}).get("spec")
        single = spec is not None and x.dim() == len(spec["obs_shape"])
        action = self.act((x.unsqueeze(0) if single else x).to(self.device), deterministic=deterministic)
        out = action.cpu().numpy()
        return out[0] if single else out

    def save(self, path: str | Path) -> Path:
        """Write the agent (weights, optimizer states and the config that rebuilds it) to ``path``."""
        return saving.save_agent(self, path)

    @classmethod
    def load(cls, path: str | Path, device: str | torch.device | None = None) -> Agent:
        """The agent ``save`` wrote to ``path``, rebuilt on ``device`` (loaded with ``weights_only=True``)."""
        agent = saving.load_agent(path, device)
        if not isinstance(agent, cls):
            raise TypeError(f"{path} holds a {type(agent).__name__}, not a {cls.__name__}; load it with "
                            f"{type(agent).__name__}.load or qlearn.Agent.load.")
        return agent

    def _count_update(self) -> int:
        """``num_updates += 1``, returning the new count; it skips ``nn.Module.__setattr__`` (~3 us a call on cpu2),
        which would only find that an int is neither a parameter, a buffer nor a module."""
        count = self.__dict__["num_updates"] = self.num_updates + 1
        return count

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def act(self, obs: Tensor, deterministic: bool = False) -> Tensor:
        """Actions for a batch of observations ``[E, *obs_shape]``."""
        raise NotImplementedError

    def update(self, batch: Batch) -> Metrics:
        """One gradient step on ``batch``; returns detached scalar tensors (no host sync)."""
        raise NotImplementedError

    def _step(self, name: str, loss: Tensor) -> None:
        """One optimizer step of ``self.optimizers[name]`` on ``loss``."""
        optimizer = self.optimizers[name]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    def get_extra_state(self) -> dict[str, Any]:
        return {
            "optimizers": {name: opt.state_dict() for name, opt in self.optimizers.items()},
            "num_updates": self.num_updates,
        }

    def set_extra_state(self, state: dict[str, Any]) -> None:
        for name, opt in self.optimizers.items():
            opt.load_state_dict(state["optimizers"][name])
        self.num_updates = int(state["num_updates"])

    def _apply(self, fn, recurse=True):  # type: ignore[no-untyped-def]
        # Keep optimizer state (Adam moments) on the same device as the parameters after .to().
        result = super()._apply(fn, recurse)
        for opt in self.optimizers.values():
            # fused/capturable optimizers keep their step counters on the parameters' device too
            step_on_device = bool(opt.defaults.get("fused") or opt.defaults.get("capturable"))
            for state in opt.state.values():
                for key, value in state.items():
                    if isinstance(value, Tensor) and (key != "step" or step_on_device):
                        state[key] = fn(value)
        return result
