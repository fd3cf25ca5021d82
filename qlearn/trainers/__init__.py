"""Trainers own the loops; they know nothing algorithm-specific."""

from qlearn.trainers.evaluation import evaluate
from qlearn.trainers.offline import OfflineTrainer
from qlearn.trainers.online import OnlineTrainer, TrainingInterrupted

__all__ = ["OfflineTrainer", "OnlineTrainer", "TrainingInterrupted", "evaluate"]
