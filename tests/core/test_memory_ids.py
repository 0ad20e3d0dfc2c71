"""A user's memory session holds no messages: the core refuses what would store one, before
any I/O, so the memory never becomes unreadable."""

from __future__ import annotations

import asyncio

import pytest

import ailib
from ailib.errors import InvalidMessage, InvalidSessionId
from ailib.user_memory import memory_session_id


@pytest.fixture
def store() -> ailib.SessionStore:
    return ailib.open_store("memory://")


def test_append_to_a_memory_session_is_refused_and_the_memory_stays_readable(
    store: ailib.SessionStore,
) -> None:
    memory = store.memory("ann")
    memory.set("colour", "green")
    before = store.get(memory.session_id)
    assert before is not None
    with pytest.raises(InvalidMessage, match="user's memory"):
        store.append(memory.session_id, {"role": "user", "content": "hi"})
    after = store.get(memory.session_id)
    assert after is not None
    assert after.version == before.version
    assert store.load(memory.session_id).messages == []
    assert memory.all() == {"colour": "green"}


def test_async_append_to_a_memory_session_is_refused() -> None:
    async def scenario() -> None:
        store = ailib.open_async_store("memory://")
        memory_id = memory_session_id("ann")
        await store.create({"user_id": "ann"}, session_id=memory_id, kind="memory")
        with pytest.raises(InvalidMessage, match="user's memory"):
            await store.append(memory_id, {"role": "user", "content": "hi"})
        assert (await store.load(memory_id)).messages == []

    asyncio.run(scenario())


@pytest.mark.parametrize(
    ("session_id", "kind"), [("mem.0123", "chat"), ("mem.0123", "items"), ("s-1", "memory")]
)
def test_only_memory_sessions_have_memory_ids(
    store: ailib.SessionStore, session_id: str, kind: str
) -> None:
    with pytest.raises(InvalidSessionId, match="kept for users' memory"):
        store.create(session_id=session_id, kind=kind)
    assert list(store.list()) == []
    assert store.get(session_id) is None
