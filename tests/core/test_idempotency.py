"""Op ids on a DocumentStore (the memory store and the example plugin derive from it): each
session remembers its last 256, inside the record and out of the metadata."""

from __future__ import annotations

from pathlib import Path

import ailib
from ailib.records import MAX_OPS, SessionRecord
from ailib.stores.memory import MemoryStore


def test_the_last_256_keys_are_remembered_and_older_ones_forgotten() -> None:
    store = ailib.open_store("memory://")
    assert isinstance(store, MemoryStore)
    session = store.create({"user_id": "u"})
    versions = [
        store.append(
            session.session_id, {"role": "user", "content": str(n)}, idempotency_key=f"k{n}"
        )
        for n in range(MAX_OPS + 10)
    ]
    newest = MAX_OPS + 9
    assert (
        store.append(
            session.session_id, {"role": "user", "content": "again"}, idempotency_key=f"k{newest}"
        )
        == versions[-1]
    )
    assert (
        store.append(
            session.session_id, {"role": "user", "content": "again"}, idempotency_key=f"k{10}"
        )
        == versions[10]
    )
    forgotten = store.append(
        session.session_id, {"role": "user", "content": "late"}, idempotency_key="k0"
    )
    assert forgotten == versions[-1] + 1
    loaded = store.load(session.session_id)
    assert len(loaded) == MAX_OPS + 11
    assert loaded.get_all_metadata() == {"user_id": "u"}
    assert [s.metadata for s in store.list()] == [{"user_id": "u"}]


def test_op_ids_survive_in_the_stored_document(tmp_path: Path) -> None:
    store = ailib.open_store(f"jsonfile://{tmp_path}")
    session = store.create()
    first = store.append(session.session_id, {"role": "user", "content": "a"}, idempotency_key="x")
    store.update_metadata(session.session_id, {"n": 1}, idempotency_key="y")
    document = SessionRecord.loads(
        (tmp_path / "default" / f"{session.session_id}.json").read_text()
    )
    assert document.ops == {"x": first, "y": first + 1}
    assert document.message_count == 1
    again = ailib.open_store(f"jsonfile://{tmp_path}")
    assert (
        again.append(session.session_id, {"role": "user", "content": "a"}, idempotency_key="x")
        == first
    )
    assert len(again.load(session.session_id)) == 1
