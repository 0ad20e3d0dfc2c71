"""Async stores that run a sync store's operations.

:class:`InlineAsyncStore` calls them directly, for stores whose operations never block (the
memory store). :class:`ThreadedAsyncStore` runs each in a worker thread: what
``open_async_store`` uses for a third-party store that ships no async twin, so it still does
not block the event loop, though it is not natively async.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, Self, TypeVar

from ailib.async_base import AsyncBaseStore
from ailib.base import BaseStore
from ailib.messages import Message
from ailib.records import Change, CheckpointRecord, SessionRecord
from ailib.storecore import CheckpointState
from ailib.url import StoreURL

__all__ = ("InlineAsyncStore", "ThreadedAsyncStore")

T = TypeVar("T")


class _DelegatingAsyncStore(AsyncBaseStore):
    sync_class: ClassVar[type[BaseStore]]

    def __init__(self, sync: BaseStore) -> None:
        super().__init__(namespace=sync.namespace, ttl=sync.default_ttl)
        self.sync = sync
        self._url = sync._url

    @classmethod
    def from_url(cls, url: str | StoreURL, **options: Any) -> Self:
        return cls(cls.sync_class.from_url(url, **options))

    async def _call(self, function: Callable[..., T], *args: Any) -> T:
        raise NotImplementedError

    async def _create(self, record: SessionRecord) -> None:
        await self._call(self.sync._create, record)

    async def _fetch(self, session_id: str, last: int | None) -> SessionRecord | None:
        return await self._call(self.sync._fetch, session_id, last)

    async def _apply(self, session_id: str, change: Change, now: float) -> int:
        return await self._call(self.sync._apply, session_id, change, now)

    async def _replace(self, record: SessionRecord, expected_version: int, now: float) -> int:
        return await self._call(self.sync._replace, record, expected_version, now)

    async def _delete(self, session_id: str) -> bool:
        return await self._call(self.sync._delete, session_id)

    async def _list(
        self, user_id: str | None, limit: int, after: tuple[float, str] | None, now: float
    ) -> Sequence[SessionRecord]:
        return await self._call(self.sync._list, user_id, limit, after, now)

    async def _purge(self, now: float) -> int:
        return await self._call(self.sync._purge, now)

    async def _checkpoint(self, session_id: str, label: str | None, now: float) -> int:
        return await self._call(self.sync._checkpoint, session_id, label, now)

    async def _checkpoints(self, session_id: str, now: float) -> Sequence[CheckpointRecord] | None:
        return await self._call(self.sync._checkpoints, session_id, now)

    async def _checkpoint_state(self, session_id: str, number: int, now: float) -> CheckpointState:
        return await self._call(self.sync._checkpoint_state, session_id, number, now)

    async def _restore(self, session_id: str, number: int, now: float) -> int:
        return await self._call(self.sync._restore, session_id, number, now)

    async def _pop(self, session_id: str, count: int, now: float) -> list[Message]:
        return await self._call(self.sync._pop, session_id, count, now)

    async def aclose(self) -> None:
        await self._call(self.sync.close)


class InlineAsyncStore(_DelegatingAsyncStore):
    """For sync stores whose operations finish without waiting on I/O."""

    async def _call(self, function: Callable[..., T], *args: Any) -> T:
        return function(*args)


class ThreadedAsyncStore(_DelegatingAsyncStore):
    """Each operation of the sync store in a worker thread (``asyncio.to_thread``)."""

    async def _call(self, function: Callable[..., T], *args: Any) -> T:
        return await asyncio.to_thread(function, *args)

    @classmethod
    def over(cls, sync_class: type[BaseStore]) -> type[ThreadedAsyncStore]:
        """A ThreadedAsyncStore class for ``sync_class``."""
        namespace = {"sync_class": sync_class, "options": sync_class.options}
        return type(f"Threaded{sync_class.__name__}", (cls,), namespace)
