"""An offline dataset made ready for training: loaded, checked as stored, then scaled and normalised.

In this order, because the env to check against may be named by the dataset itself:

1. `load_training_dataset(options, env_id, ...)` reads ``options["path"]`` and resolves the env id (the given one,
   else the dataset's ``env_id`` metadata);
2. the caller builds that env and its `EnvSpec`;
3. `prepare_dataset(dataset, spec, options, env_id)` validates the values as stored (shapes, NaN/inf, action
   bounds), and only then applies the reward scaling and observation normalisation the options ask for. A bad
   row is therefore reported as it is in the file, not as the rows a transform spread it to.

``options`` is the ``dataset`` config mapping: ``path``, ``next_observations``, ``reward_scale`` (``None`` |
``"iql"`` | a number), ``reward_shift`` and ``normalize_observations``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from qlearn.offline.dataset import DatasetError, OfflineDataset
from qlearn.offline.io import load_dataset
from qlearn.types import EnvSpec

__all__ = ["PreparedDataset", "load_training_dataset", "prepare_dataset"]


@dataclass(frozen=True)
class PreparedDataset:
    """A validated, transformed dataset and the transforms an env must apply to match it."""

    dataset: OfflineDataset
    env_id: str
    obs_stats: tuple[np.ndarray, np.ndarray] | None  # observation (mean, std), or None when not normalised
    reward: tuple[float, float]  # (scale, shift) applied as reward * scale + shift


def load_training_dataset(
    options: Mapping[str, Any], env_id: str | None, *, device: str | torch.device, seed: int
) -> tuple[OfflineDataset, str]:
    """Load ``options["path"]`` and resolve the env id: ``env_id`` when given, else the dataset's metadata."""
    path = options.get("path")
    if path is None:
        raise DatasetError(
            "offline training needs a dataset: pass dataset.path=<file.hdf5 | file.npz | minari dataset dir | minari dataset id> "
            "(qlearn-collect makes one)."
        )
    mode = str(options.get("next_observations", "stored"))
    dataset = load_dataset(str(path), next_observations=mode, device=device, seed=seed)
    if env_id is None:
        env_id = dataset.metadata.get("env_id")
        if not env_id:
            raise DatasetError(f"{path} does not say which env it comes from; pass env.id=<gymnasium id>.")
    return dataset, str(env_id)


def _reward_transform(dataset: OfflineDataset, options: Mapping[str, Any]) -> tuple[float, float]:
    """The (scale, shift) ``options`` ask for; IQL's scale comes from the dataset's episode returns."""
    scale = options.get("reward_scale")
    shift = float(options.get("reward_shift", 0.0))
    if scale is None:
        return 1.0, shift
    if scale == "iql":  # Kostrikov et al., 2022: rewards * 1000 / (max return - min return) on locomotion
        return dataset.iql_reward_scale(), shift
    try:
        return float(scale), shift
    except (TypeError, ValueError):
        raise DatasetError(f"dataset.reward_scale must be null, iql or a number, got {scale!r}.") from None


def prepare_dataset(
    dataset: OfflineDataset, spec: EnvSpec, options: Mapping[str, Any], env_id: str
) -> PreparedDataset:
    """Validate ``dataset`` against ``spec`` as stored, then apply the reward and observation transforms.

    Every step that can fail runs before the dataset changes, so a refused dataset is left as loaded.
    """
    dataset.validate(spec, env_id=env_id)
    reward = _reward_transform(dataset, options)
    stats = dataset.normalize_observations() if options.get("normalize_observations", False) else None
    if reward != (1.0, 0.0):
        dataset.scale_rewards(*reward)
    return PreparedDataset(dataset, env_id, stats, reward)
