"""Agents that save and load themselves: the weights travel with the config that rebuilds the networks.

An agent knows how it was built when it came from ``build_agent(config, spec)`` (the command line's path: the
agent config is a ``_target_`` dict) or from a ``from_spec`` call whose settings are plain values (numbers,
strings, lists, dicts). ``save`` writes that recipe beside ``state_dict()``; ``load`` rebuilds the agent from it
and loads the weights with ``torch.load(weights_only=True)``: nothing is unpickled.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import torch

from qlearn.errors import QlearnError
from qlearn.types import EnvSpec

if TYPE_CHECKING:
    from qlearn.agents.base import Agent

FORMAT = "qlearn-agent/1"
F = TypeVar("F", bound=Callable[..., Any])


def _plain(value: Any) -> bool:
    """True for values that ``weights_only=True`` loading accepts and that mean the same when rebuilt."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return True
    if isinstance(value, (list, tuple)):
        return all(_plain(v) for v in value)
    if isinstance(value, Mapping):
        return all(isinstance(k, str) and _plain(v) for k, v in value.items())
    return False


def records_build(from_spec: F) -> F:
    """Decorate an agent's ``from_spec`` (under ``@classmethod``) so that the agent remembers a call made of plain
    settings as its build config; a call that passes objects (blocks, factories) leaves it unset."""

    @functools.wraps(from_spec)
    def wrapper(cls: type, spec: EnvSpec, **kwargs: Any) -> Any:
        agent = from_spec(cls, spec, **kwargs)
        if agent.build_config is None and _plain(kwargs):
            target = f"{cls.__module__}.{cls.__qualname__}.from_spec"
            agent.build_config = {"agent": {"_target_": target, **kwargs}, "spec": dataclasses.asdict(spec)}
        return agent

    return wrapper  # type: ignore[return-value]


def build_agent(config: Mapping[str, Any], spec: EnvSpec, device: str | torch.device = "cpu") -> Agent:
    """The agent a ``_target_`` config describes (e.g. ``qlearn/configs/agent/*.yaml`` resolved), for ``spec``.

    ``config["_target_"]`` names a ``from_spec`` (``qlearn.agents.DQN.from_spec``); nested ``_target_`` dicts are
    blocks (next-value blocks, target updaters, augmentations). The agent records ``config`` so ``save`` works.
    """
    from hydra.utils import instantiate  # the config format is Hydra's; only this function needs it

    plain = _to_plain(config)
    factory = instantiate(plain, _partial_=True, _convert_="all")  # a partial, so spec arrives as an EnvSpec
    agent = factory(spec=spec).to(device)
    agent.build_config = {"agent": plain, "spec": dataclasses.asdict(spec)}
    return agent


def _to_plain(config: Mapping[str, Any]) -> dict[str, Any]:
    try:
        from omegaconf import DictConfig, OmegaConf

        if isinstance(config, DictConfig):
            return OmegaConf.to_container(config, resolve=True)  # type: ignore[return-value]
    except ImportError:  # pragma: no cover - omegaconf comes with hydra-core
        pass
    return {k: (_to_plain(v) if isinstance(v, Mapping) else v) for k, v in config.items()}


def save_agent(agent: Agent, path: str | Path) -> Path:
    """Write ``{format, config, spec, state}`` to ``path`` (through a temporary file, so a failure leaves no half
    file). Refused in one line for an agent that does not know how it was built."""
    from qlearn import __version__
    from qlearn.checkpoint import atomic_save

    if agent.build_config is None:
        raise QlearnError(
            f"{type(agent).__name__}.save: this agent was built from objects, so it cannot record how to rebuild "
            "itself. Build it with plain settings (e.g. DQN.from_spec(spec, lr=1e-3)) or qlearn.build_agent(config, "
            "spec), or save its weights alone with torch.save(agent.state_dict(), path)."
        )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_save({"format": FORMAT, "qlearn_version": __version__, **agent.build_config, "state": agent.state_dict()},
                path)
    return path


def load_agent(path: str | Path, device: str | torch.device | None = None) -> Agent:
    """Rebuild the agent saved at ``path`` and load its weights (``weights_only=True``), on ``device`` (default: the
    CPU)."""
    path = Path(path)
    if not path.is_file():
        raise QlearnError(f"{path} does not exist; pass the file agent.save(path) wrote.")
    device = torch.device(device or "cpu")
    try:
        saved = torch.load(path, map_location=device, weights_only=True)
    except Exception as exc:  # a damaged file or not a torch file at all
        raise QlearnError(f"{path} could not be read as a saved qlearn agent: {exc}") from exc
    if not isinstance(saved, dict) or saved.get("format") != FORMAT:
        raise QlearnError(f"{path} is not a saved qlearn agent (agent.save(path) writes one); a run's checkpoint "
                          "loads with qlearn.load_run(run_dir).")
    spec = saved["spec"]
    spec = EnvSpec(**{k: tuple(v) if isinstance(v, list) else v for k, v in spec.items()})
    agent = build_agent(saved["agent"], spec, device)
    agent.load_state_dict(saved["state"])
    return agent
