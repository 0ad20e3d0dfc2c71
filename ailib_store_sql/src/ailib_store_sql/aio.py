"""`AsyncSQLStore`: the asyncio twin of :class:`ailib_store_sql.store.SQLStore`.

Same URLs, options, tables, statements and errors; it runs the very programs of
``operations`` the sync store runs. Nothing waits on the event loop:

- PostgreSQL and MySQL/MariaDB: SQLAlchemy's asyncio engine with psycopg 3 (asyncio mode) or
  aiomysql (see ``engine.async_url``), asyncio-native drivers.
- SQLite: sqlite3 has no asyncio API (aiosqlite itself is a thread per connection, and with
  SQLAlchemy's greenlet layer costs a thread hop per statement), so the twin uses the sync
  store's engine (``engine.make_engines``: same ``BEGIN IMMEDIATE`` hooks) and runs each
  operation whole, transaction, retries and error translation included, in a worker thread
  (``asyncio.to_thread`` of ``store.transact``): one hop per operation, 3-5x faster.
  Writers still take turns on an asyncio lock first, so they queue on the loop rather than
  each holding a thread in SQLite's busy handler.

Constructing the store does no I/O (``open_async_store`` may be called on a running loop), so
the tables are created or upgraded by the first operation, under a lock; a missing server
or ``create=false`` with missing tables therefore raises there, not on open.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager, AbstractContextManager, nullcontext
from typing import Any, ClassVar, ParamSpec, Self, TypeVar

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from ailib.spi import (
    AsyncBaseStore,
    Change,
    CheckpointRecord,
    CheckpointState,
    Message,
    SessionRecord,
    StoreURL,
    drive_async,
    set_store_url,
)
from ailib_store_sql import operations as ops
from ailib_store_sql.config import OPTIONS, read_settings
from ailib_store_sql.engine import Engines, in_threads, make_async_engines, make_engines
from ailib_store_sql.errors import translating
from ailib_store_sql.migrations import upgrade, upgrade_async
from ailib_store_sql.schema import Tables
from ailib_store_sql.store import op_of, transact
from ailib_store_sql.transaction import Build, Failed, Pause, Step, job, purge

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
        self._where = set_store_url(self, settings.url)
        self.tables: Tables = settings.tables
        self._create_tables = settings.create
        # SQLite: the sync store's engine, driven from worker threads; else an asyncio one.
        self._threaded: Engines[sa.Engine] | None = None
        self._native: Engines[AsyncEngine] | None = None
        engines: Engines[Any]
        if in_threads(settings.target):
            engines = self._threaded = settings.open_engines(make_engines)
        else:
            engines = self._native = settings.open_engines(make_async_engines)
        self._engine: sa.Engine | AsyncEngine = engines.engine
        # In-memory SQLite: every transaction takes turns on the one connection; a SQLite
        # file: writers take turns (processes still queue on SQLite's busy timeout).
        self._guard: AbstractAsyncContextManager[Any] = (
            asyncio.Lock() if engines.shared_connection else nullcontext()
        )
        self._write_guard: AbstractAsyncContextManager[Any] = (
            asyncio.Lock() if engines.single_writer else nullcontext()
        )
        if engines.shared_connection:
            self._write_guard = self._guard
        # Held in the worker thread as well: a cancelled task's thread runs its transaction
        # to the end after the asyncio lock is released, and must not overlap the next one.
        self._thread_guard: AbstractContextManager[Any] = (
            threading.Lock() if engines.shared_connection else nullcontext()
        )
        self._opening = asyncio.Lock()
        self._context: ops.Context | None = None

    @classmethod
    def from_url(cls, url: str | StoreURL, **options: Any) -> Self:
        return cls(url, **options)

    @property
    def engine(self) -> sa.Engine | AsyncEngine:
        """The SQLAlchemy engine (for inspection and tests; its URL holds the password): the
        sync store's kind on SQLite (driven from worker threads), an asyncio one otherwise."""
        return self._engine

    async def aclose(self) -> None:
        if self._native is not None:
            await self._native.engine.dispose()
        elif self._threaded is not None:
            # Closing SQLite's last connection checkpoints the WAL: file I/O.
            await asyncio.to_thread(self._threaded.engine.dispose)

    async def _ready(self) -> ops.Context:
        """The programs' context, once the tables are there (first call only)."""
        async with self._opening:
            if self._context is None:
                with translating(self._where, "open the session tables"):
                    async with self._guard:
                        if self._threaded is not None:
                            await asyncio.to_thread(self._upgrade_in_thread, self._threaded)
                        elif self._native is not None:
                            await upgrade_async(
                                self._native.engine, self.tables, create=self._create_tables
                            )
                # Known only once connected (SQLite's depends on the library version).
                self._context = ops.Context.of(
                    self.tables, self.namespace, self.url, self._engine.dialect
                )
            return self._context

    def _upgrade_in_thread(self, engines: Engines[sa.Engine]) -> None:
        with self._thread_guard:
            upgrade(engines.engine, self.tables, create=self._create_tables)

    async def _run(self, build: Build[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """The operation ``build(context, *args)`` with its retries (``transaction``)."""
        made = job(build(self._context or await self._ready(), *args, **kwargs))
        if self._threaded is not None:
            # SQLite: the whole job in one worker thread (the sync store's driver).
            async with self._write_guard if made.write else self._guard:
                return await asyncio.to_thread(
                    transact, self._threaded, made, self._where, self._thread_guard
                )
        native = self._native
        assert native is not None

        async def perform(step: Step) -> object:
            if isinstance(step, Pause):
                await asyncio.sleep(step.seconds)
                return None
            engine = native.pick(write=step.write, single=step.single)
            guard = self._write_guard if step.write else self._guard
            try:
                async with guard, engine.begin() as conn:
                    return await drive_async(
                        step.program(), lambda statement: conn.execute(*statement)
                    )
            except sa.exc.DBAPIError as exc:
                return Failed(exc)

        with translating(self._where, made.what, made.conflict):
            return await drive_async(made.work, perform)

    # -- the operations: the sync store's programs, awaited ---------------------------------

    async def _create(self, record: SessionRecord) -> None:
        await self._run(ops.create, record)

    async def _fetch(self, session_id: str, last: int | None) -> SessionRecord | None:
        return await self._run(ops.fetch, session_id, last)

    async def _apply(self, session_id: str, change: Change, now: float) -> int:
        return await self._run(ops.apply, session_id, change, now, op_of(change))

    async def _replace(self, record: SessionRecord, expected_version: int, now: float) -> int:
        return await self._run(ops.replace, record, expected_version, now)

    async def _delete(self, session_id: str) -> bool:
        return await self._run(ops.delete, session_id)

    async def _list(
        self, user_id: str | None, limit: int, after: tuple[float, str] | None, now: float
    ) -> Sequence[SessionRecord]:
        return await self._run(ops.list_page, user_id, limit, after, now)

    async def _purge(self, now: float) -> int:
        return await self._run(purge, now)

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
