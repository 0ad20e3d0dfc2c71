"""`SQLStore`: sessions in SQLite, PostgreSQL or MySQL/MariaDB through SQLAlchemy Core.

Each operation is one short transaction running a program of ``operations`` (see
``statements`` for the SQL); ``AsyncSQLStore`` (``aio``) runs the same programs. Writers of a
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
import uuid
from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Any, ClassVar, ParamSpec, Self, TypeVar

import sqlalchemy as sa

from ailib.spi import (
    BaseStore,
    Change,
    CheckpointRecord,
    CheckpointState,
    Message,
    SessionRecord,
    StoreURL,
    drive,
    set_store_url,
)
from ailib_store_sql import direct
from ailib_store_sql import operations as ops
from ailib_store_sql.config import OPTIONS, read_settings
from ailib_store_sql.engine import Engines, make_engines
from ailib_store_sql.errors import translating
from ailib_store_sql.migrations import upgrade
from ailib_store_sql.schema import Tables, op_key
from ailib_store_sql.transaction import Build, Failed, Job, Pause, Step, job, purge

__all__ = ("SQLStore", "op_of", "transact")

T = TypeVar("T")
P = ParamSpec("P")


def transact(
    engines: Engines[sa.Engine], job: Job[T], where: StoreURL, guard: AbstractContextManager[Any]
) -> T:
    """Do ``job`` (its transactions and retries, ``transaction.attempts``) on ``engines``,
    each transaction holding ``guard``; database errors are raised as ailib errors naming
    ``where``. ``SQLStore`` calls it on the caller's thread, ``AsyncSQLStore`` on SQLite in
    a worker thread."""

    def perform(step: Step) -> object:
        if isinstance(step, Pause):
            time.sleep(step.seconds)
            return None
        try:
            with guard, engines.pick(write=step.write, single=step.single).begin() as conn:
                execute = direct.executor(conn) if engines.direct else conn.execute
                return drive(step.program(), lambda statement: execute(*statement))
        except sa.exc.DBAPIError as exc:
            return Failed(exc)

    with translating(where, job.what, job.conflict):
        return drive(job.work, perform)


def op_of(change: Change) -> str:
    """The stored op id of ``change``: the one the caller gave it (an idempotency key), or a
    fresh one, so a write whose reply is lost can be looked up before it is retried."""
    given: str | None = getattr(change, "op_id", None)
    return op_key(given) if given else uuid.uuid4().hex


class SQLStore(BaseStore):
    """A session store on any SQLAlchemy database URL.

    Options (URL query or keyword): ``table_prefix`` (default ``ailib_``), ``create``
    (default true: create or upgrade the tables on open; false refuses and raises),
    ``pool_size``, ``pool_pre_ping``, plus ``namespace`` and ``ttl``, and the driver options
    in ``ailib_store_sql.engine.DRIVER_OPTIONS`` (``sslmode``, ``charset``, ``timeout``, …).
    """

    options: ClassVar[frozenset[str]] = OPTIONS
    async_twin = "ailib_store_sql.aio:AsyncSQLStore"

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

    def _run(self, build: Build[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """The operation ``build(context, *args)`` with its retries (``transact``)."""
        made = build(self._context, *args, **kwargs)
        return transact(self._engines, job(made), self._where, self._guard)

    # -- the operations: programs of ``operations`` -----------------------------------------

    def _create(self, record: SessionRecord) -> None:
        self._run(ops.create, record)

    def _fetch(self, session_id: str, last: int | None) -> SessionRecord | None:
        return self._run(ops.fetch, session_id, last)

    def _apply(self, session_id: str, change: Change, now: float) -> int:
        return self._run(ops.apply, session_id, change, now, op_of(change))

    def _replace(self, record: SessionRecord, expected_version: int, now: float) -> int:
        return self._run(ops.replace, record, expected_version, now)

    def _delete(self, session_id: str) -> bool:
        return self._run(ops.delete, session_id)

    def _list(
        self, user_id: str | None, limit: int, after: tuple[float, str] | None, now: float
    ) -> Sequence[SessionRecord]:
        return self._run(ops.list_page, user_id, limit, after, now)

    def _purge(self, now: float) -> int:
        return self._run(purge, now)

    def _pop(self, session_id: str, count: int, now: float) -> list[Message]:
        return self._run(ops.pop, session_id, count, now)

    def _checkpoint(self, session_id: str, label: str | None, now: float) -> int:
        return self._run(ops.checkpoint, session_id, label, now)

    def _checkpoints(self, session_id: str, now: float) -> Sequence[CheckpointRecord] | None:
        return self._run(ops.checkpoints, session_id, now)

    def _checkpoint_state(self, session_id: str, number: int, now: float) -> CheckpointState:
        return self._run(ops.checkpoint_state, session_id, number, now)

    def _restore(self, session_id: str, number: int, now: float) -> int:
        return self._run(ops.restore, session_id, number, now)
