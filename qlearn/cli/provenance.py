"""What a run directory records about how it was made: the command line, the code and the library versions."""

from __future__ import annotations

import json
import logging
import os
import platform
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

PACKAGES = ("qlearn", "torch", "gymnasium", "numpy", "hydra-core", "ale-py", "mujoco")
LOG_FILE = "train.log"


def git_commit(path: Path) -> dict[str, Any] | None:
    """``{"commit", "dirty"}`` of the git checkout holding ``path``, or ``None`` (an installed wheel, no git)."""
    try:
        commit = subprocess.run(["git", "-C", str(path), "rev-parse", "HEAD"], capture_output=True, text=True,
                                timeout=10, check=True).stdout.strip()
        status = subprocess.run(["git", "-C", str(path), "status", "--porcelain", "--untracked-files=no"],
                                capture_output=True, text=True, timeout=10, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": commit, "dirty": bool(status.strip())}


def versions() -> dict[str, str | None]:
    """Installed versions of the packages a result depends on (``None``: not installed)."""
    found: dict[str, str | None] = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found


def record_invocation(run_dir: Path) -> dict[str, Any]:
    """Append this process's command line, working directory, git commit and versions to ``run_dir/run.json``
    (a resumed run adds an entry per start) and return the entry."""
    entry = {
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "argv": list(sys.argv),
        "cwd": os.getcwd(),
        "host": platform.node(),
        "git": git_commit(Path(__file__).resolve().parent),
        "versions": versions(),
    }
    path = run_dir / "run.json"
    record = json.loads(path.read_text()) if path.is_file() else {"invocations": []}
    record["invocations"].append(entry)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(record, indent=2))
    os.replace(tmp, path)
    return entry


def log_to_file(run_dir: Path) -> logging.Handler:
    """Send the ``qlearn`` logger's lines (progress, warnings) to ``run_dir/train.log`` too; returns the handler."""
    handler = logging.FileHandler(run_dir / LOG_FILE)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    logger = logging.getLogger("qlearn")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    return handler
