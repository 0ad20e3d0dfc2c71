"""A store written as programs on ``ProgramStore`` / ``AsyncProgramStore`` runs the whole
sync and async conformance suites."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

import ailib
from ailib.store import SessionStore
from ailib.testing import Damage, StoreConformance
from ailib.testing.async_conformance import AsyncStoreConformance
from ailib.testing.blocking import BlockingStore
from tests.core import memory_programs
from tests.core.memory_damage import damage_record
from tests.core.program_memory_store import AsyncProgramMemoryStore, ProgramMemoryStore


@pytest.fixture
def progmem() -> Iterator[str]:
    with ailib.register_store("progmem", ProgramMemoryStore):
        yield "progmem://conformance"


def damage_document(store: Any, session_id: str, damage: Damage) -> None:
    """Damage the document behind ``store`` (sync, or async behind a ``BlockingStore``)."""
    if isinstance(store, BlockingStore):
        store = store.store
    assert isinstance(store, ProgramMemoryStore | AsyncProgramMemoryStore)
    with store._space.lock:
        damage_record(store._space.records[(store.namespace, session_id)], damage)


class TestProgramStore(StoreConformance):
    @pytest.fixture
    def store_url(self, progmem: str) -> str:
        return progmem

    def corrupt_session(self, store: SessionStore, session_id: str, damage: Damage) -> None:
        damage_document(store, session_id, damage)


class TestAsyncProgramStore(AsyncStoreConformance):
    @pytest.fixture
    def store_url(self, progmem: str) -> str:
        return progmem

    def corrupt_session(self, store: SessionStore, session_id: str, damage: Damage) -> None:
        damage_document(store, session_id, damage)


def test_each_operation_runs_its_program_once_per_call() -> None:
    """The base drives the program of the operation called, with the store's context."""
    seen: list[str] = []

    class Counting(ProgramMemoryStore):
        def _perform(self, step: memory_programs.Step) -> object:
            seen.append(type(step).__name__)
            return super()._perform(step)

    store = Counting.from_url("progmem://counting")
    session = store.create()
    seen.clear()
    store.append(session.session_id, {"role": "user", "content": "hi"})
    assert seen == ["Read", "Write"]
    assert store.load(session.session_id).messages[-1]["content"] == "hi"
