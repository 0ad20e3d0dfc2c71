"""`AsyncSQLStore`: the asyncio twin of :class:`ailib_store_sql.store.SQLStore`.

Same URLs, options, tables, statements and errors; it runs the very programs of
``operations`` the sync store runs. Nothing waits on the event loop:

- PostgreSQL and MySQL/MariaDB: SQLAlchemy's asyncio engine with psycopg 3 (asyncio mode) or
  aiomysql (see ``engine.async_url``), asyncio-native drivers.
- SQLite: sqlite3 has no asyncio API (aiosqlite itself is a thread per connection, and with
  SQLAlchemy's greenlet layer costs a thread hop per statement), so the twin uses the sync
  store's engine (``engine.make_engines``: same ``BEGIN IMMEDIATE`` hooks) and runs each
  transaction whole, retries and error translation included, in a worker thread
  (``asyncio.to_thread`` of ``store.transact``): one hop per transaction, 3-5x faster.
  Writers still take turns on an asyncio lock first, so they queue on the loop rather than
  each holding a thread in SQLite's busy handler.

Constructing the store does no I/O (``open_async_store`` may be called on a running loop), so
the tables are created or upgraded by the first operation, under a lock; a missing server
or ``create=false`` with missing tables therefore raises there, not on open. The programs'
context is made on open from what the dialect knows unconnected, and made again once
connected (MariaDB behind a ``mysql`` URL is known only then): a first append there may take
the general path, which is as correct.
"""

from __future__ import annotations

import asyncio
import threading
from contextlib import AbstractAsyncContextManager, AbstractContextManager, nullcontext
from typing import Any, ClassVar, Self

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from ailib.spi import AsyncProgramStore, StoreURL, drive_async, set_store_url
from ailib_store_sql import operations as ops
from ailib_store_sql.config import OPTIONS, read_settings
from ailib_store_sql.direct import run_batch
from ailib_store_sql.engine import Engines, in_threads, make_async_engines, make_engines
from ailib_store_sql.errors import translating
from ailib_store_sql.migrations import upgrade, upgrade_async
from ailib_store_sql.schema import Tables
from ailib_store_sql.statements import Batch
from ailib_store_sql.store import transact
from ailib_store_sql.transaction import Failed, Pause, Step, attempts

__all__ = ("AsyncSQLStore",)


class AsyncSQLStore(AsyncProgramStore[ops.Context, ops.Operation[Any]]):
    """``SQLStore``'s options and behaviour, awaited; ``ailib.open_async_store`` returns it
    for ``sqlite``, ``postgresql`` and ``mysql``/``mariadb`` URLs."""

    options: ClassVar[frozenset[str]] = OPTIONS
    _programs = ops

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
        self._opened = False
        self._context = self._context_now()

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

    def _context_now(self) -> ops.Context:
        """The programs' context from what the dialect knows now (more once connected)."""
        return ops.Context.of(self.tables, self.namespace, self.url, self._engine.dialect)

    async def _ready(self) -> None:
        """Create or upgrade the tables, and learn the connected dialect (first call only)."""
        async with self._opening:
            if self._opened:
                return
            with translating(self._where, "open the session tables"):
                async with self._guard:
                    if self._threaded is not None:
                        await asyncio.to_thread(self._upgrade_in_thread, self._threaded)
                    elif self._native is not None:
                        await upgrade_async(
                            self._native.engine, self.tables, create=self._create_tables
                        )
            self._context = self._context_now()
            self._opened = True

    def _upgrade_in_thread(self, engines: Engines[sa.Engine]) -> None:
        with self._thread_guard:
            upgrade(engines.engine, self.tables, create=self._create_tables)

    async def _perform(self, step: ops.Operation[Any]) -> object:
        """One transaction of an operation with its retries (``transaction.attempts``)."""
        if not self._opened:
            await self._ready()
        if self._threaded is not None:
            # SQLite: the whole of it in one worker thread (the sync store's driver).
            async with self._write_guard if step.write else self._guard:
                return await asyncio.to_thread(
                    transact, self._threaded, step, self._where, self._thread_guard
                )
        native = self._native
        assert native is not None

        async def perform(attempt: Step) -> object:
            if isinstance(attempt, Pause):
                await asyncio.sleep(attempt.seconds)
                return None
            engine = native.pick(write=attempt.write, single=attempt.single)
            guard = self._write_guard if attempt.write else self._guard
            opened = engine.connect() if native.unbegun(single=attempt.single) else engine.begin()
            try:
                async with guard, opened as conn:

                    async def execute(statement: Any, params: Any) -> Any:
                        if isinstance(statement, Batch):
                            # The sync store's code, on the driver's connection.
                            return await conn.run_sync(run_batch, statement)
                        return await conn.execute(statement, params)

                    return await drive_async(
                        attempt.program(), lambda statement: execute(*statement)
                    )
            except sa.exc.DBAPIError as exc:
                return Failed(exc)

        with translating(self._where, step.what, step.conflict):
            return await drive_async(attempts(step), perform)
