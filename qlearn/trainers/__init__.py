"""Trainers own the loops; they know nothing algorithm-specific. `TrainingLoop` holds what every run does."""

from qlearn.trainers.evaluation import evaluate
from qlearn.trainers.finetune import FinetuneTrainer
from qlearn.trainers.loop import Score, TrainingLoop
from qlearn.trainers.offline import OfflineTrainer
from qlearn.trainers.online import OnlineTrainer, TrainingInterrupted, updates_owed

__all__ = ["FinetuneTrainer", "OfflineTrainer", "OnlineTrainer", "Score", "TrainingInterrupted", "TrainingLoop",
           "evaluate", "updates_owed"]
