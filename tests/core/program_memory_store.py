"""`progmem://`: a memory store whose every operation is a program of ``memory_programs``.

It is built on ``ailib.spi.ProgramStore`` and ``AsyncProgramStore`` exactly as a backend
would be: each twin names the programs, builds their context and performs one step; the
operations themselves are the bases'.
"""

from __future__ import annotations

import copy
import threading
from dataclasses import replace
from typing import Any

from ailib.spi import AsyncProgramStore, ProgramStore, SessionRecord, StoreURL, set_store_url
from tests.core import memory_programs
from tests.core.memory_programs import Context, Read, Remove, Step, Write

__all__ = ("AsyncProgramMemoryStore", "ProgramMemoryStore", "Space")

_SPACES: dict[str, Space] = {}
_SPACES_LOCK = threading.Lock()


class Space:
    """One named memory: documents by (namespace, session id), each step under one lock."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.records: dict[tuple[str, str], SessionRecord] = {}

    @classmethod
    def named(cls, name: str) -> Space:
        with _SPACES_LOCK:
            return _SPACES.setdefault(name, cls())

    def perform(self, namespace: str, step: Step) -> object:
        with self.lock:
            if isinstance(step, Read):
                return copy.deepcopy(self.records.get((namespace, step.session_id)))
            if isinstance(step, Write):
                key = (namespace, step.record.session_id)
                current = self.records.get(key)
                if (None if current is None else current.version) != step.expected_version:
                    return False
                self.records[key] = copy.deepcopy(step.record)
                return True
            if isinstance(step, Remove):
                return self.records.pop((namespace, step.session_id), None) is not None
            return [
                replace(copy.deepcopy(r), messages=[], message_count=len(r.messages))
                for (space, _), r in self.records.items()
                if space == namespace
            ]


def _opened(store: ProgramMemoryStore | AsyncProgramMemoryStore, url: str | StoreURL) -> None:
    parsed = set_store_url(store, url)
    store._space = Space.named((parsed.host or "") + parsed.path)
    store._context = Context(store.url)


class ProgramMemoryStore(ProgramStore[Context, Step]):
    async_twin = "tests.core.program_memory_store:AsyncProgramMemoryStore"
    _programs = memory_programs
    _space: Space

    @classmethod
    def from_url(cls, url: str | StoreURL, **options: Any) -> ProgramMemoryStore:
        store = cls(**options)
        _opened(store, url)
        return store

    def _perform(self, step: Step) -> object:
        return self._space.perform(self.namespace, step)


class AsyncProgramMemoryStore(AsyncProgramStore[Context, Step]):
    _programs = memory_programs
    _space: Space

    @classmethod
    def from_url(cls, url: str | StoreURL, **options: Any) -> AsyncProgramMemoryStore:
        store = cls(**options)
        _opened(store, url)
        return store

    async def _perform(self, step: Step) -> object:
        return self._space.perform(self.namespace, step)
