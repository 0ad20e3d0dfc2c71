"""A small versioned migration runner.

``<prefix>schema_version`` holds one row with the version of the tables. ``MIGRATIONS[n]``
takes the tables from version ``n`` to ``n + 1`` (``MIGRATIONS[0]`` creates version 1), so a
new database and an old one run the same steps. The runner holds a database-wide lock while it
looks and changes (an advisory lock on PostgreSQL, ``GET_LOCK`` on MySQL/MariaDB, the write
lock of ``BEGIN IMMEDIATE`` on SQLite): processes that open a fresh database at once wait for
the first instead of colliding. The async twin runs the same runner through
``AsyncConnection.run_sync`` (``upgrade_async``).
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Final

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from ailib.errors import ConfigurationError
from ailib.spi import loads
from ailib_store_sql.schema import LATEST, Tables, define, user_id_of

__all__ = ("MIGRATIONS", "read_version", "upgrade", "upgrade_async", "upgrade_on")

Migration = Callable[[sa.Connection, str], None]

_LOCK_WAIT_SECONDS = 60
_BACKFILL_BATCH = 500


def _create_v1(conn: sa.Connection, prefix: str) -> None:
    define(prefix, 1).metadata.create_all(conn)


def _add_user_id(conn: sa.Connection, prefix: str) -> None:
    """v1 → v2: a ``user_id`` column filled from each session's metadata, and its index."""
    v2 = define(prefix, 2)
    sessions = v2.sessions
    column = sa.schema.CreateColumn(sessions.c.user_id).compile(dialect=conn.dialect)
    table = conn.dialect.identifier_preparer.format_table(sessions)
    conn.exec_driver_sql(f"ALTER TABLE {table} ADD COLUMN {column}")
    (index,) = (i for i in sessions.indexes if i.name == f"ix_{prefix}sessions_user")
    index.create(conn)
    # Backfill in key order, a batch at a time; only rows that mention user_id need it.
    after: tuple[str, str] = ("", "")
    key = sa.tuple_(sessions.c.namespace, sessions.c.session_id)
    while True:
        rows = conn.execute(
            sa.select(sessions.c.namespace, sessions.c.session_id, sessions.c.metadata)
            .where(key > sa.tuple_(*after), sessions.c.metadata.contains('"user_id"'))
            .order_by(sessions.c.namespace, sessions.c.session_id)
            .limit(_BACKFILL_BATCH)
        ).all()
        if not rows:
            return
        for namespace, session_id, metadata in rows:
            user_id = user_id_of(loads(metadata, f"metadata of session {session_id!r}"))
            if user_id is not None:
                conn.execute(
                    sa.update(sessions)
                    .where(sessions.c.namespace == namespace, sessions.c.session_id == session_id)
                    .values(user_id=user_id)
                )
        after = (rows[-1][0], rows[-1][1])


def _add_ops(conn: sa.Connection, prefix: str) -> None:
    """v2 → v3: the op id table (existing sessions simply have no op ids recorded yet)."""
    define(prefix, 3).op_table.create(conn)


#: ``MIGRATIONS[n]`` upgrades version ``n`` to ``n + 1``.
MIGRATIONS: Final[tuple[Migration, ...]] = (_create_v1, _add_user_id, _add_ops)
assert len(MIGRATIONS) == LATEST


def read_version(conn: sa.Connection, tables: Tables) -> int:
    """The schema version of the database, 0 when it has no tables yet."""
    if not sa.inspect(conn).has_table(tables.schema_version.name):
        return 0
    found = conn.execute(sa.select(tables.schema_version.c.version)).scalar()
    return int(found or 0)


def upgrade(engine: sa.Engine, tables: Tables, *, target: int = LATEST, create: bool = True) -> int:
    """Bring the tables to ``target``; return the version found before. With ``create``
    false, refuse (ConfigurationError) instead of changing anything."""
    with engine.connect() as conn:
        return upgrade_on(conn, tables, target=target, create=create)


async def upgrade_async(
    engine: AsyncEngine, tables: Tables, *, target: int = LATEST, create: bool = True
) -> int:
    """``upgrade`` for an asyncio engine: the same runner, on the sync face of an
    ``AsyncConnection`` (``run_sync``), so the event loop never waits on it."""
    async with engine.connect() as conn:
        return await conn.run_sync(upgrade_on, tables, target=target, create=create)


def upgrade_on(
    conn: sa.Connection, tables: Tables, *, target: int = LATEST, create: bool = True
) -> int:
    """``upgrade`` on a connection not in a transaction (it runs its own)."""
    with _locked(conn, tables.prefix):
        found = read_version(conn, tables)
        if found > LATEST:
            raise ConfigurationError(
                f"the tables with prefix {tables.prefix!r} are at schema version {found}, "
                f"newer than this ailib-store-sql understands ({LATEST}); upgrade ailib-store-sql"
            )
        if found >= target:
            return found
        if not create:
            what = "do not exist" if found == 0 else f"are at schema version {found}"
            raise ConfigurationError(
                f"the ailib tables with prefix {tables.prefix!r} {what} and create=false "
                f"forbids creating or upgrading them (version {target} is needed); open the "
                "store once without create=false, or run ailib_store_sql.migrations.upgrade"
            )
        if found == 0:
            tables.schema_version.create(conn, checkfirst=True)
            conn.execute(sa.insert(tables.schema_version).values(id=1, version=0))
        for version in range(found, target):
            MIGRATIONS[version](conn, tables.prefix)
            conn.execute(sa.update(tables.schema_version).values(version=version + 1))
        return found


@contextmanager
def _locked(conn: sa.Connection, prefix: str) -> Iterator[None]:
    """A transaction of ``conn`` holding the migration lock of ``prefix``."""
    name = f"ailib-migrate-{prefix}"
    dialect = conn.dialect.name
    if dialect == "sqlite":
        # The store's SQLite engine starts write transactions with BEGIN IMMEDIATE.
        with conn.execution_options(ailib_write=True).begin():
            yield
    elif dialect == "postgresql":
        with conn.begin():
            key = zlib.crc32(name.encode()) - 2**31
            conn.execute(sa.select(sa.func.pg_advisory_xact_lock(key)))
            yield
    elif dialect in ("mysql", "mariadb"):
        # DDL commits implicitly on MySQL, so the lock is held by the connection instead.
        got = conn.execute(sa.select(sa.func.get_lock(name, _LOCK_WAIT_SECONDS))).scalar()
        conn.commit()
        if got != 1:
            raise ConfigurationError(
                f"another process held the migration lock {name!r} for over "
                f"{_LOCK_WAIT_SECONDS}s; check for a stuck ailib process and retry"
            )
        try:
            with conn.begin():
                yield
        finally:
            conn.execute(sa.select(sa.func.release_lock(name)))
            conn.commit()
    else:
        with conn.begin():
            yield
