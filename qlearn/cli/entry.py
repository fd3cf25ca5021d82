"""The one wrapper around every Hydra command (qlearn-train, qlearn-eval, qlearn-collect): user errors become one
line and an exit status; in a multirun a failed job is reported and the sweep goes on, ending non-zero."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.errors import InstantiationException
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig
from omegaconf.errors import OmegaConfBaseException

from qlearn.errors import QlearnError
from qlearn.trainers.controls import TrainingInterrupted

FAILED_JOBS = "failed_jobs.txt"  # in the sweep directory: one line per failed job of a multirun
_failed_sweeps: list[str] = []  # filled by SweepFailures.on_multirun_end in the launching process


def user_error(exc: BaseException) -> str | None:
    """The one-line message for an error in what the user asked for, or ``None`` for a bug (keep the traceback)."""
    if isinstance(exc, QlearnError):
        return str(exc)
    if isinstance(exc, OmegaConfBaseException):  # a missing value (???), a bad interpolation, a wrong type
        message = str(exc).splitlines()[0]
        if "Missing mandatory value" in message:
            key = getattr(exc, "full_key", None) or message.split(":")[-1].strip()
            return f"{key} is required: pass {key}=<value> on the command line."
        return f"config: {message}"
    if isinstance(exc, InstantiationException):
        return f"could not build a block from its config: {str(exc).splitlines()[0]}"
    return None


def hydra_command(prog: str) -> Callable[[Callable[[DictConfig], Any]], Callable[[DictConfig], Any]]:
    """Decorate a Hydra task function: ``prog: error: <message>`` and exit status 2 for a user error (the signal's
    status for an interrupted run); in a multirun, the failure is recorded and the next job runs."""

    def decorate(task: Callable[[DictConfig], Any]) -> Callable[[DictConfig], Any]:
        @functools.wraps(task)
        def wrapped(cfg: DictConfig) -> Any:
            try:
                return task(cfg)
            except TrainingInterrupted as exc:
                print(f"{prog}: {exc}", file=sys.stderr)
                _fail(prog, str(exc), exc.exit_code)
            except Exception as exc:
                message = user_error(exc)
                if message is None:
                    raise
                print(f"{prog}: error: {message}", file=sys.stderr)
                _fail(prog, message, 2)
            return None

        return wrapped

    return decorate


def _fail(prog: str, message: str, status: int) -> None:
    """Exit with ``status``; in a multirun, note the job in the sweep directory instead and let the sweep go on."""
    if not HydraConfig.initialized() or HydraConfig.get().mode != RunMode.MULTIRUN:
        sys.exit(status)
    hydra_cfg = HydraConfig.get()
    overrides = " ".join(hydra_cfg.overrides.task)
    with (Path(hydra_cfg.sweep.dir) / FAILED_JOBS).open("a") as f:
        f.write(f"#{hydra_cfg.job.num} {overrides}: {message}\n")


class SweepFailures(Callback):
    """Hydra callback (``hydra.callbacks`` in the primary configs): clears the sweep's failure list at the start
    of a multirun and, at its end, lists the failed jobs so the command exits non-zero (see `exit_status`)."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        (Path(config.hydra.sweep.dir) / FAILED_JOBS).unlink(missing_ok=True)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        path = Path(config.hydra.sweep.dir) / FAILED_JOBS
        if path.is_file():
            _failed_sweeps.extend(line for line in path.read_text().splitlines() if line.strip())


def exit_status(prog: str) -> int:
    """After Hydra returns: 1 (listing them) if jobs of a multirun failed, else 0."""
    if not _failed_sweeps:
        return 0
    print(f"{prog}: error: {len(_failed_sweeps)} job(s) of the multirun failed:", file=sys.stderr)
    for line in _failed_sweeps:
        print(f"  {line}", file=sys.stderr)
    return 1


def run_main(prog: str, hydra_main: Callable[[], Any]) -> None:
    """The console-script body: run the Hydra app, then exit non-zero if a multirun had failures."""
    hydra_main()
    sys.exit(exit_status(prog))
