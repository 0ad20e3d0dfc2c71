"""The documentation site builds with ``mkdocs build --strict``: no broken link, anchor or API
reference, and every page is in the navigation (``make docs`` runs the same build)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_site_builds_strict(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", tmp_path / "site"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={"NO_MKDOCS_2_WARNING": "1", "PATH": "/usr/bin:/bin"},
        check=False,
    )
    warnings = [line for line in done.stderr.splitlines() if line.startswith("WARNING")]
    assert done.returncode == 0, "\n".join(warnings) or done.stderr
    assert not warnings
    assert (tmp_path / "site" / "api" / "ailib" / "index.html").is_file()
