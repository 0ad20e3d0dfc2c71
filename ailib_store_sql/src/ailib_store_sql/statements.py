"""Every statement the store runs, as SQLAlchemy Core constructs.

Pure functions of the tables and values, with no connection in sight, so the synchronous
store and an asyncio one run the very same SQL. Reads of sessions carry the liveness filter
(``expires_at`` NULL or in the future): an expired row is absent for every operation.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final, ParamSpec, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.mysql.pymysql import MySQLDialect_pymysql

from ailib.spi import CheckpointRecord, Message, SessionRecord, dumps
from ailib_store_sql.schema import Tables, user_id_of

__all__ = (
    "Batch",
    "append_batch",
    "append_in_one",
    "bump_session",
    "decode_label",
    "delete_sessions",
    "encode_label",
    "insert_checkpoints",
    "insert_messages",
    "insert_op",
    "insert_session",
    "is_prepared",
    "key",
    "list_params",
    "list_sessions",
    "live",
    "materialize_checkpoint",
    "message_rows",
    "next_checkpoint_number",
    "op_cutoff",
    "prepared",
    "select_bodies",
    "select_checkpoint",
    "select_checkpoints",
    "select_expired",
    "select_expiry",
    "select_log",
    "select_op",
    "select_pointers_past",
    "select_session",
    "touch",
    "trim_batch",
    "trim_ops",
    "truncate_log",
    "update_session",
)


P = ParamSpec("P")
S = TypeVar("S", bound=sa.Executable)

#: Ids of the statements built once per table set (they live in ``functools.cache``).
_PREPARED: set[int] = set()


def prepared(build: Callable[P, S]) -> Callable[P, S]:
    """Build the statement once per arguments, and mark it as prepared: ``direct`` runs
    such statements straight on the driver's cursor (sync store)."""
    cached = functools.cache(build)

    @functools.wraps(build)
    def once(*args: P.args, **kwargs: P.kwargs) -> S:
        statement = cached(*args, **kwargs)  # type: ignore[arg-type]
        _PREPARED.add(id(statement))
        return statement

    return once


def is_prepared(statement: sa.Executable) -> bool:
    return id(statement) in _PREPARED


def _key(table: sa.Table, namespace: str, session_id: str) -> sa.ColumnElement[bool]:
    return sa.and_(table.c.namespace == namespace, table.c.session_id == session_id)


def live(t: Tables, now: float) -> sa.ColumnElement[bool]:
    expires_at = t.sessions.c.expires_at
    return sa.or_(expires_at.is_(None), expires_at > now)


def _session_columns(t: Tables) -> list[sa.Column[Any]]:
    return [c for c in t.sessions.c if c.name not in ("namespace", "user_id")]


# -- sessions -------------------------------------------------------------------------------


@prepared
def select_session(t: Tables, *, lock: bool = False) -> sa.Select[Any]:
    """The live session row (params ``key(...)``); ``lock`` takes its row lock (FOR UPDATE; a
    no-op on SQLite, whose write transactions hold the database lock from BEGIN IMMEDIATE).
    Prepared once per table set, like every statement on the append and load paths."""
    s = t.sessions
    query = sa.select(*_session_columns(t)).where(
        s.c.namespace == sa.bindparam("p_namespace"),
        s.c.session_id == sa.bindparam("p_session_id"),
        sa.or_(s.c.expires_at.is_(None), s.c.expires_at > sa.bindparam("p_now", type_=sa.Double)),
    )
    return query.with_for_update() if lock else query


def key(namespace: str, session_id: str, now: float = 0.0) -> dict[str, Any]:
    """The parameters of the prepared statements: which session, and the time of liveness."""
    return {"p_namespace": namespace, "p_session_id": session_id, "p_now": now}


def select_expiry(
    t: Tables, namespace: str, session_id: str, *, lock: bool = False
) -> sa.Select[Any]:
    """The row's expiry whether or not it is live (to replace or delete an expired one)."""
    query = sa.select(t.sessions.c.expires_at).where(_key(t.sessions, namespace, session_id))
    return query.with_for_update() if lock else query


