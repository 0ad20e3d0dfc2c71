"""The sync store (SQLite, PostgreSQL, MySQL/MariaDB): the prepared statements run straight
on the driver's cursor.

SQLite answers in microseconds, and a local PostgreSQL or MariaDB in a few tens, so
SQLAlchemy's per-statement work (cache key, execution context, result set-up: about 50 µs a
statement) is most of an append's cost beyond the commit. The statements of ``statements`` that are
built once per table set (``prepared``) are compiled once here, to their SQL text and the
order of their parameters, and executed on the connection's own driver cursor (through the
dialect's ``do_execute``), inside the transaction SQLAlchemy began (so ``BEGIN IMMEDIATE``,
commit, rollback and the pool are unchanged). A lost connection invalidates the pooled
connection as SQLAlchemy would. Everything else goes through
``Connection.execute`` as before. Listeners of ``before_cursor_execute`` still see every
statement, and driver errors are raised as SQLAlchemy's (``DBAPIError.instance``), so
retries and error translation do not change either.

A MariaDB ``statements.Batch`` (several statements as one query) runs here too, for both
twins (``run_batch``; the async one calls it through ``AsyncConnection.run_sync``).
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from ailib_store_sql.statements import Batch, is_prepared

__all__ = ("Rows", "executor", "run_batch")

Execute = Callable[[sa.Executable | Batch, Any], Any]


@dataclass(frozen=True)
class _Plan:
    sql: str
    #: For each positional parameter: its name, a constant (a literal LIMIT), a converter.
    slots: tuple[tuple[str, Any, Callable[[Any], Any] | None], ...]
    #: The row type of a statement that returns rows (its column names as attributes).
    row: type[tuple[Any, ...]] | None
    #: Parameters by name (``pyformat``: PyMySQL) rather than by position (sqlite3).
    named: bool

    def values(self, params: dict[str, Any]) -> tuple[Any, ...] | dict[str, Any]:
        out = []
        for name, constant, convert in self.slots:
            value = params[name] if constant is _MISSING else constant
            out.append(value if convert is None or value is None else convert(value))
        if self.named:
            return {slot[0]: value for slot, value in zip(self.slots, out, strict=True)}
        return tuple(out)


_MISSING = object()
_PLANS: dict[tuple[int, str], _Plan] = {}


def _plan(statement: sa.Executable, dialect: sa.Dialect) -> _Plan:
    key = (id(statement), dialect.name)
    plan = _PLANS.get(key)
    if plan is None:
        compiled: Any = statement.compile(dialect=dialect)  # type: ignore[attr-defined]
        processors = compiled._bind_processors
        slots = []
        named = compiled.positiontup is None
        for name in sorted(set(compiled.bind_names.values())) if named else compiled.positiontup:
            bind = compiled.binds[name]
            constant = _MISSING if bind.required else bind.effective_value
            slots.append((name, constant, processors.get(name)))
        row: Any = None
        if compiled._result_columns:
            names = [column[0] for column in compiled._result_columns]
            row = _row_type(names)
        plan = _PLANS[key] = _Plan(compiled.string, tuple(slots), row, named)
    return plan


def _row_type(names: list[str]) -> Any:
    """A tuple type with the column names as attributes, like SQLAlchemy's rows."""
    make: Any = collections.namedtuple
    return make("Row", names, rename=True)


class Rows:
    """The part of ``CursorResult`` the programs of ``operations`` use, over fetched rows:
    rows with attribute access, or plain tuples (``tuples()``, for long results)."""

    def __init__(self, rows: list[Any], rowcount: int, row: Any = None) -> None:
        self._rows = rows
        self._row = row
        self.rowcount = rowcount

    def _named(self) -> list[Any]:
        if self._row is None:
            return self._rows
        make = self._row._make
        return [make(r) for r in self._rows]

    def plain(self) -> list[Any]:
        """The rows as plain tuples (cheaper for long results)."""
        return self._rows

    def __iter__(self) -> Iterator[Any]:
        return iter(self._named())

    def first(self) -> Any:
        if not self._rows:
            return None
        return self._rows[0] if self._row is None else self._row._make(self._rows[0])

    def all(self) -> list[Any]:
        return self._named()

    def scalar(self) -> Any:
        return self._rows[0][0] if self._rows else None

    def scalar_one(self) -> Any:
        if len(self._rows) != 1:
            raise sa.exc.NoResultFound("expected exactly one row")
        return self._rows[0][0]

    def scalars(self) -> list[Any]:
        return [row[0] for row in self._rows]


