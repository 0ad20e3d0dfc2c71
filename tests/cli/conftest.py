"""Fixtures for driving the ``ailib`` command line as a user would."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import platformdirs
import pytest
from typer.testing import CliRunner, Result

from ailib import available_stores
from ailib.cli import app
from ailib.testing.servers import in_ci

Invoke = Callable[..., Result]
Run = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture(autouse=True)
def clean_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No store URL, API key or real data directory leaks in from the developer's shell."""
    for name in ("AILIB_STORE_URL", "OPENAI_API_KEY", "OPENAI_BASE_URL", "AILIB_DEBUG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    # platformdirs ignores XDG_DATA_HOME on macOS and Windows; never touch the real one.
    monkeypatch.setattr(
        platformdirs,
        "user_data_dir",
        lambda appname=None, *a, **k: str(tmp_path / "xdg-data" / appname),
    )


@pytest.fixture
def cli() -> Invoke:
    """``cli("sessions", "ls", input=...)``: run ailib in this process; stdout and stderr
    are kept apart on the result."""

    def invoke(*args: str, input: str | None = None) -> Result:
        return CliRunner().invoke(app, list(args), input=input)

    return invoke


@pytest.fixture
def run_ailib(tmp_path: Path) -> Run:
    """Run ``python -m ailib.cli ARGS`` in a new process (for what must survive a process)."""

    def run(
        *args: str, input: str | None = None, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "ailib.cli", *args],
            input=input,
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, **(env or {})},
            cwd=tmp_path,
        )

    return run


def need_scheme(scheme: str) -> None:
    """Skip unless a store for ``scheme`` is installed (fail under CI, where ``make test``
    installs every first-party store)."""
    if scheme in {info.scheme for info in available_stores()}:
        return
    message = f"no store for {scheme}:// is installed; `make install` installs it"
    if in_ci():
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture
def require_scheme() -> Callable[[str], None]:
    return need_scheme
