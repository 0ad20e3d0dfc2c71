"""`AsyncSQLStore`: the native asyncio twin of :class:`ailib_store_sql.store.SQLStore`.

Same URLs, options, tables, statements and errors; it runs the very programs of
``operations`` the sync store runs, on SQLAlchemy's asyncio engine with aiosqlite,
psycopg 3 (asyncio mode) or aiomysql (see ``engine.async_url``). Nothing waits on the event
loop: network drivers are asyncio-native and aiosqlite runs SQLite, busy waits included, in a
thread of its own per connection.

Constructing the store does no I/O (``open_async_store`` may be called on a running loop), so
the tables are created or upgraded by the first operation, under a lock; a missing server
or ``create=false`` with missing tables therefore raises there, not on open.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager, nullcontext
from typing import Any, ClassVar, ParamSpec, Self, TypeVar

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from ailib.async_base import AsyncBaseStore
from ailib.messages import Message
from ailib.records import Change, CheckpointRecord, SessionRecord
from ailib.storecore import CheckpointState
from ailib.url import StoreURL
from ailib_store_sql import operations as ops
from ailib_store_sql.config import OPTIONS, read_settings
from ailib_store_sql.engine import make_async_engines
from ailib_store_sql.errors import retry_delay, translating
from ailib_store_sql.migrations import upgrade_async
from ailib_store_sql.operations import Build
from ailib_store_sql.schema import Tables

__all__ = ("AsyncSQLStore",)

T = TypeVar("T")
P = ParamSpec("P")


class AsyncSQLStore(AsyncBaseStore):
    """``SQLStore``'s options and behaviour, awaited; ``ailib.open_async_store`` returns it
    for ``sqlite``, ``postgresql`` and ``mysql``/``mariadb`` URLs."""

    options: ClassVar[frozenset[str]] = OPTIONS

    def __init__(self, url: str | StoreURL = "sqlite://", **options: Any) -> None:
        settings = read_settings(url, options, self.options | self.common_options, "AsyncSQLStore")
        super().__init__(namespace=settings.namespace, ttl=settings.ttl)
        self._url = self._where = settings.url
        self.tables: Tables = settings.tables
        self._create_tables = settings.create
        self._engines = settings.open_engines(make_async_engines)
        # In-memory SQLite: every transaction takes turns on the one connection; a SQLite
        # file: writers take turns (processes still queue on SQLite's busy timeout).
        self._guard: AbstractAsyncContextManager[Any] = (
            asyncio.Lock() if self._engines.shared_connection else nullcontext()
        )
        self._write_guard: AbstractAsyncContextManager[Any] = (
            asyncio.Lock() if self._engines.single_writer else nullcontext()
        )
        if self._engines.shared_connection:
            self._write_guard = self._guard
        self._opening = asyncio.Lock()
        self._context: ops.Context | None = None

    @classmethod
    def from_url(cls, url: str | StoreURL, **options: Any) -> Self:
        return cls(url, **options)

    @property
    def engine(self) -> AsyncEngine:
        """The SQLAlchemy asyncio engine (for inspection and tests; its URL holds the
        password)."""
        return self._engines.engine

    async def aclose(self) -> None:
        await self._engines.engine.dispose()

    async def _ready(self) -> ops.Context:
        """The programs' context, once the tables are there (first call only)."""
        async with self._opening:
            if self._context is None:
                with translating(self._where, "open the session tables"):
                    async with self._guard:
                        await upgrade_async(
                            self._engines.engine, self.tables, create=self._create_tables
                        )
                self._context = ops.Context.of(
                    self.tables, self.namespace, self.url, self._engines.engine.dialect
                )
            return self._context

    async def _run(self, build: Build[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """The operation ``build(context, *args)`` in one transaction, retried (after an
        awaited pause) when the database picked it as a deadlock victim."""
        operation = build(self._context or await self._ready(), *args, **kwargs)
        engine, guard = (
            (self._engines.writer, self._write_guard)
            if operation.write
            else (self._engines.reader, self._guard)
        )
        attempt = 0
        with translating(self._where, operation.what, operation.conflict):
            while True:
                try:
                    async with guard, engine.begin() as conn:
                        return await ops.run_async(operation.program(), conn.execute)
                except sa.exc.DBAPIError as exc:
                    attempt += 1
                    await asyncio.sleep(retry_delay(exc, attempt))

    # -- the operations: the sync store's programs, awaited ---------------------------------

    async def _create(self, record: SessionRecord) -> None:
        await self._run(ops.create, record)

    async def _fetch(self, session_id: str, last: int | None) -> SessionRecord | None:
        return await self._run(ops.fetch, session_id, last)

    async def _apply(self, session_id: str, change: Change, now: float) -> int:
        return await self._run(ops.apply, session_id, change, now)

    async def _replace(self, record: SessionRecord, expected_version: int, now: float) -> int:
        return await self._run(ops.replace, record, expected_version, now)

    async def _delete(self, session_id: str) -> bool:
        return await self._run(ops.delete, session_id)

    async def _list(
        self, user_id: str | None, limit: int, after: tuple[float, str] | None, now: float
    ) -> Sequence[SessionRecord]:
        return await self._run(ops.list_page, user_id, limit, after, now)

    async def _purge(self, now: float) -> int:
        total, more = 0, True
        while more:
            deleted, more = await self._run(ops.purge_batch, now)
            total += deleted
        return total

    async def _pop(self, session_id: str, count: int, now: float) -> list[Message]:
        return await self._run(ops.pop, session_id, count, now)

    async def _checkpoint(self, session_id: str, label: str | None, now: float) -> int:
        return await self._run(ops.checkpoint, session_id, label, now)

    async def _checkpoints(self, session_id: str, now: float) -> Sequence[CheckpointRecord] | None:
        return await self._run(ops.checkpoints, session_id, now)

    async def _checkpoint_state(self, session_id: str, number: int, now: float) -> CheckpointState:
        return await self._run(ops.checkpoint_state, session_id, number, now)

    async def _restore(self, session_id: str, number: int, now: float) -> int:
        return await self._run(ops.restore, session_id, number, now)
