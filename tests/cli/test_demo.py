"""``make demo`` runs offline on a fresh environment and tells its story without an error."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from ailib import demo
from ailib.registry import StoreInfo, available_stores


def test_demo_runs_offline_in_a_new_process(
    tmp_path: Path, require_scheme: Callable[[str], None]
) -> None:
    require_scheme("sqlite")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "AILIB_"))}
    env["OPENAI_BASE_URL"] = "http://127.0.0.1:9/unreachable"  # --offline must not touch it
    done = subprocess.run(
        [sys.executable, "-m", "ailib.demo"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=240,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stderr == ""
    out = done.stdout
    assert "Sessions are stored in SQLite, ailib's embedded default" in out
    for check in (
        "✓ the second process found the stored history",
        "✓ the model was sent the whole history (3rd turn)",
        "✓ the session is back to its first exchange",
        "✓ the second copy changed nothing",
        "✓ the copy has the restored conversation",
        "✓ the export was imported",
    ):
        assert check in out
    assert "resumed session demo-trip from sqlite:///$DEMO/sessions.db: 5 messages" in out
    assert "Traceback" not in out
    assert list(tmp_path.iterdir()) == []


def test_demo_without_sqlite_uses_the_jsonfile_store(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    without_sql: list[StoreInfo] = [
        i for i in available_stores() if i.distribution != "ailib-store-sql"
    ]
    monkeypatch.setattr(demo, "available_stores", lambda: without_sql)
    assert demo.main() == 0
    out = capsys.readouterr().out
    assert "the example jsonfile store" in out
    assert "AILIB_STORE_URL=jsonfile://$DEMO/sessions" in out
    assert "✓ the export was imported" in out
    assert "sqlite:" not in out.split("Step 2")[1]


def test_demo_explains_what_to_install_when_nothing_persists(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    memory = StoreInfo("memory", "ailib.stores.memory:MemoryStore", "ailib-core", "0.2.0")
    monkeypatch.setattr(demo, "available_stores", lambda: [memory])
    assert demo.main() == 1
    assert "run `make install`" in capsys.readouterr().err
