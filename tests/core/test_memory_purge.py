"""``purge_expired`` on the memory store: it drops exactly the expired sessions of its own
namespace and leaves every live one as it was, checked against a plain-dict oracle."""

from __future__ import annotations

import time
import uuid
from typing import Any

import ailib
from ailib.stores.memory import MemoryStore

LIVE = 2000
EXPIRED = 60
SHORT_TTL = 0.5


def _stored_ids(store: ailib.BaseStore) -> set[str]:
    """The ids of every record the store's memory still holds for its namespace, expired or
    not (what a purge must reclaim)."""
    assert isinstance(store, MemoryStore)
    with store._space.lock:
        return {sid for (ns, sid) in store._space.records if ns == store.namespace}


def _wait_past(expiries: list[float]) -> None:
    """Sleep until every one of ``expiries`` (epoch seconds) has passed."""
    while time.time() <= max(expiries):
        time.sleep(max(expiries) - time.time() + 0.01)


def test_purge_drops_the_expired_and_leaves_every_live_session_as_it_was() -> None:
    name = f"memory://purge-{uuid.uuid4().hex[:8]}"
    store = ailib.open_store(name, namespace="a")
    neighbour = ailib.open_store(name, namespace="b")

    # The oracle: what each live session must still hold, from what was written to it.
    live: dict[str, dict[str, Any]] = {}
    doomed: list[str] = []
    neighbour_doomed: list[str] = []
    expiries: list[float] = []
    for i in range(LIVE + EXPIRED):
        is_doomed = i % ((LIVE + EXPIRED) // EXPIRED) == 0 and len(doomed) < EXPIRED
        # Live sessions: some without a TTL, some with one far off.
        ttl = SHORT_TTL if is_doomed else (3600 if i % 3 == 0 else None)
        metadata = {"user_id": f"user-{i % 7}", "n": i}
        session = store.create(metadata, ttl=ttl)
        messages = [{"role": "user", "content": f"message {i}"}]
        version = store.append(session.session_id, messages[0])
        if is_doomed:
            doomed.append(session.session_id)
            assert session.expires_at is not None
            expiries.append(session.expires_at.timestamp())
        else:
            live[session.session_id] = {
                "metadata": metadata,
                "messages": messages,
                "version": version,
                "has_ttl": ttl is not None,
            }
    for _ in range(3):
        other = neighbour.create(ttl=SHORT_TTL)
        neighbour_doomed.append(other.session_id)
        assert other.expires_at is not None
        expiries.append(other.expires_at.timestamp())
    assert len(doomed) == EXPIRED

    _wait_past(expiries)
    expires_before = {sid: store.load(sid).expires_at for sid in live}

    assert store.purge_expired() == EXPIRED
    assert _stored_ids(store) == set(live)
    for sid in doomed:
        assert store.get(sid) is None
    for sid, expected in live.items():
        session = store.load(sid)
        assert session.messages == expected["messages"]
        assert session.metadata == expected["metadata"]
        assert session.version == expected["version"]
        assert session.expires_at == expires_before[sid]
        assert (session.expires_at is not None) == expected["has_ttl"]
    listed: set[str] = set()
    cursor = None
    while True:
        page = store.list(limit=500, cursor=cursor)
        listed |= {s.session_id for s in page}
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert listed == set(live)

    # Another namespace of the same memory is not the purge's to touch.
    assert _stored_ids(neighbour) == set(neighbour_doomed)
    assert store.purge_expired() == 0
    assert neighbour.purge_expired() == len(neighbour_doomed)
    assert _stored_ids(neighbour) == set()
    assert _stored_ids(store) == set(live)


def test_a_session_written_again_after_expiring_is_not_purged() -> None:
    """An expired id reused by ``create`` is a live session: the purge keeps it."""
    store = ailib.open_store("memory://", namespace="a")
    first = store.create(ttl=SHORT_TTL, session_id="reused")
    gone = store.create(ttl=SHORT_TTL)
    assert first.expires_at is not None
    assert gone.expires_at is not None
    _wait_past([first.expires_at.timestamp(), gone.expires_at.timestamp()])
    again = store.create({"again": True}, session_id="reused")

    assert store.purge_expired() == 1
    assert _stored_ids(store) == {"reused"}
    loaded = store.load("reused")
    assert (loaded.metadata, loaded.version, loaded.expires_at) == (
        {"again": True},
        again.version,
        None,
    )
