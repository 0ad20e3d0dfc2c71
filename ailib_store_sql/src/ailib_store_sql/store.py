"""`SQLStore`: sessions in SQLite, PostgreSQL or MySQL/MariaDB through SQLAlchemy Core.

Each operation is a program of ``operations`` (``ailib.spi.ProgramStore`` runs it), made of
short transactions, one for most (see ``statements`` for the SQL); ``AsyncSQLStore`` (``aio``)
runs the same programs. Writers of a
session serialize on its row: PostgreSQL and SQLite lock and advance it with one
``UPDATE … RETURNING``; MySQL/MariaDB with a locking ``UPDATE`` or ``SELECT … FOR UPDATE``;
SQLite write transactions also start with ``BEGIN IMMEDIATE``. An append then inserts its
messages at ``seq = message_count …``: cost independent of the history's length, one total
order. Deadlocks and serialization failures are retried; every other database error becomes
``StoreUnavailable`` / ``ConflictError`` naming the masked URL.
"""

from __future__ import annotations

import threading
import time
from contextlib import AbstractContextManager, nullcontext
from typing import Any, ClassVar, Self, TypeVar

import sqlalchemy as sa

from ailib.spi import ProgramStore, StoreURL, drive, set_store_url
from ailib_store_sql import direct
from ailib_store_sql import operations as ops
from ailib_store_sql.config import OPTIONS, read_settings
from ailib_store_sql.engine import Engines, make_engines
from ailib_store_sql.errors import translating
from ailib_store_sql.migrations import upgrade
from ailib_store_sql.schema import Tables
from ailib_store_sql.transaction import Failed, Pause, Step, attempts

__all__ = ("SQLStore", "transact")

T = TypeVar("T")


def transact(
    engines: Engines[sa.Engine],
    operation: ops.Operation[T],
    where: StoreURL,
    guard: AbstractContextManager[Any],
) -> T:
    """Do ``operation`` (its transaction and retries, ``transaction.attempts``) on
    ``engines``, each transaction holding ``guard``; database errors are raised as ailib
    errors naming ``where``. ``SQLStore`` calls it on the caller's thread, ``AsyncSQLStore``
    on SQLite in a worker thread."""

    def perform(step: Step) -> object:
        if isinstance(step, Pause):
            time.sleep(step.seconds)
            return None
        engine = engines.pick(write=step.write, single=step.single)
        try:
            with (
                guard,
                engine.connect() if engines.unbegun(single=step.single) else engine.begin() as conn,
            ):
                execute = direct.executor(conn, straight=engines.direct)
                return drive(step.program(), lambda statement: execute(*statement))
        except sa.exc.DBAPIError as exc:
            return Failed(exc)

    with translating(where, operation.what, operation.conflict):
        return drive(attempts(operation), perform)


class SQLStore(ProgramStore[ops.Context, ops.Operation[Any]]):
    """A session store on any SQLAlchemy database URL.

    Options (URL query or keyword): ``table_prefix`` (default ``ailib_``), ``create``
    (default true: create or upgrade the tables on open; false refuses and raises),
    ``pool_size``, ``pool_pre_ping``, plus ``namespace`` and ``ttl``, and the driver options
    in ``ailib_store_sql.engine.DRIVER_OPTIONS`` (``sslmode``, ``charset``, ``timeout``, …).
    Its operations are the programs of ``operations``; it performs each of their
    transactions with its retries (``transact``).
    """

    options: ClassVar[frozenset[str]] = OPTIONS
    async_twin = "ailib_store_sql.aio:AsyncSQLStore"
    _programs = ops

    def __init__(self, url: str | StoreURL = "sqlite://", **options: Any) -> None:
        settings = read_settings(url, options, self.options | self.common_options, "SQLStore")
        super().__init__(namespace=settings.namespace, ttl=settings.ttl)
        self._where = set_store_url(self, settings.url)
        self.tables: Tables = settings.tables
        self._engines = settings.open_engines(make_engines)
        self._guard: AbstractContextManager[Any] = (
            threading.RLock() if self._engines.shared_connection else nullcontext()
        )
        try:
            with translating(settings.url, "open the session tables"):
                upgrade(self._engines.engine, self.tables, create=settings.create)
        except BaseException:
            self._engines.engine.dispose()
            raise
        # Known only once connected (SQLite's depends on the library version).
        self._context = ops.Context.of(
            self.tables, self.namespace, self.url, self._engines.engine.dialect
        )

    @classmethod
    def from_url(cls, url: str | StoreURL, **options: Any) -> Self:
        return cls(url, **options)

    @property
    def engine(self) -> sa.Engine:
        """The SQLAlchemy engine (for inspection and tests; its URL holds the password)."""
        return self._engines.engine

    def close(self) -> None:
        self._engines.engine.dispose()

    def _perform(self, step: ops.Operation[Any]) -> object:
        return transact(self._engines, step, self._where, self._guard)
