"""Stopping and showing a training loop: SIGINT/SIGTERM write a checkpoint and stop; a progress bar on a terminal."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Any

from qlearn.errors import QlearnError


class TrainingInterrupted(QlearnError):
    """SIGINT or SIGTERM arrived; a checkpoint was written first."""

    def __init__(self, message: str, signum: int) -> None:
        super().__init__(message)
        self.exit_code = 128 + signum


class LoopControls:
    """Mixin of both trainers: the first SIGINT/SIGTERM is noted and the loop stops at the end of its
    step (after a checkpoint); a second one stops at once. Subclasses provide ``_checkpoint()``,
    ``run_dir`` and ``progress``."""

    _signal: int | None = None
    run_dir: Path | None
    progress: bool

    def _checkpoint(self) -> Path | None:
        raise NotImplementedError

    def _catch_signals(self) -> dict[int, Any]:
        """Install the handlers; returns the previous ones for :meth:`_restore_signals`.

        Python delivers signals to the main thread only, so a loop run from another thread (a notebook's
        background job, a benchmark harness) installs none and leaves signals to its host program.
        """
        if threading.current_thread() is not threading.main_thread():
            return {}
        return {s: signal.signal(s, self._on_signal) for s in (signal.SIGINT, signal.SIGTERM)}

    @staticmethod
    def _restore_signals(previous: dict[int, Any]) -> None:
        for s, handler in previous.items():
            signal.signal(s, handler)

    def _on_signal(self, signum: int, frame: Any) -> None:
        if self._signal is not None:  # a second signal: stop at once
            raise KeyboardInterrupt
        self._signal = signum

    def _interrupt(self, where_in_run: str) -> None:
        """Checkpoint and raise :class:`TrainingInterrupted` (``where_in_run``: e.g. "env step 1200")."""
        assert self._signal is not None
        name = signal.Signals(self._signal).name
        path = self._checkpoint()
        where = f"checkpoint written to {path}; continue with resume={self.run_dir}" if path else "no run_dir: nothing saved"
        raise TrainingInterrupted(f"received {name} at {where_in_run}; {where}.", self._signal)

    def _progress_bar(self, total: int, initial: int, unit: str) -> Any:
        if not self.progress:
            return None
        from tqdm import tqdm

        return tqdm(total=total, initial=initial, unit=unit, dynamic_ncols=True)
