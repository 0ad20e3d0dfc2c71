"""`SQLStore`: sessions in SQLite, PostgreSQL or MySQL/MariaDB through SQLAlchemy Core.

Each operation is one short transaction (see ``statements`` for the SQL). Writers of a session
serialize on its row: PostgreSQL and SQLite lock and advance it with one
``UPDATE … RETURNING``; MySQL/MariaDB (no UPDATE … RETURNING) with ``SELECT … FOR UPDATE``
then ``UPDATE``; SQLite write transactions also start with ``BEGIN IMMEDIATE``. An append then
inserts its messages at ``seq = message_count …``: cost independent of the history's length,
one total order. Deadlocks and serialization failures are retried; every other database error
becomes ``StoreUnavailable`` / ``ConflictError`` naming the masked URL.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, Final, Self, TypeVar

import sqlalchemy as sa

from ailib.base import BaseStore, CheckpointState
from ailib.checkpoints import common_prefix
from ailib.codec import dumps, loads
from ailib.errors import (
    CheckpointNotFound,
    ConfigurationError,
    ConflictError,
    CorruptSessionError,
    SessionNotFound,
)
from ailib.messages import Message
from ailib.records import Change, CheckpointRecord, SessionRecord
from ailib.url import StoreURL, make_url
from ailib_store_sql import statements as st
from ailib_store_sql.engine import DRIVER_OPTIONS, make_engines, sqlalchemy_url
from ailib_store_sql.errors import is_transient, translating
from ailib_store_sql.migrations import upgrade
from ailib_store_sql.schema import Tables, define

__all__ = ("SQLStore",)

T = TypeVar("T")

#: Sessions deleted per transaction by ``purge_expired``.
PURGE_BATCH: Final = 500
#: Attempts for a transaction the database rolled back as a deadlock victim.
_ATTEMPTS: Final = 8
_OWN_OPTIONS: Final = frozenset({"table_prefix", "create", "pool_size", "pool_pre_ping"})


class SQLStore(BaseStore):
    """A session store on any SQLAlchemy database URL.

    Options (URL query or keyword): ``table_prefix`` (default ``ailib_``), ``create``
    (default true: create or upgrade the tables on open; false refuses and raises),
    ``pool_size``, ``pool_pre_ping``, plus ``namespace`` and ``ttl``, and the driver options
    in ``ailib_store_sql.engine.DRIVER_OPTIONS`` (``sslmode``, ``charset``, ``timeout``, …).
    """

    options: ClassVar[frozenset[str]] = _OWN_OPTIONS | DRIVER_OPTIONS

    def __init__(self, url: str | StoreURL = "sqlite://", **options: Any) -> None:
        parsed = make_url(url)
        merged: dict[str, Any] = {**parsed.query, **options}
        unknown = set(merged) - self.options - self.common_options
        if unknown:
            raise ConfigurationError(
                f"unknown option(s) {', '.join(sorted(unknown))} for {parsed.render()}; "
                f"SQLStore accepts: {', '.join(sorted(self.options | self.common_options))}"
            )
        super().__init__(namespace=merged.get("namespace", "default"), ttl=merged.get("ttl"))
        self._url = self._where = parsed
        self.tables: Tables = define(str(merged.get("table_prefix", "ailib_")))
        create = _flag(merged.get("create", True), "create")
        driver = {k: str(v) for k, v in merged.items() if k in DRIVER_OPTIONS}
        target = sqlalchemy_url(parsed.without_query(parsed.query), driver)
        pool_size = merged.get("pool_size")
        self._engines = make_engines(
            target,
            parsed.render(),
            pool_size=None if pool_size is None else _count(pool_size, "pool_size"),
            pool_pre_ping=_flag(merged.get("pool_pre_ping", False), "pool_pre_ping"),
        )
        try:
            with translating(parsed, "open the session tables"):
                upgrade(self._engines.engine, self.tables, create=create)
        except BaseException:
            self._engines.engine.dispose()
            raise
        # Known only once connected (SQLite's depends on the library version).
        dialect = self._engines.engine.dialect
        self._update_returning = bool(dialect.update_returning)
        self._bump_by_variables = bool(
            getattr(dialect, "is_mariadb", False) and dialect.insert_returning
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

    # -- running transactions -------------------------------------------------------------

    def _sql_tx(
        self,
        what: str,
        work: Callable[[sa.Connection], T],
        *,
        write: bool,
    ) -> T:
        """``work`` in one transaction, retried when the database picked it as a deadlock
        victim (it was rolled back, so running it again is safe)."""
        engine = self._engines.writer if write else self._engines.reader
        attempt = 0
        with translating(self._where, what):
            while True:
                try:
                    with self._engines.guard, engine.begin() as conn:
                        return work(conn)
                except sa.exc.DBAPIError as exc:
                    attempt += 1
                    if attempt >= _ATTEMPTS or not is_transient(exc):
                        raise
                    time.sleep(random.uniform(0, 0.005 * 2**attempt))

    def _sql_bodies(
        self, conn: sa.Connection, session_id: str, start: int, stop: int
    ) -> list[Message]:
        if start >= stop:
            return []
        params = st.key(self.namespace, session_id) | {"p_start": start, "p_stop": stop}
        rows = conn.execute(st.select_bodies(self.tables), params)
        return [loads(body, f"a message of session {session_id!r}") for body in rows.scalars()]

    def _sql_locked(self, conn: sa.Connection, session_id: str, now: float) -> sa.Row[Any]:
        row = conn.execute(
            st.select_session(self.tables, lock=True), st.key(self.namespace, session_id, now)
        ).first()
        if row is None:
            raise SessionNotFound(session_id, self.url)
        return row

    def _sql_check_version(self, session_id: str, version: int, expected: int | None) -> None:
        if expected is not None and version != expected:
            raise ConflictError(
                f"session {session_id!r} in {self.url} is at version {version}, not "
                f"{expected}: someone else changed it; reload and try again"
            )

    def _sql_insert(
        self, conn: sa.Connection, session_id: str, start: int, messages: Sequence[Message]
    ) -> None:
        if messages:
            rows = st.message_rows(self.namespace, session_id, start, messages)
            conn.execute(st.insert_messages(self.tables), rows)

    def _sql_rewrite(
        self,
        conn: sa.Connection,
        session_id: str,
        current: Sequence[Message],
        keep: int,
        new: Sequence[Message] | None,
    ) -> None:
        """Keep the first ``keep`` messages of the log and append ``new[keep:]``, giving every
        pointer checkpoint the rewrite breaks its own copy first (copy-on-write)."""
        t, ns = self.tables, self.namespace
        for number, count in conn.execute(st.select_pointers_past(t, ns, session_id, keep)):
            conn.execute(st.materialize_checkpoint(t, ns, session_id, number, current[:count]))
        conn.execute(st.truncate_log(t, ns, session_id, keep))
        if new is not None:
            self._sql_insert(conn, session_id, keep, new[keep:])

    # -- the operations -------------------------------------------------------------------

    def _create(self, record: SessionRecord) -> None:
        t, ns, sid = self.tables, self.namespace, record.session_id

        def work(conn: sa.Connection) -> None:
            existing = conn.execute(st.select_expiry(t, ns, sid)).first()
            if existing is not None:
                if existing.expires_at is None or existing.expires_at > record.updated_at:
                    raise self._sql_exists(sid)
                for statement in st.delete_sessions(t, ns, [sid]):
                    conn.execute(statement)
            conn.execute(st.insert_session(t, ns, record))
            self._sql_insert(conn, sid, 0, record.messages)
            if record.checkpoints:
                conn.execute(*st.insert_checkpoints(t, ns, sid, record.checkpoints))

        try:
            self._sql_tx(f"create session {sid!r}", work, write=True)
        except ConflictError:
            # Also a concurrent create of the same id (the primary key refused the insert).
            raise self._sql_exists(sid) from None

    def _sql_exists(self, session_id: str) -> ConflictError:
        return ConflictError(
            f"session {session_id!r} already exists in {self.url}; "
            "load it, or create one with another id"
        )

    def _fetch(self, session_id: str, last: int | None) -> SessionRecord | None:
        t, ns = self.tables, self.namespace

        def work(conn: sa.Connection) -> SessionRecord | None:
            row = conn.execute(st.select_session(t), st.key(ns, session_id, time.time())).first()
            if row is None:
                return None
            count = row.message_count
            start = 0 if last is None else max(0, count - last)
            record = _record(row, self._sql_bodies(conn, session_id, start, count))
            if last is not None:
                record.message_count = count
            return record

        return self._sql_tx(f"load session {session_id!r}", work, write=False)

    def _apply(self, session_id: str, change: Change, now: float) -> int:
        t, ns = self.tables, self.namespace
        appended = len(change.append)
        edits_metadata = bool(
            change.set_metadata or change.unset_metadata or change.replace_metadata
        )

        def work(conn: sa.Connection) -> int:
            if self._bump_by_variables and appended and not edits_metadata:
                return self._sql_append_mariadb(conn, session_id, change, now)
            if self._update_returning and not edits_metadata:
                params = st.key(ns, session_id, now) | {"p_appended": appended}
                if change.expected_version is not None:
                    params["p_expected"] = change.expected_version
                if change.ttl is not None:
                    params |= {"p_ttl": change.ttl, "p_expires": now + change.ttl}
                statement = st.bump_session(
                    t,
                    check_version=change.expected_version is not None,
                    new_ttl=change.ttl is not None,
                )
                bumped = conn.execute(statement, params).first()
                if bumped is None:
                    row = self._sql_locked(conn, session_id, now)  # SessionNotFound if absent
                    self._sql_check_version(session_id, row.version, change.expected_version)
                    raise AssertionError("unreachable: the row was live and current")
                version, count = bumped
            else:
                row = self._sql_locked(conn, session_id, now)
                self._sql_check_version(session_id, row.version, change.expected_version)
                version, count = row.version + 1, row.message_count + appended
                values: dict[str, Any] = {"version": version, "message_count": count}
                values |= st.touch(now, row.ttl if change.ttl is None else change.ttl)
                if edits_metadata:
                    values["metadata"] = change.apply_metadata(_metadata(row))
                conn.execute(st.update_session(t, ns, session_id, **values))
            self._sql_insert(conn, session_id, count - appended, change.append)
            return int(version)

        return self._sql_tx(f"write to session {session_id!r}", work, write=True)

    def _sql_append_mariadb(
        self, conn: sa.Connection, session_id: str, change: Change, now: float
    ) -> int:
        """An append in two statements where UPDATE … RETURNING is missing: the UPDATE that
        locks and advances the row leaves its values in session variables for the INSERT."""
        t, ns = self.tables, self.namespace
        appended = len(change.append)
        params = st.key(ns, session_id, now) | {"p_appended": appended}
        if change.expected_version is not None:
            params["p_expected"] = change.expected_version
        if change.ttl is not None:
            params |= {"p_ttl": change.ttl, "p_expires": now + change.ttl}
        statement = st.bump_session(
            t,
            check_version=change.expected_version is not None,
            new_ttl=change.ttl is not None,
            variables=True,
        )
        if conn.execute(statement, params).rowcount != 1:
            row = self._sql_locked(conn, session_id, now)  # SessionNotFound if absent
            self._sql_check_version(session_id, row.version, change.expected_version)
            raise AssertionError("unreachable: the row was live and current")
        rows = [
            {"p_namespace": ns, "p_session_id": session_id, "p_back": appended - i, "p_body": b}
            for i, b in enumerate(dumps(m) for m in change.append)
        ]
        versions = conn.execute(st.insert_messages_after_bump(t), rows).scalars().all()
        return int(versions[0])

    def _replace(self, record: SessionRecord, expected_version: int, now: float) -> int:
        t, ns, sid = self.tables, self.namespace, record.session_id

        def work(conn: sa.Connection) -> int:
            row = self._sql_locked(conn, sid, now)
            self._sql_check_version(sid, row.version, expected_version)
            current = self._sql_bodies(conn, sid, 0, row.message_count)
            keep = common_prefix(current, record.messages)
            self._sql_rewrite(conn, sid, current, keep, record.messages)
            values: dict[str, Any] = {
                "version": row.version + 1,
                "message_count": len(record.messages),
                "metadata": dict(record.metadata),
            }
            values |= st.touch(now, row.ttl if record.ttl is None else record.ttl)
            conn.execute(st.update_session(t, ns, sid, **values))
            return int(row.version) + 1

        return self._sql_tx(f"save session {sid!r}", work, write=True)

    def _delete(self, session_id: str) -> bool:
        t, ns = self.tables, self.namespace

        def work(conn: sa.Connection) -> bool:
            row = conn.execute(st.select_expiry(t, ns, session_id, lock=True)).first()
            if row is None:
                return False
            for statement in st.delete_sessions(t, ns, [session_id]):
                conn.execute(statement)
            return row.expires_at is None or row.expires_at > time.time()

        return self._sql_tx(f"delete session {session_id!r}", work, write=True)

    def _list(
        self, user_id: str | None, limit: int, after: tuple[float, str] | None, now: float
    ) -> Sequence[SessionRecord]:
        query = st.list_sessions(self.tables, self.namespace, user_id, limit, after, now)

        def work(conn: sa.Connection) -> list[SessionRecord]:
            records = []
            for row in conn.execute(query):
                record = _record(row, [])
                record.message_count = row.message_count
                records.append(record)
            return records

        return self._sql_tx("list sessions", work, write=False)

    def _purge(self, now: float) -> int:
        t, ns = self.tables, self.namespace

        def work(conn: sa.Connection) -> int:
            ids = list(conn.execute(st.select_expired(t, ns, now, PURGE_BATCH)).scalars())
            if ids:
                for statement in st.delete_sessions(t, ns, ids):
                    conn.execute(statement)
            return len(ids)

        total = 0
        while True:
            deleted = self._sql_tx("purge expired sessions", work, write=True)
            total += deleted
            if deleted < PURGE_BATCH:
                return total

    def _pop(self, session_id: str, count: int, now: float) -> list[Message]:
        t, ns = self.tables, self.namespace

        def work(conn: sa.Connection) -> list[Message]:
            row = self._sql_locked(conn, session_id, now)
            total = int(row.message_count)
            keep = max(0, total - count)
            if keep == total:
                return []
            # The whole log only when a checkpoint needs a copy of it; else just the tail.
            if conn.execute(st.select_pointers_past(t, ns, session_id, keep)).first():
                current = self._sql_bodies(conn, session_id, 0, total)
            else:
                current = [{}] * keep + self._sql_bodies(conn, session_id, keep, total)
            self._sql_rewrite(conn, session_id, current, keep, None)
            removed = current[keep:]
            values: dict[str, Any] = {"version": row.version + 1, "message_count": keep}
            values |= st.touch(now, row.ttl)
            conn.execute(st.update_session(t, ns, session_id, **values))
            return removed

        return self._sql_tx(f"remove messages of session {session_id!r}", work, write=True)

    def _checkpoint(self, session_id: str, label: str | None, now: float) -> int:
        t, ns = self.tables, self.namespace

        def work(conn: sa.Connection) -> int:
            row = self._sql_locked(conn, session_id, now)
            number = int(conn.execute(st.next_checkpoint_number(t, ns, session_id)).scalar_one())
            pointer = CheckpointRecord(number, now, row.message_count, _metadata(row), label)
            conn.execute(*st.insert_checkpoints(t, ns, session_id, [pointer]))
            conn.execute(st.update_session(t, ns, session_id, version=row.version + 1))
            return number

        return self._sql_tx(f"checkpoint session {session_id!r}", work, write=True)

    def _checkpoints(self, session_id: str, now: float) -> Sequence[CheckpointRecord] | None:
        t, ns = self.tables, self.namespace

        def work(conn: sa.Connection) -> list[CheckpointRecord] | None:
            if conn.execute(st.select_session(t), st.key(ns, session_id, now)).first() is None:
                return None
            return [
                CheckpointRecord(
                    number=row.number,
                    created_at=row.created_at,
                    message_count=row.message_count,
                    metadata=_metadata(row),
                    label=row.label,
                )
                for row in conn.execute(st.select_checkpoints(t, ns, session_id))
            ]

        return self._sql_tx(f"list checkpoints of {session_id!r}", work, write=False)

    def _checkpoint_state(self, session_id: str, number: int, now: float) -> CheckpointState:
        t, ns = self.tables, self.namespace

        def work(conn: sa.Connection) -> CheckpointState:
            self._sql_require_live(conn, session_id, now)
            found = conn.execute(st.select_checkpoint(t, ns, session_id, number)).first()
            if found is None:
                raise CheckpointNotFound(session_id, number)
            if found.messages is None:
                messages = self._sql_bodies(conn, session_id, 0, found.message_count)
            else:
                messages = loads(found.messages, f"checkpoint {number} of {session_id!r}")
            return messages, _metadata(found)

        return self._sql_tx(f"read checkpoint {number} of {session_id!r}", work, write=False)

    def _sql_require_live(self, conn: sa.Connection, session_id: str, now: float) -> sa.Row[Any]:
        row = conn.execute(
            st.select_session(self.tables), st.key(self.namespace, session_id, now)
        ).first()
        if row is None:
            raise SessionNotFound(session_id, self.url)
        return row

    def _restore(self, session_id: str, number: int, now: float) -> int:
        t, ns = self.tables, self.namespace

        def work(conn: sa.Connection) -> int:
            row = self._sql_locked(conn, session_id, now)
            target = conn.execute(st.select_checkpoint(t, ns, session_id, number)).first()
            if target is None:
                raise CheckpointNotFound(session_id, number)
            label = f"before restore to {number}"
            mark = int(conn.execute(st.next_checkpoint_number(t, ns, session_id)).scalar_one())
            before = CheckpointRecord(mark, now, row.message_count, _metadata(row), label)
            conn.execute(*st.insert_checkpoints(t, ns, session_id, [before]))
            current = self._sql_bodies(conn, session_id, 0, row.message_count)
            restored: list[Message] | None
            if target.messages is None:
                keep = count = int(target.message_count)
                restored = None
            else:
                restored = loads(target.messages, f"checkpoint {number} of {session_id!r}")
                keep, count = common_prefix(current, restored), len(restored)
            self._sql_rewrite(conn, session_id, current, keep, restored)
            values: dict[str, Any] = {
                "version": row.version + 1,
                "message_count": count,
                "metadata": _metadata(target),
            }
            values |= st.touch(now, row.ttl)
            conn.execute(st.update_session(t, ns, session_id, **values))
            return int(row.version) + 1

        return self._sql_tx(f"restore session {session_id!r}", work, write=True)


def _metadata(row: sa.Row[Any]) -> dict[str, Any]:
    value = loads(row.metadata, "stored metadata")
    if not isinstance(value, dict):
        raise CorruptSessionError(f"stored metadata is a {type(value).__name__}, not an object")
    return value


def _record(row: sa.Row[Any], messages: list[Message]) -> SessionRecord:
    return SessionRecord(
        session_id=row.session_id,
        kind=row.kind,
        messages=messages,
        metadata=_metadata(row),
        version=row.version,
        created_at=row.created_at,
        updated_at=row.updated_at,
        ttl=row.ttl,
        expires_at=row.expires_at,
    )


def _flag(value: object, name: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ConfigurationError(f"option {name}={value!r} is not a boolean; use true or false")


def _count(value: object, name: str) -> int:
    try:
        number = int(str(value))
    except ValueError:
        number = 0
    if number < 1:
        raise ConfigurationError(f"option {name}={value!r} must be a whole number >= 1")
    return number