def insert_session(t: Tables, namespace: str, record: SessionRecord) -> sa.Insert:
    return sa.insert(t.sessions).values(
        namespace=namespace,
        session_id=record.session_id,
        kind=record.kind,
        metadata=dumps(record.metadata),
        user_id=user_id_of(record.metadata),
        version=record.version,
        message_count=len(record.messages),
        created_at=record.created_at,
        updated_at=record.updated_at,
        ttl=record.ttl,
        expires_at=record.expires_at,
    )


@prepared
def bump_session(
    t: Tables, *, check_version: bool, new_ttl: bool, variables: bool = False
) -> sa.Update:
    """Lock, check and advance a live session in one statement, returning the new
    ``version`` and ``message_count`` (no row: absent, expired or stale). Params: ``key``,
    ``p_appended``, and ``p_expected`` / ``p_ttl`` + ``p_expires`` as the flags say."""
    s = t.sessions
    condition = sa.and_(
        s.c.namespace == sa.bindparam("p_namespace"),
        s.c.session_id == sa.bindparam("p_session_id"),
        sa.or_(s.c.expires_at.is_(None), s.c.expires_at > sa.bindparam("p_now", type_=sa.Double)),
    )
    if check_version:
        condition = sa.and_(condition, s.c.version == sa.bindparam("p_expected", type_=sa.Integer))
    expiry: dict[str, Any]
    if new_ttl:
        expiry = {
            "ttl": sa.bindparam("p_ttl", type_=sa.Double),
            "expires_at": sa.bindparam("p_expires", type_=sa.Double),
        }
    else:
        # NULL ttl gives NULL: a session without a TTL never expires.
        expiry = {"expires_at": s.c.ttl + sa.bindparam("p_now", type_=sa.Double)}
    version = s.c.version + 1
    count = s.c.message_count + sa.bindparam("p_appended", type_=sa.Integer)
    if variables:
        # MariaDB has no UPDATE … RETURNING: the new values go to session variables, which
        # the INSERTs of ``append_batch`` read (and the op record returns) in the same
        # transaction.
        statement = sa.update(s).where(condition)
        return statement.values(
            version=_assign("@ailib_version", version),
            message_count=_assign("@ailib_count", count),
            updated_at=sa.bindparam("p_now", type_=sa.Double),
            **expiry,
        )
    return (
        sa.update(s)
        .where(condition)
        .values(
            version=version,
            message_count=count,
            updated_at=sa.bindparam("p_now", type_=sa.Double),
            **expiry,
        )
        .returning(s.c.version, s.c.message_count)
    )


