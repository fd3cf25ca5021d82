"""Offline RL data: `OfflineDataset`, loading/saving (D4RL HDF5, npz, Minari), preparation for training
(`load_training_dataset`, `prepare_dataset`) and D4RL normalized scores."""

from __future__ import annotations

from qlearn.offline.dataset import DatasetError, OfflineDataset
from qlearn.offline.normalization import NormalizeVectorObservation, normalize_env_observations
from qlearn.offline.io import load_dataset, save_dataset
from qlearn.offline.prepare import PreparedDataset, load_training_dataset, prepare_dataset
from qlearn.offline.scores import D4RL_REFERENCE_SCORES, NormalizedScore, normalized_score, reference_scores

__all__ = [
    "D4RL_REFERENCE_SCORES",
    "DatasetError",
    "NormalizeVectorObservation",
    "NormalizedScore",
    "OfflineDataset",
    "PreparedDataset",
    "load_dataset",
    "load_training_dataset",
    "normalize_env_observations",
    "normalized_score",
    "prepare_dataset",
    "reference_scores",
    "save_dataset",
]
