"""SQLite: the prepared statements run straight on the sqlite3 cursor.

SQLite answers in microseconds, so SQLAlchemy's per-statement work (cache key, execution
context, result set-up: about 50 µs a statement) is most of an append's cost beyond the
commit. The statements of ``statements`` that are built once per table set (``prepared``)
are compiled once here, to their SQL text and the order of their parameters, and executed
on the connection's own sqlite3 cursor, inside the transaction SQLAlchemy began (so ``BEGIN
IMMEDIATE``, commit, rollback and the pool are unchanged). Everything else goes through
``Connection.execute`` as before. Listeners of ``before_cursor_execute`` still see every
statement, and driver errors are raised as SQLAlchemy's (``DBAPIError.instance``), so
retries and error translation do not change either.
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from ailib_store_sql.statements import is_prepared

__all__ = ("Rows", "executor")

Execute = Callable[[sa.Executable, Any], Any]


@dataclass(frozen=True)
class _Plan:
    sql: str
    #: For each positional parameter: its name, a constant (a literal LIMIT), a converter.
    slots: tuple[tuple[str, Any, Callable[[Any], Any] | None], ...]
    #: The row type of a statement that returns rows (its column names as attributes).
    row: type[tuple[Any, ...]] | None

    def values(self, params: dict[str, Any]) -> tuple[Any, ...]:
        out = []
        for name, constant, convert in self.slots:
            value = params[name] if constant is _MISSING else constant
            out.append(value if convert is None or value is None else convert(value))
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
        for name in compiled.positiontup:
            bind = compiled.binds[name]
            constant = _MISSING if bind.required else bind.effective_value
            slots.append((name, constant, processors.get(name)))
        row: Any = None
        if compiled._result_columns:
            names = [column[0] for column in compiled._result_columns]
            row = _row_type(names)
        plan = _PLANS[key] = _Plan(compiled.string, tuple(slots), row)
    return plan


def _row_type(names: list[str]) -> Any:
    """A tuple type with the column names as attributes, like SQLAlchemy's rows."""
    make: Any = collections.namedtuple
    return make("Row", names, rename=True)


class Rows:
    """The part of ``CursorResult`` the programs of ``operations`` use, over fetched rows."""

    def __init__(self, rows: list[Any], rowcount: int) -> None:
        self._rows = rows
        self.rowcount = rowcount

    def __iter__(self) -> Iterator[Any]:
        return iter(self._rows)

    def first(self) -> Any:
        return self._rows[0] if self._rows else None

    def all(self) -> list[Any]:
        return self._rows

    def scalar(self) -> Any:
        return self._rows[0][0] if self._rows else None

    def scalar_one(self) -> Any:
        if len(self._rows) != 1:
            raise sa.exc.NoResultFound("expected exactly one row")
        return self._rows[0][0]

    def scalars(self) -> list[Any]:
        return [row[0] for row in self._rows]


def executor(conn: sa.Connection) -> Execute:
    """``conn.execute`` for the programs, prepared statements going straight to sqlite3."""
    dialect = conn.dialect
    driver = conn.connection.driver_connection
    error = dialect.loaded_dbapi.Error
    events = conn.dispatch.before_cursor_execute

    def execute(statement: sa.Executable, params: Any) -> Any:
        if not is_prepared(statement):
            return conn.execute(statement, params)
        plan = _plan(statement, dialect)
        many = isinstance(params, list)
        values: Sequence[Any] = (
            [plan.values(p) for p in params] if many else plan.values(params or {})
        )
        cursor = driver.cursor()  # type: ignore[union-attr]
        try:
            if events:
                events(conn, cursor, plan.sql, values, None, many)
            if many:
                cursor.executemany(plan.sql, values)
            else:
                cursor.execute(plan.sql, values)
            rows = [] if plan.row is None else [plan.row(*r) for r in cursor.fetchall()]
            return Rows(rows, cursor.rowcount)
        except error as exc:
            raise sa.exc.DBAPIError.instance(
                plan.sql, None, exc, error, hide_parameters=True, dialect=dialect
            ) from exc
        finally:
            cursor.close()

    return execute
