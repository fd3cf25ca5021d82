"""The documentation site (mkdocs.yml: guides and the API reference from the docstrings) builds with warnings as
errors, so a docstring that names a parameter the signature lacks, or a broken page, fails CI."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_the_docs_site_builds_strict(tmp_path: Path) -> None:
    pytest.importorskip("mkdocs")
    pytest.importorskip("mkdocstrings_handlers.python")
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    page = (tmp_path / "site" / "api" / "agents" / "index.html").read_text()
    assert "qlearn.agents.dqn.DQN" in page and "from_spec" in page  # built from the docstrings
