"""Clone each reference snapshot the lockstep pairs run (common.SNAPSHOTS) into $QLEARN_PEERS (default ./peers)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import PEERS_DIR, SNAPSHOTS  # noqa: E402

if __name__ == "__main__":
    PEERS_DIR.mkdir(parents=True, exist_ok=True)
    for name, (url, commit) in SNAPSHOTS.items():
        path = PEERS_DIR / name
        if not path.is_dir():
            subprocess.run(["git", "clone", "--quiet", url, str(path)], check=True)
        subprocess.run(["git", "-C", str(path), "checkout", "--quiet", commit], check=True)
        print(f"{name}: {path} at {commit}")
