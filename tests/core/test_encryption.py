"""Encryption at rest, on the memory store (tests/integration reads every real backend raw)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import ailib
from ailib import ConfigurationError, open_store
from ailib.encryption import generate_key
from ailib.stores.memory import MemoryStore

SECRET_TEXT = "the launch code is tangerine"


@pytest.fixture
def keys(monkeypatch: pytest.MonkeyPatch) -> tuple[str, str]:
    old, new = generate_key(), generate_key()
    monkeypatch.setenv("AILIB_TEST_KEY", old)
    return old, new


def raw_text(store: ailib.BaseStore) -> str:
    assert isinstance(store, MemoryStore)
    return json.dumps([r.to_json() for r in store._space.records.values()])


def test_nothing_readable_is_stored(keys: tuple[str, str]) -> None:
    with open_store("memory://enc-raw?encrypt=env:AILIB_TEST_KEY") as store:
        session = store.create({"user_id": "alice@example.com", "topic": "launch"})
        session.add_message("user", SECRET_TEXT)
        store.checkpoint(session.session_id)
        text = raw_text(store)
        for plain in ("tangerine", "alice@example.com", "launch", '"user"'):
            assert plain not in text
        loaded = store.load(session.session_id)
        assert loaded.messages == [{"role": "user", "content": SECRET_TEXT}]
        assert loaded.get_all_metadata() == {"user_id": "alice@example.com", "topic": "launch"}
        listed = store.list(user_id="alice@example.com")
        assert [s.session_id for s in listed] == [session.session_id]
        assert listed.items[0].user_id == "alice@example.com"
        assert store.list(user_id="bob").items == []


def test_key_rotation(keys: tuple[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    old, new = keys
    with open_store("memory://enc-rotate?encrypt=env:AILIB_TEST_KEY") as store:
        session = store.create({"user_id": "u1"})
        session.add_message("user", "sealed with the old key")
    monkeypatch.setenv("AILIB_TEST_KEY", f"{new},{old}")
    with open_store("memory://enc-rotate?encrypt=env:AILIB_TEST_KEY") as store:
        store.append(session.session_id, {"role": "user", "content": "sealed with the new key"})
        loaded = store.load(session.session_id)
        assert [m["content"] for m in loaded.messages] == [
            "sealed with the old key",
            "sealed with the new key",
        ]
        exported = store.export_session(session.session_id)
        store.delete(session.session_id)
        store.import_session(exported)  # what `ailib sessions reencrypt` does
        assert [s.session_id for s in store.list(user_id="u1")] == [session.session_id]
    monkeypatch.setenv("AILIB_TEST_KEY", new)
    with open_store("memory://enc-rotate?encrypt=env:AILIB_TEST_KEY") as store:
        assert len(store.load(session.session_id)) == 2
        assert [s.session_id for s in store.list(user_id="u1")] == [session.session_id]


def test_wrong_or_missing_key_is_clear_and_destroys_nothing(
    keys: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with open_store("memory://enc-wrong?encrypt=env:AILIB_TEST_KEY") as store:
        session = store.create()
        session.add_message("user", SECRET_TEXT)
    monkeypatch.setenv("AILIB_TEST_KEY", generate_key())
    wrong = open_store("memory://enc-wrong?encrypt=env:AILIB_TEST_KEY")
    with pytest.raises(ConfigurationError, match="encrypted with a key this store does not"):
        wrong.load(session.session_id)
    plain = open_store("memory://enc-wrong")
    with pytest.raises(ConfigurationError, match="is encrypted; open the store with"):
        plain.load(session.session_id)
    monkeypatch.delenv("AILIB_TEST_KEY")
    with pytest.raises(ConfigurationError, match=r"\$AILIB_TEST_KEY, which is not set"):
        open_store("memory://enc-wrong?encrypt=env:AILIB_TEST_KEY")
    monkeypatch.setenv("AILIB_TEST_KEY", keys[0])
    with open_store("memory://enc-wrong?encrypt=env:AILIB_TEST_KEY") as store:
        assert store.load(session.session_id).messages[0]["content"] == SECRET_TEXT


def test_keys_from_a_file_and_never_in_the_url(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    path.write_text(generate_key() + "\n")
    with open_store(f"memory://enc-file?encrypt=file:{path}") as store:
        store.create().add_message("user", "x")
    with pytest.raises(ConfigurationError, match="give env:VARIABLE or file:PATH"):
        open_store("memory://?encrypt=" + generate_key())


def test_checkpoints_fork_and_export_are_readable(keys: tuple[str, str]) -> None:
    with open_store("memory://enc-cp?encrypt=env:AILIB_TEST_KEY") as store:
        session = store.create({"step": 1})
        session.add_message("user", "a")
        number = store.checkpoint(session.session_id)
        session.add_message("user", "b")
        fork = store.fork(session.session_id, number)
        assert store.load(fork.session_id).messages == [{"role": "user", "content": "a"}]
        exported = store.export_session(session.session_id)
        assert exported["checkpoints"][0]["messages"] == [{"role": "user", "content": "a"}]
        assert exported["messages"][-1]["content"] == "b"


def test_a_sealed_message_after_plain_ones_is_still_refused_without_the_key(
    keys: tuple[str, str],
) -> None:
    with open_store("memory://enc-mixed") as plain:
        session = plain.create({"user_id": "u1"})
        plain.append(session.session_id, {"role": "user", "content": "written in the clear"})
        with open_store("memory://enc-mixed?encrypt=env:AILIB_TEST_KEY") as sealing:
            sealing.append(session.session_id, {"role": "user", "content": SECRET_TEXT})
        with pytest.raises(ConfigurationError, match="is encrypted; open the store with"):
            plain.load(session.session_id)
