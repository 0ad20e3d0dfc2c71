"""The async memory store runs the whole suite in async mode, and the async API reads well."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

import ailib
from ailib.async_adapter import ThreadedAsyncStore
from ailib.store import SessionStore
from ailib.stores.memory import MemoryStore
from ailib.stores.memory_async import AsyncMemoryStore
from ailib.testing import Damage
from ailib.testing.async_conformance import AsyncStoreConformance
from tests.core.memory_damage import damage_memory


class TestAsyncMemoryStore(AsyncStoreConformance):
    @pytest.fixture
    def store_url(self) -> str:
        return "memory://async-conformance"

    def corrupt_session(self, store: SessionStore, session_id: str, damage: Damage) -> None:
        damage_memory(store, session_id, damage)


class TestThreadedFallback(AsyncStoreConformance):
    """A store without a native async twin runs in worker threads."""

    @pytest.fixture
    def store_url(self) -> Iterator[str]:
        class NoTwin(MemoryStore):
            async_twin = None

        with ailib.register_store("notwin", NoTwin):
            yield "notwin://threaded"

    def corrupt_session(self, store: SessionStore, session_id: str, damage: Damage) -> None:
        damage_memory(store, session_id, damage)


def test_open_async_store_picks_the_native_twin() -> None:
    store = ailib.open_async_store("memory://?ttl=1h", namespace="n1")
    assert isinstance(store, AsyncMemoryStore)
    assert store.default_ttl == 3600
    assert store.namespace == "n1"


def test_async_session_writes_through() -> None:
    async def main() -> list[str]:
        async with ailib.open_async_store("memory://async-demo") as store:
            chat = await store.create({"user_id": "alice"})
            await chat.add_message("system", "Be brief.")
            await chat.add_message("user", "Hello")
            await chat.set_metadata("topic", "greeting")
            loaded = await store.load(chat.session_id)
            assert loaded.get_metadata("topic") == "greeting"
            assert len(chat) == 2
            return [m["role"] for m in loaded.messages]

    assert asyncio.run(main()) == ["system", "user"]


def test_threaded_store_class_keeps_the_sync_options() -> None:
    threaded = ThreadedAsyncStore.over(MemoryStore)
    assert threaded.options == MemoryStore.options
    assert threaded.sync_class is MemoryStore
