"""The CLI on an encrypted store: show with the key, a clear error without, re-encryption."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

import ailib
from ailib.encryption import generate_key

from .conftest import Invoke, need_scheme


@pytest.fixture
def encrypted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, str]:
    need_scheme("sqlite")
    monkeypatch.setenv("AILIB_KEY", generate_key())
    base = f"sqlite:///{tmp_path / 'vault.db'}"
    with ailib.open_store(base + "?encrypt=env:AILIB_KEY") as store:
        session = store.create({"user_id": "alice"}, session_id="secret-chat")
        session.add_message("user", "the launch code is tangerine")
        store.checkpoint(session.session_id, label="first")
    return base, base + "?encrypt=env:AILIB_KEY"


def test_show_with_the_key(cli: Invoke, encrypted: tuple[str, str]) -> None:
    _, with_key = encrypted
    result = cli("sessions", "show", "secret-chat", "--store", with_key)
    assert result.exit_code == 0, result.output
    assert "the launch code is tangerine" in result.stdout


def test_show_without_the_key_fails_clearly(cli: Invoke, encrypted: tuple[str, str]) -> None:
    plain, _ = encrypted
    result = cli("sessions", "show", "secret-chat", "--store", plain)
    assert result.exit_code == 1
    assert "tangerine" not in result.output
    assert "is encrypted; open the store with" in result.stderr
    assert "Traceback" not in result.output


def test_reencrypt_moves_sessions_to_the_newest_key(
    cli: Invoke, encrypted: tuple[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, with_key = encrypted
    old = os.environ["AILIB_KEY"]
    new = generate_key()
    monkeypatch.setenv("AILIB_KEY", f"{new},{old}")
    backup = tmp_path / "backup.jsonl"
    result = cli("sessions", "reencrypt", "--backup", str(backup), "--store", with_key)
    assert result.exit_code == 0, result.output
    assert "re-encrypted 1 session(s)" in result.stdout
    assert json.loads(backup.read_text())["session_id"] == "secret-chat"
    monkeypatch.setenv("AILIB_KEY", new)
    with ailib.open_store(with_key) as store:
        loaded = store.load("secret-chat")
        assert loaded.messages[0]["content"] == "the launch code is tangerine"
        assert [c.label for c in store.checkpoints("secret-chat")] == ["first"]
        assert [s.session_id for s in store.list(user_id="alice")] == ["secret-chat"]


def test_reencrypt_needs_the_keys(cli: Invoke, encrypted: tuple[str, str], tmp_path: Path) -> None:
    plain, _ = encrypted
    result = cli("sessions", "reencrypt", "--backup", str(tmp_path / "b.jsonl"), "--store", plain)
    assert result.exit_code == 1
    assert "not opened with encryption keys" in result.stderr
