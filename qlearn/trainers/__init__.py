"""Trainers own the loops; they know nothing algorithm-specific."""

from qlearn.trainers.evaluation import evaluate
from qlearn.trainers.online import OnlineTrainer, TrainingInterrupted

__all__ = ["OnlineTrainer", "TrainingInterrupted", "evaluate"]
