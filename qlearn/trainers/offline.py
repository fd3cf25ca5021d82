"""The offline trainer: gradient steps on a fixed dataset, periodic evaluation in the env.

The run machinery (cadence, logging, evaluation, checkpoints, resume, signals) is `TrainingLoop`'s.
"""

from __future__ import annotations

from typing import Any, Protocol

from qlearn.agents.base import Agent
from qlearn.errors import QlearnError
from qlearn.trainers.loop import TrainingLoop
from qlearn.types import Batch


class Dataset(Protocol):
    """What the offline trainer needs from a dataset (e.g. :class:`qlearn.offline.OfflineDataset`)."""

    def sample(self, batch_size: int) -> Batch: ...
    def __len__(self) -> int: ...


class OfflineTrainer(TrainingLoop):
    """Trains an agent on a fixed dataset: ``dataset.sample(B) -> agent.update`` for ``total_updates`` steps.

    Every interval here counts **gradient updates** (``eval_every``, ``checkpoint_every``, ``log_every``).
    Evaluation runs the agent's deterministic policy in ``eval_env`` (already wrapped like the data, e.g.
    observation normalisation) and reports each of ``scores`` beside the raw return (e.g. the D4RL normalised
    score: TensorBoard ``eval/normalized_score``, ``results.json`` ``final_eval.normalized_score``).
    Checkpoints hold the agent, the counters, the dataset sampler's and the global RNG states (the dataset
    itself is not copied), so ``resume_from`` continues a run exactly.

    Args:
        agent: the learner (``update(batch)``, ``act(obs, deterministic)``).
        dataset: anything with ``sample(batch_size) -> Batch`` on the agent's device.
        total_updates: gradient steps to make.
        batch_size: transitions per update.

    The other options (evaluation, scores, logging, checkpoints, run directory, config, callbacks) are
    `TrainingLoop`'s.
    """

    unit = "update"
    rate_key = "time/updates_per_sec"
    rate_result = "updates_per_sec"

    def __init__(
        self,
        agent: Agent,
        dataset: Dataset,
        *,
        total_updates: int,
        batch_size: int = 256,
        eval_every: int = 5000,
        **loop_options: Any,
    ) -> None:
        for name, value in (("total_updates", total_updates), ("batch_size", batch_size)):
            if value < 1:
                raise QlearnError(f"{name} must be >= 1, got {value}.")
        if len(dataset) < 1:
            raise QlearnError("the dataset is empty: nothing to train on.")
        super().__init__(agent, eval_every=eval_every, **loop_options)
        if self.run_dir is not None:
            self.run_dir.mkdir(parents=True, exist_ok=True)
        self.dataset = dataset
        self.total_updates, self.batch_size = int(total_updates), int(batch_size)

    @property
    def position(self) -> int:
        return self.updates_done

    @property
    def budget(self) -> int:
        return self.total_updates

    def stop(self) -> None:
        self.total_updates = self.updates_done

    def _extra_state(self) -> dict[str, Any]:
        if hasattr(self.dataset, "state_dict"):  # the sampler's RNG, for an exact resume
            return {"dataset": self.dataset.state_dict()}
        return {}

    def _load_extra_state(self, state: dict[str, Any]) -> None:
        if hasattr(self.dataset, "load_state_dict") and "dataset" in state:
            self.dataset.load_state_dict(state["dataset"])

    def _loop(self) -> None:
        self._schedule_events()
        while self.updates_done < self.total_updates:
            self._update(self.dataset.sample(self.batch_size))
            if self.updates_done >= self._next_event:
                self._periodic()

    def _results(self) -> dict[str, Any]:
        return {"dataset": self.config.get("dataset"), "total_steps": 0, "steps_per_sec": 0.0}