def executor(conn: sa.Connection, *, straight: bool = True) -> Execute:
    """``conn.execute`` for the programs, prepared statements going straight to the driver
    (unless not ``straight``), batches too (``run_batch``)."""
    dialect = conn.dialect
    driver = conn.connection.driver_connection
    error = dialect.loaded_dbapi.Error
    events = conn.dispatch.before_cursor_execute

    def execute(statement: sa.Executable | Batch, params: Any) -> Any:
        if isinstance(statement, Batch):
            return run_batch(conn, statement)
        if not straight or not is_prepared(statement):
            return conn.execute(statement, params)
        plan = _plan(statement, dialect)
        many = isinstance(params, list)
        values: Any = [plan.values(p) for p in params] if many else plan.values(params or {})
        cursor = driver.cursor()  # type: ignore[union-attr]
        try:
            if events:
                events(conn, cursor, plan.sql, values, None, many)
            if plan.row is None:
                if many:
                    dialect.do_executemany(cursor, plan.sql, values, None)
                else:
                    dialect.do_execute(cursor, plan.sql, values, None)
                return Rows([], cursor.rowcount)
            rows: list[Any] = []
            # One execution per row when rows come back (RETURNING of each insert).
            for one in values if many else [values]:
                dialect.do_execute(cursor, plan.sql, one, None)
                rows += cursor.fetchall()
            return Rows(rows, cursor.rowcount, plan.row)
        except error as exc:
            lost = dialect.is_disconnect(exc, conn.connection, cursor)
            raise _translated(conn, plan.sql, exc, lost) from exc
        finally:
            if not conn.invalidated:
                cursor.close()

    return execute


def run_batch(conn: sa.Connection, batch: Batch) -> Rows:
    """Send ``batch`` as one query on ``conn``'s driver connection and read every statement's
    result; returns the rows of its statement ``rows_of``. The batch begins and commits its
    own transaction: when a statement fails (the server runs none after it), the transaction
    it left open is rolled back here, and the driver's error raised as SQLAlchemy's; a
    connection that is lost, or cannot be rolled back, is invalidated (whether a lost
    batch committed is for the op id to tell)."""
    dialect = conn.dialect
    fairy = conn.connection
    dbapi_connection: Any = fairy.dbapi_connection
    error = dialect.loaded_dbapi.Error
    cursor = dbapi_connection.cursor()
    try:
        events = conn.dispatch.before_cursor_execute
        if events:
            events(conn, cursor, batch.sql, batch.args, None, False)
        dialect.do_execute(cursor, batch.sql, batch.args, None)
        rows: list[Any] = []
        # The first statement's result came with the reply to the query; one more each.
        for number in range(1, batch.statements):
            cursor.nextset()
            if number == batch.rows_of:
                rows = list(cursor.fetchall())
        return Rows(rows, -1)
    except error as exc:
        lost = dialect.is_disconnect(exc, fairy, cursor)
        if not lost:
            try:
                dbapi_connection.rollback()
            except error:
                lost = True
        raise _translated(conn, batch.sql, exc, lost) from exc
    finally:
        if not conn.invalidated:
            cursor.close()


def _translated(conn: sa.Connection, sql: str, exc: Exception, lost: bool) -> sa.exc.StatementError:
    """The driver's ``exc`` as SQLAlchemy raises it (parameters hidden), after invalidating
    ``conn`` when the connection was ``lost``."""
    if lost:
        conn.invalidate(exc)
    return sa.exc.DBAPIError.instance(
        sql,
        None,
        exc,
        conn.dialect.loaded_dbapi.Error,
        hide_parameters=True,
        connection_invalidated=lost,
        dialect=conn.dialect,
    )
