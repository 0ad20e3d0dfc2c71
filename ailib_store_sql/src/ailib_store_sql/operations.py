"""Every store operation once, free of connections: the sync store and its async twin both
run these (this module is their ``ailib.spi.Programs``).

Each store operation (``create``, ``apply``, …, with the arguments of the ``BaseStore``
operation of the same name) is a generator that yields the transactions it needs, each an
``Operation``, and is sent back each one's result; the store performs an ``Operation``
with its retries and error translation (``transaction``). Most operations are one
transaction; ``purge`` is one per batch.

An ``Operation``'s ``program`` is a generator that yields ``(statement, parameters)`` (the
statements of ``statements``) and is sent back each one's result, deciding from the rows what
to run next and what to return. ``SQLStore`` feeds it from a ``Connection`` (with
``ailib.spi.drive``), and so does ``AsyncSQLStore`` on SQLite, in a worker thread; on the
other databases the twin feeds it from an ``AsyncConnection`` (``drive_async``), whose
results arrive buffered, so a program reads both with the same calls. Each store only adds
the transaction around it (retries, error translation), so the two cannot drift apart on
what an operation does.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from typing import Any, Final, Generic, NoReturn, TypeAlias, TypeVar

import sqlalchemy as sa

from ailib.errors import CheckpointNotFound, ConflictError, CorruptSessionError, SessionNotFound
from ailib.spi import (
    Change,
    CheckpointRecord,
    CheckpointState,
    Message,
    SessionRecord,
    common_prefix,
    dumps,
    loads,
)
from ailib_store_sql import statements as st
from ailib_store_sql.direct import Rows
from ailib_store_sql.schema import Tables, op_key

__all__ = (
    "BATCH_CHARS",
    "PURGE_BATCH",
    "Context",
    "Operation",
    "Program",
    "Transactions",
    "apply",
    "checkpoint",
    "checkpoint_state",
    "checkpoints",
    "create",
    "delete",
    "fetch",
    "list_page",
    "op_of",
    "pop",
    "purge",
    "replace",
    "restore",
)

T = TypeVar("T")

#: One statement to execute: a Core construct and its parameters (a list: executemany); or
#: a MariaDB ``statements.Batch`` (parameters None), whose result holds the rows it returns.
Step = tuple[sa.Executable | st.Batch, Any]
#: An operation's logic: yields steps, receives their results, returns the outcome.
Program = Generator[Step, sa.CursorResult[Any], T]

#: Sessions deleted per transaction by ``purge_expired``.
PURGE_BATCH: Final = 500
#: Op ids each session keeps at least (and at most twice as many).
OPS_KEPT: Final = 256
#: MariaDB: the most characters of message text an append sends as one batch.
BATCH_CHARS: Final = 1 << 20

log = logging.getLogger("ailib.sql")


@dataclass(frozen=True)
class Context:
    """What a program needs to know about its store and database."""

    tables: Tables
    namespace: str
    #: The masked URL, for messages.
    url: str
    #: UPDATE … RETURNING works (PostgreSQL, SQLite >= 3.35): appends lock and advance the
    #: session row in one statement.
    update_returning: bool
    #: PostgreSQL: an append is one statement (``statements.append_in_one``), run without
    #: a transaction of its own.
    append_in_one: bool = False
    #: MariaDB: an append is one batch of statements, its transaction included
    #: (``statements.append_batch``): one round trip.
    append_batch: bool = False

    @classmethod
    def of(cls, tables: Tables, namespace: str, url: str, dialect: sa.Dialect) -> Context:
        """The context for a connected ``dialect`` (SQLite's features depend on its library)."""
        return cls(
            tables,
            namespace,
            url,
            update_returning=bool(dialect.update_returning),
            append_in_one=dialect.name == "postgresql",
            # INSERT … SELECT … RETURNING: MariaDB 10.5 and later.
            append_batch=bool(getattr(dialect, "is_mariadb", False) and dialect.insert_returning),
        )


@dataclass(frozen=True)
class Operation(Generic[T]):
    """A program to run in one transaction, and how to speak of it in errors."""

    #: "load session 'x'": completes "the database failed to …".
    what: str
    #: A write (SQLite: BEGIN IMMEDIATE) or a read (PostgreSQL: REPEATABLE READ).
    write: bool
    #: A fresh program for each attempt (deadlock victims are retried).
    program: Callable[[], Program[T]]
    #: The ConflictError message for a constraint violation (a concurrent create).
    conflict: str | None = None
    #: A write that carries an op id: a read program returning what an earlier attempt of
    #: it produced, None if none landed (after a lost reply, or a repeated op id).
    recover: Callable[[], Program[T | None]] | None = None
    #: Atomic without a transaction: its change is one statement (whatever else it runs
    #: only reads, or trims op ids), so it may run in autocommit mode; or (MariaDB) one
    #: batch that begins and commits its own transaction (``statements.Batch``), so it runs
    #: on a connection SQLAlchemy does not begin.
    single: bool = False


#: A store operation: yields the transactions it runs (each an ``Operation``), is sent back
#: each one's result, returns the operation's outcome.
Transactions: TypeAlias = Generator[Operation[Any], Any, T]


# -- pieces shared by several operations ----------------------------------------------------


def _bodies(
    c: Context, session_id: str, start: int, stop: int, *, whole: bool = True
) -> Program[list[Message]]:
    """Messages ``start`` to ``stop - 1`` of the log, checked: every position there once
    and, when ``stop`` is the session's count (``whole``), nothing past it; anything else
    is a CorruptSessionError naming the session."""
    if start >= stop:
        return []
    params = st.key(c.namespace, session_id) | {"p_start": start, "p_stop": stop}
    rows = yield (st.select_log(c.tables) if whole else st.select_bodies(c.tables)), params
    if whole:
        found: Sequence[Any] = rows.plain() if isinstance(rows, Rows) else rows.all()
        bodies = [row[1] for row in found]
        # Positions are unique and ordered (the primary key): the right count, first and
        # last mean no gap and nothing past the end.
        if len(found) != stop - start or found[0][0] != start or found[-1][0] != stop - 1:
            _broken_log(c, session_id, start, stop, [row[0] for row in found])
    else:
        bodies = list(rows.scalars())
        if len(bodies) != stop - start:
            _broken_log(c, session_id, start, stop, list(range(start, start + len(bodies))))
    try:
        return [json.loads(body) for body in bodies]
    except (TypeError, ValueError):
        for i, body in enumerate(bodies):
            loads(body, f"message {start + i} of session {session_id!r} in {c.url}")
        raise


def _broken_log(c: Context, session_id: str, start: int, stop: int, seqs: list[int]) -> NoReturn:
    missing = sorted(set(range(start, stop)) - set(seqs))
    extra = [seq for seq in seqs if seq >= stop]
    if missing:
        shown = ", ".join(map(str, missing[:10])) + (", …" if len(missing) > 10 else "")
        what = f"message(s) {shown} of the {stop} its session row counts are missing"
    else:
        shown = ", ".join(map(str, extra[:10])) + (", …" if len(extra) > 10 else "")
        what = f"its log holds message(s) {shown} past the {stop} its session row counts"
    raise CorruptSessionError(
        f"session {session_id!r} in {c.url} is damaged: {what}; restore it from a checkpoint "
        "or a backup, or delete it"
    )


def _live(c: Context, session_id: str, now: float, *, lock: bool) -> Program[sa.Row[Any]]:
    """The live session row (locked for a write); SessionNotFound if there is none."""
    found = yield st.select_session(c.tables, lock=lock), st.key(c.namespace, session_id, now)
    row = found.first()
    if row is None:
        raise SessionNotFound(session_id, c.url)
    return row


def _check_version(c: Context, session_id: str, version: int, expected: int | None) -> None:
    if expected is not None and version != expected:
        raise ConflictError(
            f"session {session_id!r} in {c.url} is at version {version}, not "
            f"{expected}: someone else changed it; reload and try again"
        )


def _insert(
    c: Context,
    session_id: str,
    start: int,
    messages: Sequence[Message],
    bodies: Sequence[str] = (),
) -> Program[None]:
    """Insert ``messages`` at ``start``; ``bodies``, when given, are their JSON already."""
    if messages:
        encoded = bodies or [dumps(m) for m in messages]
        yield st.insert_messages(c.tables), st.message_rows(c.namespace, session_id, start, encoded)


def _rewrite(
    c: Context,
    session_id: str,
    current: Sequence[Message],
    keep: int,
    new: Sequence[Message] | None,
) -> Program[None]:
    """Keep the first ``keep`` messages of the log and append ``new[keep:]``, giving every
    pointer checkpoint the rewrite breaks its own copy first (copy-on-write)."""
    t, ns = c.tables, c.namespace
    pointers = yield st.select_pointers_past(t, ns, session_id, keep), None
    for row in pointers.all():
        copy = current[: row.message_count]
        yield st.materialize_checkpoint(t, ns, session_id, row.number, copy), None
    yield st.truncate_log(t, ns, session_id, keep), None
    if new is not None:
        yield from _insert(c, session_id, keep, new[keep:])


def _update(c: Context, session_id: str, **values: Any) -> Step:
    return st.update_session(c.tables, c.namespace, session_id, **values), None


def _stale_or_absent(
    c: Context, session_id: str, expected: int | None, now: float, op: str | None = None
) -> Program[int]:
    """After a conditional write touched no row: the version an earlier attempt with op id
    ``op`` produced, else SessionNotFound or ConflictError."""
    found = yield from _not_applied(c, session_id, expected, now, op)
    if found is None:
        raise AssertionError("unreachable: the row was live and current")
    return found


def _not_applied(
    c: Context, session_id: str, expected: int | None, now: float, op: str | None
) -> Program[int | None]:
    """``_stale_or_absent``, in a transaction of its own: None when the row is live and
    current by now (created, or restored, since the write looked)."""
    if op is not None:
        landed = yield from _landed(c, session_id, op)
        if landed is not None:
            return landed
    row = yield from _live(c, session_id, now, lock=True)
    _check_version(c, session_id, row.version, expected)
    return None


def _landed(c: Context, session_id: str, op: str) -> Program[int | None]:
    """The version op id ``op`` produced in the session, None if it was not applied."""
    found = yield st.select_op(c.tables), st.key(c.namespace, session_id) | {"p_op": op}
    version = found.scalar()
    return None if version is None else int(version)


def _record_op(c: Context, session_id: str, op: str, version: int) -> Program[None]:
    """Record that ``op`` produced ``version``."""
    params = st.key(c.namespace, session_id) | {"p_op": op, "p_version": version}
    yield st.insert_op(c.tables), params


def _trim_ops(c: Context, session_id: str, version: int) -> Program[None]:
    """Every ``OPS_KEPT``-th version, drop all but the newest ``OPS_KEPT`` ops of the
    session."""
    if version % OPS_KEPT == 0:
        params = st.key(c.namespace, session_id)
        cutoff = (yield st.op_cutoff(c.tables, OPS_KEPT), params).scalar()
        if cutoff is not None:
            yield st.trim_ops(c.tables), params | {"p_cutoff": cutoff}


# -- the operations (see ailib.spi.BaseStore for each contract) --------------------------


def create(c: Context, record: SessionRecord) -> Transactions[None]:
    t, ns, sid = c.tables, c.namespace, record.session_id
    exists = f"session {sid!r} already exists in {c.url}; load it, or create one with another id"

    def program() -> Program[None]:
        found = yield st.select_expiry(t, ns, sid), None
        existing = found.first()
        if existing is not None:
            if existing.expires_at is None or existing.expires_at > record.updated_at:
                raise ConflictError(exists)
            for statement in st.delete_sessions(t, ns, [sid]):
                yield statement, None
        yield st.insert_session(t, ns, record), None
        yield from _insert(c, sid, 0, record.messages)
        if record.checkpoints:
            yield st.insert_checkpoints(t, ns, sid, record.checkpoints)

    # A concurrent create of the same id: the primary key refuses the insert.
    yield Operation(f"create session {sid!r}", True, program, conflict=exists)


def fetch(c: Context, session_id: str, last: int | None) -> Transactions[SessionRecord | None]:
    def program() -> Program[SessionRecord | None]:
        found = yield st.select_session(c.tables), st.key(c.namespace, session_id, time.time())
        row = found.first()
        if row is None:
            return None
        count = row.message_count
        start = 0 if last is None else max(0, count - last)
        record = _record(row, (yield from _bodies(c, session_id, start, count)), c)
        if last is not None:
            record.message_count = count
        return record

    done: SessionRecord | None = yield Operation(f"load session {session_id!r}", False, program)
    return done


def op_of(change: Change) -> str:
    """The stored op id of ``change``: the one the caller gave it (an idempotency key), or a
    fresh one, so a write whose reply is lost can be looked up before it is retried."""
    given = change.op_id
    return op_key(given) if given else uuid.uuid4().hex


def apply(c: Context, session_id: str, change: Change, now: float) -> Transactions[int]:
    """Append and/or edit metadata as op ``op_of(change)``: recorded with the version it
    produces in the same transaction; a repeated op is not applied again."""
    op = op_of(change)
    appended = len(change.append)
    edits_metadata = bool(change.set_metadata or change.unset_metadata or change.replace_metadata)
    expected = change.expected_version

    in_one = c.append_in_one and appended > 0 and not edits_metadata
    bodies: list[str] = []
    if c.append_batch and appended and not edits_metadata:
        bodies = [dumps(m) for m in change.append]
    # A batch is one query: a large append takes the general path (its INSERT of the
    # messages is split by the driver) rather than outgrow the server's max_allowed_packet.
    batched = bool(bodies) and sum(map(len, bodies)) <= BATCH_CHARS
    what = f"write to session {session_id!r}"

    def recover() -> Program[int | None]:
        return (yield from _landed(c, session_id, op))

    if batched:

        def not_applied() -> Program[int | None]:
            return (yield from _not_applied(c, session_id, expected, now, op))

        while True:
            applied: int | None = yield Operation(
                what,
                True,
                lambda: _append_batch(c, session_id, change, now, op, bodies),
                recover=recover,
                single=True,
            )
            if applied is not None:
                return applied
            # Nothing was written: the session is absent, expired or stale (SessionNotFound,
            # ConflictError), or the op landed before; or it was created since: again.
            found: int | None = yield Operation(what, True, not_applied)
            if found is not None:
                return found

    def program() -> Program[int]:
        if in_one:
            version = yield from _append_in_one(c, session_id, change, now, op)
            yield from _trim_ops(c, session_id, version)
            return version
        if c.update_returning and not edits_metadata:
            bumped = (yield _bump(c, session_id, change, now)).first()
            if bumped is None:
                return (yield from _stale_or_absent(c, session_id, expected, now, op))
            version, count = int(bumped.version), int(bumped.message_count)
        else:
            row = yield from _live(c, session_id, now, lock=True)
            if expected is not None and row.version != expected:
                return (yield from _stale_or_absent(c, session_id, expected, now, op))
            version, count = row.version + 1, row.message_count + appended
            values: dict[str, Any] = {"version": version, "message_count": count}
            values |= st.touch(now, row.ttl if change.ttl is None else change.ttl)
            if edits_metadata:
                values["metadata"] = change.apply_metadata(_metadata(row, c))
            yield _update(c, session_id, **values)
        yield from _record_op(c, session_id, op, version)
        yield from _insert(c, session_id, count - appended, change.append, bodies)
        yield from _trim_ops(c, session_id, version)
        return version

    done: int = yield Operation(what, True, program, recover=recover, single=in_one)
    return done


def _append_in_one(
    c: Context, session_id: str, change: Change, now: float, op: str
) -> Program[int]:
    params = _bump_params(c, session_id, change, now)
    statement = st.append_in_one(
        c.tables, check_version=change.expected_version is not None, new_ttl=change.ttl is not None
    )
    params |= {"p_op": op, "p_bodies": [dumps(m) for m in change.append]}
    inserted = (yield statement, params).first()
    if inserted is None:
        return (yield from _stale_or_absent(c, session_id, change.expected_version, now, op))
    return int(inserted[0])


def _bump_params(c: Context, session_id: str, change: Change, now: float) -> dict[str, Any]:
    params = st.key(c.namespace, session_id, now) | {"p_appended": len(change.append)}
    if change.expected_version is not None:
        params["p_expected"] = change.expected_version
    if change.ttl is not None:
        params |= {"p_ttl": change.ttl, "p_expires": now + change.ttl}
    return params


def _bump(c: Context, session_id: str, change: Change, now: float) -> Step:
    """The UPDATE that locks, checks and advances the row of an append."""
    params = _bump_params(c, session_id, change, now)
    statement = st.bump_session(
        c.tables,
        check_version=change.expected_version is not None,
        new_ttl=change.ttl is not None,
    )
    return statement, params


def _append_batch(
    c: Context, session_id: str, change: Change, now: float, op: str, bodies: list[str]
) -> Program[int | None]:
    """MariaDB: an append as one batch (``statements.append_batch``), and every
    ``OPS_KEPT``-th version a second one that trims the op ids; the new version, or None
    when the UPDATE matched no row (then nothing was written)."""
    batch = st.append_batch(
        c.tables,
        _bump_params(c, session_id, change, now) | {"p_op": op},
        bodies,
        check_version=change.expected_version is not None,
        new_ttl=change.ttl is not None,
    )
    version = (yield batch, None).scalar()
    if version is None:
        return None
    if version % OPS_KEPT == 0:
        yield st.trim_batch(c.tables, st.key(c.namespace, session_id), OPS_KEPT), None
    return int(version)


def replace(
    c: Context, record: SessionRecord, expected_version: int, now: float
) -> Transactions[int]:
    sid = record.session_id

    def program() -> Program[int]:
        row = yield from _live(c, sid, now, lock=True)
        _check_version(c, sid, row.version, expected_version)
        current = yield from _bodies(c, sid, 0, row.message_count)
        keep = common_prefix(current, record.messages)
        yield from _rewrite(c, sid, current, keep, record.messages)
        values: dict[str, Any] = {
            "version": row.version + 1,
            "message_count": len(record.messages),
            "metadata": dict(record.metadata),
        }
        values |= st.touch(now, row.ttl if record.ttl is None else record.ttl)
        yield _update(c, sid, **values)
        return int(row.version) + 1

    done: int = yield Operation(f"save session {sid!r}", True, program)
    return done


def delete(c: Context, session_id: str) -> Transactions[bool]:
    t, ns = c.tables, c.namespace

    def program() -> Program[bool]:
        row = (yield st.select_expiry(t, ns, session_id, lock=True), None).first()
        if row is None:
            return False
        for statement in st.delete_sessions(t, ns, [session_id]):
            yield statement, None
        return row.expires_at is None or row.expires_at > time.time()

    done: bool = yield Operation(f"delete session {session_id!r}", True, program)
    return done


def list_page(
    c: Context, user_id: str | None, limit: int, after: tuple[float, str] | None, now: float
) -> Transactions[list[SessionRecord]]:
    """Up to ``limit`` sessions; a row whose metadata does not decode is left out (and
    logged, naming it), and the page is filled up from the rows after it."""

    def program() -> Program[list[SessionRecord]]:
        records: list[SessionRecord] = []
        cursor = after
        while True:
            statement = st.list_sessions(
                c.tables, by_user=user_id is not None, after=cursor is not None
            )
            params = st.list_params(c.namespace, user_id, limit, cursor, now)
            rows = (yield statement, params).all()
            for row in rows:
                try:
                    record = _record(row, [], c)
                except CorruptSessionError as exc:
                    log.warning("listing leaves out a damaged session: %s", exc)
                    continue
                record.message_count = row.message_count
                records.append(record)
            if len(rows) < limit or len(records) >= limit:
                return records[:limit]
            cursor = (rows[-1].updated_at, rows[-1].session_id)

    done: list[SessionRecord] = yield Operation("list sessions", False, program)
    return done


def purge(c: Context, now: float) -> Transactions[int]:
    """Delete every session expired at ``now``, a batch per transaction (so none holds locks
    for long); returns how many."""
    total, more = 0, True
    while more:
        deleted, more = yield _purge_batch(c, now)
        total += deleted
    return total


def _purge_batch(c: Context, now: float) -> Operation[tuple[int, bool]]:
    """Delete up to ``PURGE_BATCH`` expired sessions; returns how many, and whether there may
    be more (each batch is a transaction of its own, so none holds locks for long)."""
    t, ns, batch = c.tables, c.namespace, PURGE_BATCH

    def program() -> Program[tuple[int, bool]]:
        ids = list((yield st.select_expired(t, ns, now, batch), None).scalars())
        if ids:
            for statement in st.delete_sessions(t, ns, ids):
                yield statement, None
        return len(ids), len(ids) >= batch

    return Operation("purge expired sessions", True, program)


def pop(c: Context, session_id: str, count: int, now: float) -> Transactions[list[Message]]:
    t, ns = c.tables, c.namespace

    def program() -> Program[list[Message]]:
        row = yield from _live(c, session_id, now, lock=True)
        total = int(row.message_count)
        keep = max(0, total - count)
        if keep == total:
            return []
        # The whole log only when a checkpoint needs a copy of it; else just the tail.
        if (yield st.select_pointers_past(t, ns, session_id, keep), None).first():
            current = yield from _bodies(c, session_id, 0, total)
        else:
            current = [{}] * keep + (yield from _bodies(c, session_id, keep, total))
        yield from _rewrite(c, session_id, current, keep, None)
        values: dict[str, Any] = {"version": row.version + 1, "message_count": keep}
        values |= st.touch(now, row.ttl)
        yield _update(c, session_id, **values)
        return current[keep:]

    done: list[Message] = yield Operation(
        f"remove messages of session {session_id!r}", True, program
    )
    return done


def checkpoint(c: Context, session_id: str, label: str | None, now: float) -> Transactions[int]:
    t, ns = c.tables, c.namespace

    def program() -> Program[int]:
        row = yield from _live(c, session_id, now, lock=True)
        number = int((yield st.next_checkpoint_number(t, ns, session_id), None).scalar_one())
        pointer = CheckpointRecord(number, now, row.message_count, _metadata(row, c), label)
        yield st.insert_checkpoints(t, ns, session_id, [pointer])
        yield _update(c, session_id, version=row.version + 1)
        return number

    done: int = yield Operation(f"checkpoint session {session_id!r}", True, program)
    return done


def checkpoints(
    c: Context, session_id: str, now: float
) -> Transactions[list[CheckpointRecord] | None]:
    def program() -> Program[list[CheckpointRecord] | None]:
        found = yield st.select_session(c.tables), st.key(c.namespace, session_id, now)
        if found.first() is None:
            return None
        rows = yield st.select_checkpoints(c.tables, c.namespace, session_id), None
        return [
            CheckpointRecord(
                number=row.number,
                created_at=row.created_at,
                message_count=row.message_count,
                metadata=_metadata(row, c, _of_checkpoint(c, session_id, row.number)),
                label=st.decode_label(row.label),
            )
            for row in rows
        ]

    done: list[CheckpointRecord] | None = yield Operation(
        f"list checkpoints of {session_id!r}", False, program
    )
    return done


def checkpoint_state(
    c: Context, session_id: str, number: int, now: float
) -> Transactions[CheckpointState]:
    def program() -> Program[CheckpointState]:
        yield from _live(c, session_id, now, lock=False)
        found = yield st.select_checkpoint(c.tables, c.namespace, session_id, number), None
        target = found.first()
        if target is None:
            raise CheckpointNotFound(session_id, number)
        if target.messages is None:
            messages = yield from _bodies(c, session_id, 0, target.message_count, whole=False)
        else:
            messages = loads(target.messages, _of_checkpoint(c, session_id, number, "messages"))
        return messages, _metadata(target, c, _of_checkpoint(c, session_id, number))

    done: CheckpointState = yield Operation(
        f"read checkpoint {number} of {session_id!r}", False, program
    )
    return done


def restore(c: Context, session_id: str, number: int, now: float) -> Transactions[int]:
    t, ns = c.tables, c.namespace

    def program() -> Program[int]:
        row = yield from _live(c, session_id, now, lock=True)
        target = (yield st.select_checkpoint(t, ns, session_id, number), None).first()
        if target is None:
            raise CheckpointNotFound(session_id, number)
        label = f"before restore to {number}"
        mark = int((yield st.next_checkpoint_number(t, ns, session_id), None).scalar_one())
        before = CheckpointRecord(mark, now, row.message_count, _metadata(row, c), label)
        yield st.insert_checkpoints(t, ns, session_id, [before])
        current = yield from _bodies(c, session_id, 0, row.message_count)
        restored: list[Message] | None
        if target.messages is None:
            keep = count = int(target.message_count)
            restored = None
        else:
            restored = loads(target.messages, _of_checkpoint(c, session_id, number, "messages"))
            keep, count = common_prefix(current, restored), len(restored)
        yield from _rewrite(c, session_id, current, keep, restored)
        values: dict[str, Any] = {
            "version": row.version + 1,
            "message_count": count,
            "metadata": _metadata(target, c, _of_checkpoint(c, session_id, number)),
        }
        values |= st.touch(now, row.ttl)
        yield _update(c, session_id, **values)
        return int(row.version) + 1

    done: int = yield Operation(f"restore session {session_id!r}", True, program)
    return done


# -- rows to records --------------------------------------------------------------------------


def _metadata(row: sa.Row[Any], c: Context, what: str = "") -> dict[str, Any]:
    """The decoded metadata of a session or checkpoint row; CorruptSessionError naming the
    session when it is not a JSON object."""
    where = what or f"the metadata of session {row.session_id!r} in {c.url}"
    value = loads(row.metadata, where)
    if not isinstance(value, dict):
        raise CorruptSessionError(f"{where} is a {type(value).__name__}, not a JSON object")
    return value


def _of_checkpoint(c: Context, session_id: str, number: int, part: str = "metadata") -> str:
    return f"the {part} of checkpoint {number} of session {session_id!r} in {c.url}"


def _record(row: sa.Row[Any], messages: list[Message], c: Context) -> SessionRecord:
    return SessionRecord(
        session_id=row.session_id,
        kind=row.kind,
        messages=messages,
        metadata=_metadata(row, c),
        version=row.version,
        created_at=row.created_at,
        updated_at=row.updated_at,
        ttl=row.ttl,
        expires_at=row.expires_at,
    )
