"""Which settings a resumed run may change, and the config it continues with.

A checkpoint stores the run's config twice: resolved (what ran) and as composed (interpolations kept, so
``total_steps=5000`` also moves ``trainer.total_steps`` and the epsilon schedule that follow it). Resuming merges
the command line's overrides into the composed config and resolves it again. Budgets, evaluation, checkpoint and
logging cadence, exploration schedules and the device may change; anything else (network and buffer shapes, the
agent's settings, whose optimizer states and target networks were built with the old values, the env, the seed,
the update schedule) is refused with one line: a silent no-op would be worse. A setting the run's qlearn did not
have yet (absent from its stored config) keeps its default, which is the old behaviour (qlearn adds switches that
way), unless the command names it.
"""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig, OmegaConf

from qlearn.errors import QlearnError

CHANGEABLE = (  # dotted keys (a prefix ending in "." covers a section) that may differ on resume
    "total_steps", "resume", "device", "eval.", "logger.", "exploration.schedule.", "buffer.sampler.beta_steps",
    "trainer.total_steps", "trainer.total_updates", "trainer.offline_updates", "trainer.eval_every",
    "trainer.eval_episodes", "trainer.eval_epsilon", "trainer.checkpoint_every", "trainer.keep_checkpoints",
    "trainer.log_every", "trainer.save_buffer",
)


def _flat(tree: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(tree, dict):
        out: dict[str, Any] = {}
        for key, value in tree.items():
            out.update(_flat(value, f"{prefix}{key}."))
        return out or {prefix[:-1]: {}}
    return {prefix[:-1]: tree}


def _changeable(key: str) -> bool:
    """In ``CHANGEABLE``; a section's own key too (``logger`` for ``logger.``: an empty section flattens to it)."""
    return any(key == c or (c.endswith(".") and (key.startswith(c) or key == c[:-1])) for c in CHANGEABLE)


def _refuse_group_choices(composed: DictConfig, overrides: list[str]) -> None:
    """``resume=<run_dir>`` rebuilds the run from its stored config, where a config group (``logger``, ``agent``)
    is a section, not a choice: ``logger=none`` there would replace the section with a string. Say so."""
    for override in overrides:
        key, _, value = override.lstrip("+").partition("=")
        if override.startswith("~") or not value or not isinstance(OmegaConf.select(composed, key), DictConfig):
            continue
        if not isinstance(OmegaConf.select(OmegaConf.from_dotlist([f"{key}={value}"]), key), DictConfig):
            raise QlearnError(
                f"{override}: resume=<run_dir> cannot pick a config group (the run's config is stored, not its group "
                f"choices). Set the keys inside it ({key}.<key>=...), or repeat the run's own command with "
                "resume=auto and hydra.run.dir=<run_dir> plus this change.")


def config_for_resume(stored: dict[str, Any], fresh: DictConfig | None, overrides: list[str]) -> DictConfig:
    """The config a resumed run continues with.

    ``stored``: the checkpoint's ``config`` entry. ``fresh``: the config composed for this command
    (``resume=auto``), or ``None`` to rebuild from the stored one plus ``overrides`` (``resume=<run_dir>``).
    Raises `QlearnError` naming the first setting that differs from the stored run but cannot change.
    """
    old = stored["resolved"]
    if fresh is None:
        composed = OmegaConf.create(stored.get("composed", old))  # checkpoints before qlearn 0.1 kept only "resolved"
        kept = [o for o in overrides if not o.split("=", 1)[0].lstrip("+~").startswith(("resume", "hydra"))]
        _refuse_group_choices(composed, kept)
        fresh = OmegaConf.merge(composed, OmegaConf.from_dotlist(kept))
    if fresh.env.get("id") is None and old["env"].get("id") is not None:  # offline: the env the dataset named
        fresh.env.id = old["env"]["id"]
    new = OmegaConf.to_container(fresh, resolve=True)
    old_flat, new_flat = _flat(old), _flat(new)
    named = [o.split("=", 1)[0].lstrip("+~") for o in overrides]
    refused = [key for key in sorted(set(old_flat) | set(new_flat))
               if old_flat.get(key, "<unset>") != new_flat.get(key, "<unset>") and not _changeable(key)
               and (key in old_flat or _names(named, key))]
    if refused:  # name a setting the command changed itself before one that only follows it
        key = min(refused, key=lambda k: _follows(fresh, k) is not None)
        follows = _follows(fresh, key)
        why = f" (it follows {follows})" if follows else ""
        raise QlearnError(
            f"{key} cannot change when a run resumes (the run has {old_flat.get(key, '<unset>')!r}, this command gives "
            f"{new_flat.get(key, '<unset>')!r}{why}): the saved networks, optimizer states, replay buffer and counters "
            "were made with the old value. Start a new run (another hydra.run.dir) to change it; on resume, budgets, "
            "eval.*, checkpoint and log intervals, logger.*, exploration schedules and device can change."
        )
    return fresh  # type: ignore[return-value]


def _names(named: list[str], key: str) -> bool:
    """Whether a command-line key (``network.noisy``, or a section above it such as ``network``) sets ``key``."""
    return any(key == n or key.startswith(n + ".") for n in named)


def _follows(cfg: DictConfig, key: str) -> str | None:
    """The interpolation ``key`` (or the section holding it) is written as, e.g. ``${total_steps}``; else ``None``."""
    node: Any = cfg
    for part in key.split("."):
        if not isinstance(node, DictConfig) or part not in node:
            return None
        child = node._get_node(part)
        if child is not None and child._is_interpolation():
            return str(child._value())
        node = node[part] if isinstance(child, DictConfig) else child
    return None
