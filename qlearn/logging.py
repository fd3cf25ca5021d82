"""Loggers: a tiny protocol with TensorBoard, CSV and no-op back ends."""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol


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
        text = "```\n" + json.dumps(dict(config), indent=2, default=str) + "\n```"
        self.writer.add_text("config", text, global_step=0)

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
