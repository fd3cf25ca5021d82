"""Loggers: a tiny protocol with TensorBoard, CSV, Weights & Biases, MLflow and no-op back ends.

``configs/logger/`` holds one file per back end; a run picks a list of them (``logger=[tensorboard,csv,wandb]``, or
``+logger=mlflow`` to add one to the default pair) and :func:`build_logger` builds each under the run directory.
W&B and MLflow are optional extras (``pip install "qlearn[wandb]"`` / ``"qlearn[mlflow]"``) imported only when used.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

from qlearn.errors import QlearnError

STEP_KEY = "env_step"  # the x axis of every tracker: env steps (offline runs: updates)


class Logger(Protocol):
    def log_scalars(self, metrics: Mapping[str, float], step: int) -> None: ...
    def log_config(self, config: Mapping[str, Any]) -> None: ...
    def close(self) -> None: ...


class NullLogger:
    """Discards everything (tests, benchmarks)."""

    def log_scalars(self, metrics: Mapping[str, float], step: int) -> None:
        pass

    def log_config(self, config: Mapping[str, Any]) -> None:
        pass

    def close(self) -> None:
        pass


class TensorBoardLogger:
    """Writes scalars as TensorBoard events under ``log_dir`` and the config as a text summary."""

    def __init__(self, log_dir: str | Path) -> None:
        from torch.utils.tensorboard import SummaryWriter  # imported here: tensorboard is only needed to log

        self.writer = SummaryWriter(log_dir=str(log_dir))

    def log_scalars(self, metrics: Mapping[str, float], step: int) -> None:
        for key, value in metrics.items():
            self.writer.add_scalar(key, value, global_step=step)

    def log_config(self, config: Mapping[str, Any]) -> None:
        """The config as a text summary (readable as a whole) and as TensorBoard HParams (one row per run)."""
        from torch.utils.tensorboard.summary import hparams

        text = "```\n" + json.dumps(dict(config), indent=2, default=str) + "\n```"
        self.writer.add_text("config", text, global_step=0)
        for summary in hparams(flat_hyperparameters(config), {}):
            self.writer.file_writer.add_summary(summary)

    def close(self) -> None:
        self.writer.close()


class CSVLogger:
    """Appends ``step,key,value`` rows to ``log_dir/metrics.csv`` (long format: columns never change)."""

    def __init__(self, log_dir: str | Path) -> None:
        self.path = Path(log_dir) / "metrics.csv"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        new = not self.path.exists()
        self._file = self.path.open("a", newline="")
        self._writer = csv.writer(self._file)
        if new:
            self._writer.writerow(["step", "key", "value"])

    def log_scalars(self, metrics: Mapping[str, float], step: int) -> None:
        for key, value in metrics.items():
            self._writer.writerow([step, key, value])
        self._file.flush()

    def log_config(self, config: Mapping[str, Any]) -> None:
        pass

    def close(self) -> None:
        self._file.close()


def flat_hyperparameters(config: Mapping[str, Any], prefix: str = "") -> dict[str, bool | int | float | str]:
    """The nested config as ``{"agent.lr": 1e-4, ...}``: the form every tracker shows as hyperparameters. Lists and
    ``None`` become their text (``"[64, 64]"``, ``"None"``), as trackers keep only scalars and strings."""
    flat: dict[str, bool | int | float | str] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flat_hyperparameters(value, prefix=f"{name}."))
        elif isinstance(value, (bool, int, float, str)):
            flat[name] = value
        else:
            flat[name] = str(value)
    return flat


class WandbLogger:
    """A Weights & Biases run (``wandb`` client library): scalars against the ``env_step`` axis, the config as the
    run's config. ``mode="offline"`` (the default) writes under ``<run_dir>/wandb`` without network;
    ``wandb sync <run_dir>/wandb/offline-run-*`` uploads it later."""

    def __init__(self, log_dir: str | Path, project: str = "qlearn", mode: str = "offline", entity: str | None = None,
                 name: str | None = None, group: str | None = None, tags: list[str] | None = None) -> None:
        import wandb  # imported here: an optional extra

        self.run = wandb.init(project=project, entity=entity, mode=mode, dir=str(log_dir),  # type: ignore[arg-type]
                              name=name or Path(log_dir).name, group=group, tags=tags, reinit="create_new")
        # Steps may repeat after a resume (a checkpoint is older than the last log line): a step metric, not W&B's
        # own monotone step, is the x axis.
        self.run.define_metric(STEP_KEY)
        self.run.define_metric("*", step_metric=STEP_KEY)

    def log_scalars(self, metrics: Mapping[str, float], step: int) -> None:
        self.run.log({STEP_KEY: step, **metrics})

    def log_config(self, config: Mapping[str, Any]) -> None:
        self.run.config.update(flat_hyperparameters(config), allow_val_change=True)

    def close(self) -> None:
        self.run.finish()


class MLflowLogger:
    """An MLflow run (``mlflow`` client library; ``mlflow-skinny`` is enough): scalars as metrics with their step,
    the config as parameters. ``tracking_uri=None`` uses ``$MLFLOW_TRACKING_URI`` if set, else a file store under
    ``<run_dir>/mlruns`` (MLflow 3 opens file stores only with ``MLFLOW_ALLOW_FILE_STORE=true``, which this sets when
    it picks one; ``MLFLOW_ALLOW_FILE_STORE=true mlflow ui --backend-store-uri <run_dir>/mlruns`` shows it)."""

    def __init__(self, log_dir: str | Path, experiment: str = "qlearn", tracking_uri: str | None = None,
                 run_name: str | None = None) -> None:
        import os

        from mlflow.tracking import MlflowClient  # imported here: an optional extra

        uri = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
        if uri is None:  # MLflow 3 keeps its file store in maintenance mode: it opens only when asked for explicitly
            uri = (Path(log_dir).resolve() / "mlruns").as_uri()
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        self.client = MlflowClient(tracking_uri=uri)
        found = self.client.get_experiment_by_name(experiment)
        experiment_id = found.experiment_id if found is not None else self.client.create_experiment(experiment)
        self.run_id = self.client.create_run(experiment_id, run_name=run_name or Path(log_dir).name).info.run_id

    def log_scalars(self, metrics: Mapping[str, float], step: int) -> None:
        import time

        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        self.client.log_batch(self.run_id, metrics=[Metric(k, float(v), now, step) for k, v in metrics.items()])

    def log_config(self, config: Mapping[str, Any]) -> None:
        from mlflow.entities import Param

        params = [Param(k, str(v)) for k, v in flat_hyperparameters(config).items()]
        for start in range(0, len(params), 100):  # MLflow takes at most 100 parameters per batch
            self.client.log_batch(self.run_id, params=params[start:start + 100])

    def close(self) -> None:
        self.client.set_terminated(self.run_id)


LOGGERS: dict[str, Callable[..., Logger]] = {"tensorboard": TensorBoardLogger, "csv": CSVLogger,
                                               "wandb": WandbLogger, "mlflow": MLflowLogger}


def build_logger(logger_cfg: Mapping[str, Any] | None, run_dir: str | Path) -> Logger:
    """The run's loggers from ``cfg.logger``: one key per back end (``configs/logger/<name>.yaml``), its value the
    back end's settings (``{}`` for none; ``true``/``false`` as in runs recorded before the list form)."""
    if logger_cfg is not None and not isinstance(logger_cfg, Mapping):
        raise QlearnError(f"logger={logger_cfg!r} did not compose into logger settings: on resume=<run_dir> set "
                          "logger.<name>.<setting>=... or resume with hydra.run.dir=<run_dir> resume=auto instead.")
    loggers: list[Logger] = []
    for name, settings in (logger_cfg or {}).items():
        if settings is False or settings is None:
            continue
        if name not in LOGGERS:
            raise QlearnError(f"logger {name!r} is unknown: choose from {', '.join(LOGGERS)} "
                             f"(e.g. logger=[tensorboard,csv] or +logger=wandb).")
        options = {} if settings is True else dict(settings)
        try:
            loggers.append(LOGGERS[name](run_dir, **options))
        except (ImportError, TypeError) as exc:
            for made in loggers:
                made.close()
            if isinstance(exc, TypeError):
                raise QlearnError(f"logger.{name}: {exc}; see configs/logger/{name}.yaml for its settings.") from None
            raise QlearnError(f"logger {name} needs its client library: pip install \"qlearn[{name}]\", "
                              f"or drop {name} from logger=.") from None
    if not loggers:
        return NullLogger()
    return loggers[0] if len(loggers) == 1 else MultiLogger(*loggers)


class MultiLogger:
    """Fans every call out to several loggers."""

    def __init__(self, *loggers: Logger) -> None:
        self.loggers = loggers

    def log_scalars(self, metrics: Mapping[str, float], step: int) -> None:
        for logger in self.loggers:
            logger.log_scalars(metrics, step)

    def log_config(self, config: Mapping[str, Any]) -> None:
        for logger in self.loggers:
            logger.log_config(config)

    def close(self) -> None:
        for logger in self.loggers:
            logger.close()
