"""The tables, as SQLAlchemy Core metadata, for every schema version.

One row per session, one row per message (keyed by its position ``seq``, so the log has a
single total order), one row per checkpoint. Everything is namespaced so several apps, and
the tests, can share one database. Timestamps are POSIX seconds in DOUBLE columns: they
compare exactly like the floats in :class:`ailib.spi.SessionRecord`, on every database.

``define(prefix, version)`` builds the shape of any version; the migrations create version 1
from it and then alter it step by step, so a database upgraded from 1 and a new one end up
with the same tables.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql

from ailib.errors import ConfigurationError

__all__ = ("LATEST", "OP_ID_LENGTH", "Tables", "check_prefix", "define", "op_key", "user_id_of")

#: The schema version this release writes; see ``migrations.MIGRATIONS``.
LATEST = 3

#: Longest namespace / session id (ids are at most 128 by ``ailib.ids``).
KEY_LENGTH = 128
#: Longest ``metadata["user_id"]`` kept in the indexed column; longer ones are not listed by
#: user (documented limit: an index on MySQL may hold at most 3072 bytes).
USER_ID_LENGTH = 255
#: Longest op id stored as given; longer ones (an app's idempotency key) are stored hashed.
OP_ID_LENGTH = 64

_PREFIX = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,31}")

# Keys compare byte-wise everywhere, like Python strings compare ids: "C" collation on
# PostgreSQL, utf8mb4_bin on MySQL/MariaDB (table default below), SQLite's BINARY default.
_Key = sa.String(KEY_LENGTH).with_variant(sa.String(KEY_LENGTH, collation="C"), "postgresql")
_Time: sa.Double[float] = sa.Double()
# JSON text; MySQL's TEXT stops at 64 KiB, so use LONGTEXT there.
_Json = sa.Text().with_variant(mysql.LONGTEXT(), "mysql", "mariadb")
_TABLE_OPTIONS: dict[str, Any] = {
    "mysql_engine": "InnoDB",
    "mysql_charset": "utf8mb4",
    "mysql_collate": "utf8mb4_bin",
    "mariadb_engine": "InnoDB",
    "mariadb_charset": "utf8mb4",
    "mariadb_collate": "utf8mb4_bin",
}


@dataclass(frozen=True)
class Tables:
    """The store's tables for one ``table_prefix``."""

    prefix: str
    version: int
    metadata: sa.MetaData
    sessions: sa.Table
    messages: sa.Table
    checkpoints: sa.Table
    schema_version: sa.Table
    #: v3: the op ids of the recent writes of each session, with the version each produced.
    ops: sa.Table | None = None

    @property
    def op_table(self) -> sa.Table:
        if self.ops is None:
            raise ConfigurationError(f"schema version {self.version} has no op id table")
        return self.ops


def check_prefix(prefix: str) -> str:
    if not isinstance(prefix, str) or not _PREFIX.fullmatch(prefix):
        raise ConfigurationError(
            f"invalid table_prefix {prefix!r}; use up to 32 letters, digits or '_', "
            "not starting with a digit (for example 'ailib_')"
        )
    return prefix


def define(prefix: str = "ailib_", version: int = LATEST) -> Tables:
    """The tables of schema ``version`` (1 … LATEST) named with ``prefix``."""
    check_prefix(prefix)
    if not 1 <= version <= LATEST:
        raise ValueError(f"no schema version {version}")
    md = sa.MetaData()
    session_columns: list[sa.schema.SchemaItem] = [
        sa.Column("namespace", _Key, primary_key=True),
        sa.Column("session_id", _Key, primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("metadata", _Json, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        # Messages in the log; also the ``seq`` the next appended message gets.
        sa.Column("message_count", sa.Integer, nullable=False),
        sa.Column("created_at", _Time, nullable=False),
        sa.Column("updated_at", _Time, nullable=False),
        sa.Column("ttl", _Time, nullable=True),
        sa.Column("expires_at", _Time, nullable=True),
        # Listing newest first (ties by id) and purging expired rows are index range scans.
        sa.Index(f"ix_{prefix}sessions_updated", "namespace", "updated_at", "session_id"),
        sa.Index(f"ix_{prefix}sessions_expires", "namespace", "expires_at"),
    ]
    if version >= 2:
        # v2: listing by user used to filter every session of the namespace in Python; the
        # user id is now a column of its own with an index in listing order.
        session_columns += [
            sa.Column("user_id", sa.String(USER_ID_LENGTH), nullable=True),
            sa.Index(
                f"ix_{prefix}sessions_user", "namespace", "user_id", "updated_at", "session_id"
            ),
        ]
    sessions = sa.Table(f"{prefix}sessions", md, *session_columns, **_TABLE_OPTIONS)
    messages = sa.Table(
        f"{prefix}messages",
        md,
        sa.Column("namespace", _Key, primary_key=True),
        sa.Column("session_id", _Key, primary_key=True),
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("body", _Json, nullable=False),
        **_TABLE_OPTIONS,
    )
    checkpoints = sa.Table(
        f"{prefix}checkpoints",
        md,
        sa.Column("namespace", _Key, primary_key=True),
        sa.Column("session_id", _Key, primary_key=True),
        sa.Column("number", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("label", sa.Text, nullable=True),
        sa.Column("created_at", _Time, nullable=False),
        # A pointer: the first ``message_count`` messages of the session's log...
        sa.Column("message_count", sa.Integer, nullable=False),
        sa.Column("metadata", _Json, nullable=False),
        # ...until a rewrite would break it; then its own copy of them lands here.
        sa.Column("messages", _Json, nullable=True),
        **_TABLE_OPTIONS,
    )
    schema_version = sa.Table(
        f"{prefix}schema_version",
        md,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("version", sa.Integer, nullable=False),
        **_TABLE_OPTIONS,
    )
    ops = None
    if version >= 3:
        # v3: a write whose reply was lost (or that an app retries with its idempotency key)
        # is looked up here by its op id instead of being applied twice.
        ops = sa.Table(
            f"{prefix}ops",
            md,
            sa.Column("namespace", _Key, primary_key=True),
            sa.Column("session_id", _Key, primary_key=True),
            sa.Column("op_id", _Key, primary_key=True),
            sa.Column("version", sa.Integer, nullable=False),
            # SQLite: one B-tree keyed by the primary key, not a rowid table plus an index.
            sqlite_with_rowid=False,
            **_TABLE_OPTIONS,
        )
    return Tables(prefix, version, md, sessions, messages, checkpoints, schema_version, ops)


def op_key(op_id: str) -> str:
    """The stored form of ``op_id``: itself, or a digest when it is longer than the column."""
    if len(op_id) <= OP_ID_LENGTH:
        return op_id
    return "sha256:" + hashlib.sha256(op_id.encode("utf-8", "surrogatepass")).hexdigest()[:57]


def user_id_of(metadata: object) -> str | None:
    """The ``user_id`` column's value for encoded ``metadata``: its ``user_id`` if that is a
    string short enough for the index, else NULL (such sessions are not listed by user)."""
    if not isinstance(metadata, dict):
        return None
    user_id = metadata.get("user_id")
    if isinstance(user_id, str) and len(user_id) <= USER_ID_LENGTH:
        return user_id
    return None
