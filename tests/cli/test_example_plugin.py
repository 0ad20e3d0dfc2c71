"""The example third-party store in docs/examples/ailib-store-jsonfile passes the conformance
suite, and its compare-and-set holds across processes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ailib import SessionStore, available_stores, open_store
from ailib.testing import Damage, StoreConformance
from ailib_store_jsonfile import JsonFileStore


def test_jsonfile_is_registered_by_its_distribution() -> None:
    found = {info.scheme: info for info in available_stores()}
    assert found["jsonfile"].distribution == "ailib-store-jsonfile"
    assert found["jsonfile"].target == "ailib_store_jsonfile:JsonFileStore"


class TestJsonFileStore(StoreConformance):
    @pytest.fixture
    def store_url(self, tmp_path: Path) -> str:
        return f"jsonfile://{tmp_path}"

    def corrupt_session(self, store: SessionStore, session_id: str, damage: Damage) -> None:
        """Edit the session's file behind the store's back."""
        assert isinstance(store, JsonFileStore)
        path = store.root / f"{session_id}.json"
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        if damage is Damage.METADATA:
            data["metadata"] = {"user_id": 12345, "when": {"$datetime": "\x00 garbage"}}
        elif damage is Damage.MESSAGE:
            data["messages"][1] = "\x00\ufffd garbage"
        elif damage is Damage.MISSING_MESSAGE:
            del data["messages"][1]
        else:
            data["message_count"] += 3
        path.write_text(json.dumps(data), encoding="utf-8")


_APPENDER = """
import sys
from ailib import open_store
store = open_store(sys.argv[1])
for i in range(int(sys.argv[3])):
    store.append(sys.argv[2], {"role": "user", "content": f"{sys.argv[4]}-{i}"})
"""


def test_appends_from_several_processes_are_all_kept(tmp_path: Path) -> None:
    url = f"jsonfile://{tmp_path}"
    session = open_store(url).create()
    workers = [
        subprocess.Popen([sys.executable, "-c", _APPENDER, url, session.session_id, "25", name])
        for name in ("a", "b", "c")
    ]
    assert [w.wait(timeout=120) for w in workers] == [0, 0, 0]
    loaded = open_store(url).load(session.session_id)
    assert len(loaded) == 75
    assert loaded.version == 76
    for name in ("a", "b", "c"):
        mine = [m["content"] for m in loaded.messages if m["content"].startswith(f"{name}-")]
        assert mine == [f"{name}-{i}" for i in range(25)]


def test_relative_directory_and_bad_namespace(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ailib import ConfigurationError

    monkeypatch.chdir(tmp_path)
    store = open_store("jsonfile://data/sessions")
    store.create(session_id="rel-1")
    assert (tmp_path / "data" / "sessions" / "default" / "rel-1.json").is_file()
    with pytest.raises(ConfigurationError):
        open_store("jsonfile://data?namespace=..")
    with pytest.raises(ConfigurationError):
        open_store("jsonfile://")
