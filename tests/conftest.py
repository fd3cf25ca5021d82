"""Stop with one clear message when the test environment lacks qlearn or its dependencies."""

from __future__ import annotations

import importlib.util
import sys

import pytest

_NEEDED = ("torch", "gymnasium", "hydra", "qlearn")


def pytest_configure(config: pytest.Config) -> None:
    missing = [name for name in _NEEDED if importlib.util.find_spec(name) is None]
    if missing:
        raise pytest.UsageError(
            f"this Python ({sys.executable}) cannot import {', '.join(missing)}. Install qlearn "
            'with its test extras first: pip install "torch==2.13.0" -e ".[dev]" (see README.md).'
        )