def _assign(variable: str, value: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
    """MySQL ``(@variable := value)``."""
    return sa.literal_column(variable).op(":=", precedence=0)(value).self_group()


def update_session(t: Tables, namespace: str, session_id: str, **values: Any) -> sa.Update:
    """Set columns of a session row the caller has locked. ``metadata`` is given decoded and
    also sets ``user_id``."""
    if "metadata" in values:
        metadata = values["metadata"]
        values["metadata"] = dumps(metadata)
        values["user_id"] = user_id_of(metadata)
    return sa.update(t.sessions).where(_key(t.sessions, namespace, session_id)).values(**values)


def touch(now: float, ttl: float | None) -> dict[str, Any]:
    """``updated_at``/``ttl``/``expires_at`` values of a write at ``now`` leaving ``ttl``."""
    return {"updated_at": now, "ttl": ttl, "expires_at": None if ttl is None else now + ttl}


def delete_sessions(t: Tables, namespace: str, session_ids: Sequence[str]) -> list[sa.Delete]:
    """Delete sessions with their messages and checkpoints (session row first: it is the lock
    every writer of the session takes)."""
    return [
        sa.delete(table).where(
            table.c.namespace == namespace, table.c.session_id.in_(list(session_ids))
        )
        for table in (t.sessions, t.messages, t.checkpoints, t.op_table)
    ]


@prepared
def list_sessions(t: Tables, *, by_user: bool, after: bool) -> sa.Select[Any]:
    """Up to ``p_limit`` live sessions of ``p_namespace`` at ``p_now``, newest first, ties by
    id descending, [of ``p_user``,] [strictly after (``p_after_time``, ``p_after_id``)]: a
    range scan of the (namespace, [user_id,] updated_at, session_id) index."""
    s = t.sessions
    query = sa.select(*_session_columns(t)).where(
        s.c.namespace == sa.bindparam("p_namespace"),
        sa.or_(s.c.expires_at.is_(None), s.c.expires_at > sa.bindparam("p_now", type_=sa.Double)),
    )
    if by_user:
        query = query.where(s.c.user_id == sa.bindparam("p_user"))
        # MySQL and MariaDB pick the namespace's updated_at index for a rare user and filter
        # rows in table order; the user's own index is a range scan whatever the statistics.
        for dialect in ("mysql", "mariadb"):
            query = query.with_hint(
                s, f"FORCE INDEX (ix_{t.prefix}sessions_user)", dialect_name=dialect
            )
    if after:
        updated_at = sa.bindparam("p_after_time", type_=sa.Double)
        query = query.where(
            sa.or_(
                s.c.updated_at < updated_at,
                sa.and_(s.c.updated_at == updated_at, s.c.session_id < sa.bindparam("p_after_id")),
            )
        )
    return query.order_by(s.c.updated_at.desc(), s.c.session_id.desc()).limit(
        sa.bindparam("p_limit", type_=sa.Integer)
    )


def list_params(
    namespace: str, user_id: str | None, limit: int, after: tuple[float, str] | None, now: float
) -> dict[str, Any]:
    params: dict[str, Any] = {"p_namespace": namespace, "p_now": now, "p_limit": limit}
    if user_id is not None:
        params["p_user"] = user_id
    if after is not None:
        params["p_after_time"], params["p_after_id"] = after
    return params


def select_expired(t: Tables, namespace: str, now: float, batch: int) -> sa.Select[Any]:
    """Ids of up to ``batch`` expired sessions, locked (a scan of the expiry index)."""
    s = t.sessions
    return (
        sa.select(s.c.session_id)
        .where(s.c.namespace == namespace, s.c.expires_at <= now)
        .order_by(s.c.expires_at)
        .limit(batch)
        .with_for_update()
    )


# -- messages -------------------------------------------------------------------------------


@prepared
def insert_messages(t: Tables) -> sa.Insert:
    """One INSERT, run with the rows of ``message_rows`` (executemany)."""
    return sa.insert(t.messages)


def message_rows(
    namespace: str, session_id: str, start: int, bodies: Sequence[str]
) -> list[dict[str, Any]]:
    """Rows for the messages (JSON ``bodies``) at positions ``start``, ``start + 1``, …"""
    return [
        {"namespace": namespace, "session_id": session_id, "seq": start + i, "body": body}
        for i, body in enumerate(bodies)
    ]


@prepared
def select_bodies(t: Tables) -> sa.Select[Any]:
    """The JSON bodies of positions ``p_start`` to ``p_stop - 1`` of the session of ``key``,
    in order (a primary-key range scan)."""
    m = t.messages
    return (
        sa.select(m.c.body)
        .where(
            m.c.namespace == sa.bindparam("p_namespace"),
            m.c.session_id == sa.bindparam("p_session_id"),
            m.c.seq >= sa.bindparam("p_start", type_=sa.Integer),
            m.c.seq < sa.bindparam("p_stop", type_=sa.Integer),
        )
        .order_by(m.c.seq)
    )


def truncate_log(t: Tables, namespace: str, session_id: str, keep: int) -> sa.Delete:
    m = t.messages
    return sa.delete(m).where(_key(m, namespace, session_id), m.c.seq >= keep)


# -- checkpoints ----------------------------------------------------------------------------


def next_checkpoint_number(t: Tables, namespace: str, session_id: str) -> sa.Select[Any]:
    c = t.checkpoints
    return sa.select(sa.func.coalesce(sa.func.max(c.c.number), 0) + 1).where(
        _key(c, namespace, session_id)
    )


def insert_checkpoints(
    t: Tables, namespace: str, session_id: str, checkpoints: Sequence[CheckpointRecord]
) -> tuple[sa.Insert, list[dict[str, Any]]]:
    rows = [
        {
            "namespace": namespace,
            "session_id": session_id,
            "number": c.number,
            "label": encode_label(c.label),
            "created_at": c.created_at,
            "message_count": c.message_count,
            "metadata": dumps(c.metadata),
            "messages": None if c.messages is None else dumps(c.messages),
        }
        for c in checkpoints
    ]
    return sa.insert(t.checkpoints), rows


#: Marks a label stored as JSON text: PostgreSQL's text cannot hold NUL characters.
_JSON_LABEL = "\x1bjson:"


def encode_label(label: str | None) -> str | None:
    """``label`` as stored: itself, or JSON-encoded when it holds a NUL (or starts with
    the marker), so every database stores every label."""
    if label is None or ("\x00" not in label and not label.startswith(_JSON_LABEL)):
        return label
    return _JSON_LABEL + dumps(label)


def decode_label(stored: str | None) -> str | None:
    if stored is None or not stored.startswith(_JSON_LABEL):
        return stored
    label: str = json.loads(stored[len(_JSON_LABEL) :])
    return label


def select_checkpoints(t: Tables, namespace: str, session_id: str) -> sa.Select[Any]:
    """Every checkpoint of a session without its messages, oldest first."""
    c = t.checkpoints
    return (
        sa.select(c.c.number, c.c.created_at, c.c.message_count, c.c.metadata, c.c.label)
        .where(_key(c, namespace, session_id))
        .order_by(c.c.number)
    )


def select_checkpoint(t: Tables, namespace: str, session_id: str, number: int) -> sa.Select[Any]:
    c = t.checkpoints
    return sa.select(c.c.message_count, c.c.metadata, c.c.messages).where(
        _key(c, namespace, session_id), c.c.number == number
    )


def select_pointers_past(t: Tables, namespace: str, session_id: str, keep: int) -> sa.Select[Any]:
    """Pointer checkpoints reaching past ``keep``: a rewrite keeping ``keep`` breaks them."""
    c = t.checkpoints
    return sa.select(c.c.number, c.c.message_count).where(
        _key(c, namespace, session_id), c.c.messages.is_(None), c.c.message_count > keep
    )


def materialize_checkpoint(
    t: Tables, namespace: str, session_id: str, number: int, messages: Sequence[Message]
) -> sa.Update:
    c = t.checkpoints
    return (
        sa.update(c)
        .where(_key(c, namespace, session_id), c.c.number == number)
        .values(messages=dumps(list(messages)))
    )


@prepared
def select_log(t: Tables) -> sa.Select[Any]:
    """Positions and JSON bodies of the log of the session of ``key`` from ``p_start`` to its
    end, in order: a primary-key range scan that also shows rows a damaged count hides."""
    m = t.messages
    return (
        sa.select(m.c.seq, m.c.body)
        .where(
            m.c.namespace == sa.bindparam("p_namespace"),
            m.c.session_id == sa.bindparam("p_session_id"),
            m.c.seq >= sa.bindparam("p_start", type_=sa.Integer),
        )
        .order_by(m.c.seq)
    )


# -- op ids -----------------------------------------------------------------------------------


@prepared
def insert_op(t: Tables) -> sa.Insert:
    """Record op id ``p_op`` as having produced version ``p_version`` (the primary key
    refuses a second one: the transaction that tries is rolled back)."""
    return sa.insert(t.op_table).values(
        namespace=sa.bindparam("p_namespace"),
        session_id=sa.bindparam("p_session_id"),
        op_id=sa.bindparam("p_op"),
        version=sa.bindparam("p_version", type_=sa.Integer),
    )


@prepared
def select_op(t: Tables) -> sa.Select[Any]:
    """The version op id ``p_op`` produced in the session of ``key``, if it was applied."""
    o = t.op_table
    return sa.select(o.c.version).where(
        o.c.namespace == sa.bindparam("p_namespace"),
        o.c.session_id == sa.bindparam("p_session_id"),
        o.c.op_id == sa.bindparam("p_op"),
    )


@prepared
def op_cutoff(t: Tables, keep: int) -> sa.Select[Any]:
    """The version of the ``keep``-th newest op of a session (older ones may go)."""
    o = t.op_table
    return (
        sa.select(o.c.version)
        .where(
            o.c.namespace == sa.bindparam("p_namespace"),
            o.c.session_id == sa.bindparam("p_session_id"),
        )
        .order_by(o.c.version.desc())
        .limit(1)
        .offset(keep - 1)
    )


@prepared
def trim_ops(t: Tables) -> sa.Delete:
    o = t.op_table
    return sa.delete(o).where(
        o.c.namespace == sa.bindparam("p_namespace"),
        o.c.session_id == sa.bindparam("p_session_id"),
        o.c.version < sa.bindparam("p_cutoff", type_=sa.Integer),
    )


@prepared
def append_in_one(t: Tables, *, check_version: bool, new_ttl: bool) -> sa.Insert:
    """PostgreSQL: a whole append in one statement, so it needs no transaction of its own:
    ``bump_session`` and the op record as data-modifying CTEs, then the INSERT of the
    bodies (``p_bodies``, a text array) at ``seq = message_count - n …``, returning the new
    version once per row (no row: absent, expired or stale). A repeated ``p_op`` fails
    the whole statement on the op table's primary key."""
    o, m = t.op_table, t.messages
    namespace = sa.bindparam("p_namespace", type_=sa.String)
    session_id = sa.bindparam("p_session_id", type_=sa.String)
    appended = sa.bindparam("p_appended", type_=sa.Integer)
    bump = bump_session(t, check_version=check_version, new_ttl=new_ttl).cte("bump")
    op = (
        sa.insert(o)
        .from_select(
            ["namespace", "session_id", "op_id", "version"],
            sa.select(namespace, session_id, sa.bindparam("p_op", type_=sa.String), bump.c.version),
        )
        .returning(o.c.version)
        .cte("op")
    )
    bodies = (
        sa.func.unnest(sa.bindparam("p_bodies", type_=postgresql.ARRAY(sa.Text)))
        .table_valued("body", with_ordinality="ord")
        .render_derived()
    )
    rows = sa.select(
        namespace, session_id, bump.c.message_count - appended + bodies.c.ord - 1, bodies.c.body
    ).select_from(bump.join(bodies, sa.true()))
    return (
        sa.insert(m)
        .from_select(["namespace", "session_id", "seq", "body"], rows)
        .add_cte(op)
        .returning(sa.select(op.c.version).scalar_subquery())
    )


# -- MariaDB: statements sent as one batch ----------------------------------------------------

#: The SQL of a batch: MariaDB's, with ``%s`` placeholders, which PyMySQL and aiomysql alike
#: fill in client-side (escaped literals), so the sync store and its twin send the same text.
_BATCH_DIALECT: Final = MySQLDialect_pymysql(paramstyle="format", is_mariadb=True)
_REQUIRED: Final = object()


@dataclass(frozen=True)
class Batch:
    """Statements sent to MariaDB as one query, one round trip (the connections of
    ``mysql``/``mariadb`` URLs allow several statements per query). ``sql`` has a ``%s``
    placeholder per value of ``args``; the server runs the statements in order and stops at
    the first that fails. ``statements`` counts them (each has a result to read), and the
    rows of statement number ``rows_of`` (from 0) are the batch's result."""

    sql: str
    args: tuple[Any, ...]
    statements: int
    rows_of: int


@dataclass(frozen=True)
class _Piece:
    """One statement of a batch: its SQL, and for each placeholder the parameter's name or
    a constant (a literal the construct holds), with the type's converter if any."""

    sql: str
    slots: tuple[tuple[str, Any, Callable[[Any], Any] | None], ...]

    def args(self, params: dict[str, Any]) -> tuple[Any, ...]:
        out = []
        for name, constant, convert in self.slots:
            value = params[name] if constant is _REQUIRED else constant
            out.append(value if convert is None or value is None else convert(value))
        return tuple(out)


def _piece(statement: sa.Executable) -> _Piece:
    compiled: Any = statement.compile(dialect=_BATCH_DIALECT)  # type: ignore[attr-defined]
    processors = compiled._bind_processors
    slots = []
    for name in compiled.positiontup:
        bind = compiled.binds[name]
        constant = _REQUIRED if bind.required else bind.effective_value
        slots.append((name, constant, processors.get(name)))
    return _Piece(compiled.string, tuple(slots))


_VERSION: Final[sa.ColumnClause[Any]] = sa.literal_column("@ailib_version")
_COUNT: Final[sa.ColumnClause[Any]] = sa.literal_column("@ailib_count")


@functools.cache
def _append_pieces(t: Tables, check_version: bool, new_ttl: bool) -> tuple[_Piece, ...]:
    o, m = t.op_table, t.messages
    namespace: sa.BindParameter[str] = sa.bindparam("p_namespace")
    session_id: sa.BindParameter[str] = sa.bindparam("p_session_id")
    op = (
        sa.insert(o)
        .from_select(
            ["namespace", "session_id", "op_id", "version"],
            sa.select(namespace, session_id, sa.bindparam("p_op"), _VERSION).where(
                _VERSION.is_not(None)
            ),
        )
        .returning(o.c.version)
    )
    message = sa.insert(m).from_select(
        ["namespace", "session_id", "seq", "body"],
        sa.select(
            namespace,
            session_id,
            _COUNT - sa.bindparam("p_back", type_=sa.Integer),
            sa.bindparam("p_body"),
        ).where(_COUNT.is_not(None)),
    )
    bump = bump_session(t, check_version=check_version, new_ttl=new_ttl, variables=True)
    return _piece(bump), _piece(op), _piece(message)


def append_batch(
    t: Tables, params: dict[str, Any], bodies: Sequence[str], *, check_version: bool, new_ttl: bool
) -> Batch:
    """MariaDB: a whole append as one batch, its transaction included. ``bump_session``
    (``variables=True``) locks, checks and advances the live row, leaving the new version
    and count in ``@ailib_version`` / ``@ailib_count``, reset to NULL first; the op record
    and the bodies (JSON text, at ``seq = @ailib_count - n …``) are ``INSERT … SELECT …
    WHERE`` the variable is not NULL, so they write nothing when the UPDATE matched no row
    (absent, expired or stale); the result is the version the op record returns, no row
    then. A statement that fails (a repeated ``p_op`` on the op table's primary key, …)
    stops the batch before its ``COMMIT``: the caller rolls back. Params: those of
    ``bump_session`` and ``p_op``."""
    bump, op, message = _append_pieces(t, check_version, new_ttl)
    n = len(bodies)
    args = bump.args(params) + op.args(params)
    for i, body in enumerate(bodies):
        args += message.args(params | {"p_back": n - i, "p_body": body})
    sql = ";\n".join(
        [
            "START TRANSACTION",
            "SET @ailib_version = NULL, @ailib_count = NULL",
            bump.sql,
            op.sql,
            *[message.sql] * n,
            "COMMIT",
        ]
    )
    return Batch(sql, args, statements=n + 5, rows_of=3)


@functools.cache
def _trim_piece(t: Tables, keep: int) -> _Piece:
    o = t.op_table
    cutoff = op_cutoff(t, keep).subquery()
    return _piece(
        sa.delete(o).where(
            o.c.namespace == sa.bindparam("p_namespace"),
            o.c.session_id == sa.bindparam("p_session_id"),
            o.c.version < sa.select(cutoff.c.version).scalar_subquery(),
        )
    )


def trim_batch(t: Tables, params: dict[str, Any], keep: int) -> Batch:
    """MariaDB: drop all but the newest ``keep`` op ids of the session of ``key`` in one
    batch, its transaction included (``op_cutoff`` and ``trim_ops`` as one DELETE)."""
    trim = _trim_piece(t, keep)
    sql = ";\n".join(["START TRANSACTION", trim.sql, "COMMIT"])
    return Batch(sql, trim.args(params), statements=3, rows_of=-1)
