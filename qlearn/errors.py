"""Errors that carry a message for the user: what went wrong and what to change."""

from __future__ import annotations


class QlearnError(Exception):
    """A problem with the user's input (config, env, checkpoint, run directory).

    Command-line entry points print the message alone (no traceback) and exit with status 2.
    """


class NonFiniteError(QlearnError):
    """A loss or Q-value became NaN or infinite during training."""
