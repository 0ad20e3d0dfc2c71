"""From an ailib store URL to a configured SQLAlchemy engine.

ailib's own options (``namespace``, ``ttl``, ``table_prefix``, …) are consumed before the URL
reaches SQLAlchemy; the driver options listed in ``DRIVER_OPTIONS`` go through to it. A scheme
without a driver gets the one this distribution's extras install (psycopg 3, PyMySQL).

The async twin gets the same engine with the asyncio driver of the same database
(``async_url``): psycopg 3 in its asyncio mode, aiomysql. SQLite has no asyncio API (sqlite3
blocks, and aiosqlite is itself a thread per connection), so on SQLite the twin uses
``make_engines`` too and runs each operation whole in a worker thread (``in_threads``).

MySQL/MariaDB connections allow several statements in one query (the client flag
``MULTI_STATEMENTS``), which the MariaDB append sends as one batch (``statements.Batch``);
the drivers fill every parameter in client-side, escaped, so a batch takes parameters as
safely as one statement does.

SQLite needs care for concurrency: Python's sqlite3 module begins transactions lazily and never
for reads, so the engine takes over: every transaction starts with ``BEGIN`` (reads see one
snapshot), and write transactions with ``BEGIN IMMEDIATE``, which takes the write lock up front
so that concurrent writers queue on the busy timeout rather than fail when upgrading a lock.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Generic, Protocol, TypeVar

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import StaticPool

from ailib.errors import ConfigurationError, StoreUnavailable
from ailib.spi import StoreURL

__all__ = (
    "DRIVER_OPTIONS",
    "Engines",
    "async_url",
    "in_threads",
    "make_async_engines",
    "make_engines",
    "sqlalchemy_url",
)

E = TypeVar("E", sa.Engine, AsyncEngine)

#: Driver defaults for schemes given without ``+driver``.
_DEFAULT_DRIVERS: Final = {
    "sqlite": "sqlite",
    "postgresql": "postgresql+psycopg",
    "postgres": "postgresql+psycopg",
    "mysql": "mysql+pymysql",
    "mariadb": "mariadb+pymysql",
}
_EXTRAS: Final = {"postgresql": "postgresql", "mysql": "mysql", "mariadb": "mysql"}
#: The async twin's driver for each driver a URL may name (asyncio ones stay as they are).
_ASYNC_DRIVERS: Final = {
    "psycopg": "psycopg",
    "psycopg2": "psycopg",
    "psycopg_async": "psycopg_async",
    "asyncpg": "asyncpg",
    "pymysql": "aiomysql",
    "mysqldb": "aiomysql",
    "aiomysql": "aiomysql",
    "asyncmy": "asyncmy",
}
_ASYNC_BY_BACKEND: Final = {"mysql": "aiomysql", "mariadb": "aiomysql"}
#: PyMySQL options that aiomysql lacks.
_NOT_IN_AIOMYSQL: Final = frozenset({"read_timeout", "write_timeout", "ssl_verify_cert"})

#: Query options passed through to SQLAlchemy / the driver (the store accepts them in URLs).
DRIVER_OPTIONS: Final = frozenset(
    {
        # sqlite3
        "timeout",
        "uri",
        "mode",
        "cache",
        # libpq / psycopg
        "sslmode",
        "sslrootcert",
        "sslcert",
        "sslkey",
        "connect_timeout",
        "application_name",
        "options",
        "target_session_attrs",
        # PyMySQL
        "charset",
        "ssl_ca",
        "ssl_cert",
        "ssl_key",
        "ssl_verify_cert",
        "read_timeout",
        "write_timeout",
    }
)

#: How long a SQLite writer waits for the write lock before StoreUnavailable.
SQLITE_BUSY_TIMEOUT = 60.0


def sqlalchemy_url(url: StoreURL, driver_options: dict[str, str]) -> sa.URL:
    """The SQLAlchemy URL for ``url``, without ailib's options, with the password."""
    base = url.base_scheme
    if base not in _DEFAULT_DRIVERS:
        raise ConfigurationError(
            f"{url.render()} is not a SQL URL; use sqlite:///path.db, "
            "postgresql+psycopg://user@host/db or mysql+pymysql://user@host/db"
        )
    drivername = url.scheme if "+" in url.scheme else _DEFAULT_DRIVERS[base]
    if drivername.startswith("postgres+"):
        drivername = "postgresql" + drivername[len("postgres") :]
    if len(url.hosts) > 1:
        raise ConfigurationError(f"{url.render()} names several hosts; give one")
    database = url.path[1:] if url.path.startswith("/") else url.path
    return sa.URL.create(
        drivername,
        username=url.username,
        password=url.password,
        host=url.host,
        port=url.port,
        database=database or None,
        query=driver_options,
    )


@dataclass(frozen=True)
class Engines(Generic[E]):
    """One pool, seen three ways: for reads, for writes, and as configured."""

    engine: E
    reader: E
    writer: E
    #: An in-memory SQLite database: one connection that the store's callers share, so each
    #: transaction must hold the store's lock (a thread lock, or an asyncio one for the twin).
    shared_connection: bool
    #: SQLite: one writer at a time per database; the async twin queues its writers on an
    #: asyncio lock rather than in SQLite's busy handler, which sleeps in steps of up to 100 ms
    #: (and would hold a worker thread each).
    single_writer: bool = False
    #: The sync engines: prepared statements straight on the driver (``direct``).
    direct: bool = False
    #: PostgreSQL: the writer in autocommit mode, for operations that are one statement.
    autocommit: E | None = None
    #: MySQL/MariaDB: an operation that is one batch (``single``) begins and commits its own
    #: transaction, so it runs on a connection SQLAlchemy does not begin (whose ``COMMIT``
    #: would cost a round trip of its own).
    batches: bool = False

    def pick(self, *, write: bool, single: bool) -> E:
        """The engine for a transaction: the writer or the reader, or the autocommit writer
        for a write that is atomic as one statement (``single``)."""
        if single and self.autocommit is not None:
            return self.autocommit
        return self.writer if write else self.reader

    def unbegun(self, *, single: bool) -> bool:
        """Whether a transaction runs on a connection SQLAlchemy does not begin (``batches``)."""
        return single and self.batches


class MakeEngines(Protocol[E]):
    """``make_engines`` or ``make_async_engines``."""

    def __call__(
        self, target: sa.URL, masked: str, *, pool_size: int | None, pool_pre_ping: bool
    ) -> Engines[E]: ...


def make_engines(
    target: sa.URL, masked: str, *, pool_size: int | None, pool_pre_ping: bool
) -> Engines[sa.Engine]:
    """A configured engine for ``target``; ``masked`` names it in errors."""
    if in_threads(target):
        kwargs: dict[str, Any] = {"hide_parameters": True, "pool_pre_ping": pool_pre_ping}
        return _sqlite_engines(_sync_sqlite_url(target), masked, kwargs)
    return _configured(sa.create_engine, target, masked, pool_size, pool_pre_ping)


def in_threads(target: sa.URL) -> bool:
    """Whether the async twin runs ``target``'s operations in worker threads on
    ``make_engines``: SQLite, whose sqlite3 module has no asyncio API (aiosqlite would be a
    thread hop per statement plus SQLAlchemy's greenlet layer; one hop per operation is
    several times cheaper)."""
    return target.get_backend_name() == "sqlite"


def _sync_sqlite_url(target: sa.URL) -> sa.URL:
    """``sqlite+aiosqlite://`` (accepted by ``open_async_store`` before it ran SQLite in
    threads) means sqlite3."""
    if target.drivername == "sqlite+aiosqlite":
        return target.set(drivername="sqlite")
    return target


def make_async_engines(
    target: sa.URL, masked: str, *, pool_size: int | None, pool_pre_ping: bool
) -> Engines[AsyncEngine]:
    """The async twin's engine for ``target`` (a sync driver's URL: see ``async_url``),
    configured like ``make_engines``'s: same pool options and isolation. Not for SQLite
    (``in_threads``)."""
    return _configured(create_async_engine, async_url(target), masked, pool_size, pool_pre_ping)


def async_url(target: sa.URL) -> sa.URL:
    """``target`` with the asyncio driver of its database (psycopg serves both APIs)."""
    backend, _, driver = target.drivername.partition("+")
    if backend == "sqlite":
        raise ConfigurationError(
            "SQLite has no asyncio driver here: AsyncSQLStore runs SQLite operations in worker "
            "threads on make_engines' engine"
        )
    wanted = _ASYNC_DRIVERS.get(driver or _DEFAULT_DRIVERS[backend].partition("+")[2] or backend)
    if wanted is None:
        raise ConfigurationError(
            f"no asyncio driver for {target.drivername}://; use "
            f"{backend}+{_ASYNC_BY_BACKEND.get(backend, 'psycopg')}:// or a URL without +driver"
        )
    if wanted in ("aiomysql", "asyncmy"):
        refused = sorted(_NOT_IN_AIOMYSQL & set(target.query))
        if refused:
            raise ConfigurationError(
                f"option(s) {', '.join(refused)} of {target.drivername}:// have no equivalent in "
                f"the asyncio driver {wanted}; drop them for open_async_store"
            )
    return target.set(drivername=f"{backend}+{wanted}")


def _configured(
    factory: Callable[..., E], target: sa.URL, masked: str, pool_size: int | None, pre_ping: bool
) -> Engines[E]:
    kwargs: dict[str, Any] = {"hide_parameters": True, "pool_pre_ping": pre_ping}
    backend = target.get_backend_name()
    if pool_size is not None:
        kwargs["pool_size"] = pool_size
    mysql = backend in ("mysql", "mariadb")
    if mysql:
        kwargs["pool_recycle"] = 3600  # below MySQL's default wait_timeout of 8 hours
    # PyMySQL and aiomysql send ROLLBACK on every rollback() call, so the pool's reset on
    # return costs a round trip after every transaction, though ``engine.begin()`` has always
    # ended it (and a MariaDB append's batch its own); ``_rollback_if_open`` (and its asyncio
    # kin) rolls back only a connection the server reports in a transaction.
    driver = target.get_driver_name()
    resets = driver == "pymysql" and factory is sa.create_engine
    resets_async = driver == "aiomysql" and factory is not sa.create_engine
    if resets or resets_async:
        kwargs["pool_reset_on_return"] = None
    engine = _create(factory, target, masked, kwargs)
    sync = engine.sync_engine if isinstance(engine, AsyncEngine) else engine
    if resets:
        event.listen(sync, "checkin", _rollback_if_open)
    if resets_async:
        event.listen(sync, "reset", _rollback_if_open_async)
    if mysql:
        event.listen(sync, "do_connect", _allow_batches)
    reader = engine
    autocommit = None
    if backend == "postgresql":
        # Loading reads the session row, then its messages: one snapshot for both. (MySQL's
        # default, REPEATABLE READ, already is one; setting it would cost a round trip.)
        reader = engine.execution_options(isolation_level="REPEATABLE READ")
        # A one-statement append needs no BEGIN / COMMIT round trips.
        autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")
    # PyMySQL and psycopg (the sync engine): prepared statements straight on the driver's
    # cursor (``direct``).
    direct = not isinstance(engine, AsyncEngine)
    return Engines(
        engine,
        reader,
        engine,
        shared_connection=False,
        autocommit=autocommit,
        direct=direct,
        batches=mysql,
    )


#: PyMySQL's (and aiomysql's) ``CLIENT.MULTI_STATEMENTS``: several statements in one query.
_MULTI_STATEMENTS: Final = 1 << 16


def _allow_batches(_dialect: Any, _record: Any, _cargs: Any, cparams: dict[str, Any]) -> None:
    """Connect MySQL/MariaDB with ``MULTI_STATEMENTS`` added to the client flags SQLAlchemy
    sets (``FOUND_ROWS``)."""
    cparams["client_flag"] = int(cparams.get("client_flag", 0)) | _MULTI_STATEMENTS


#: PyMySQL's ``SERVER_STATUS_IN_TRANS`` flag of the server status each reply carries.
_IN_TRANSACTION: Final = 1


def _rollback_if_open(dbapi_connection: Any, record: Any) -> None:
    """The pool's reset on return, for PyMySQL. SQLAlchemy's ``Connection`` ends every
    transaction itself (``begin()`` commits or rolls back; ``close()`` rolls back), so what
    comes back through it needs nothing; a connection taken with ``raw_connection()`` is
    rolled back when the last OK reply of the server said a transaction is open (PyMySQL
    reads the status from OK replies: a transaction that only read is not seen). One that
    cannot tell is rolled back; one whose rollback fails is discarded (as the pool's own
    reset does)."""
    if dbapi_connection is None:
        return
    status = getattr(dbapi_connection, "server_status", None)
    if status is None or status & _IN_TRANSACTION:
        try:
            dbapi_connection.rollback()
        except Exception as exc:  # any failure: the connection is unusable
            record.invalidate(exc)


def _rollback_if_open_async(dbapi_connection: Any, record: Any, state: Any) -> None:
    """``_rollback_if_open`` for aiomysql, as the pool's reset (it tells whether the
    connection may be used: one that is collected or detached is terminated instead). The
    server status is aiomysql's, read as PyMySQL reads it; the rollback goes through
    SQLAlchemy's adapter, which awaits it."""
    if state.transaction_was_reset or state.terminate_only or not state.asyncio_safe:
        return
    status = getattr(getattr(dbapi_connection, "_connection", None), "server_status", None)
    if status is None or status & _IN_TRANSACTION:
        try:
            dbapi_connection.rollback()
        except Exception as exc:  # any failure: the connection is unusable
            record.invalidate(exc)


def _create(factory: Callable[..., E], target: sa.URL, masked: str, kwargs: dict[str, Any]) -> E:
    try:
        return factory(target, **kwargs)
    except ModuleNotFoundError as exc:
        extra = _EXTRAS.get(target.get_backend_name(), "postgresql")
        raise ConfigurationError(
            f"the driver for {masked} is not installed ({exc.name}); "
            f'pip install "ailib-store-sql[{extra}]"'
        ) from None
    except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError) as exc:
        raise ConfigurationError(f"cannot use {masked}: {exc}") from None


def _sqlite_engines(target: sa.URL, masked: str, kwargs: dict[str, Any]) -> Engines[sa.Engine]:
    database = target.database or ""
    memory = database in ("", ":memory:") or target.query.get("mode") == "memory"
    if not memory and database.startswith("~"):
        # sqlite3 opens paths as given: ``~`` is expanded here, once, for the folder and
        # the file alike.
        database = str(Path(database).expanduser())
        target = target.set(database=database)
    connect_args: dict[str, Any] = {"check_same_thread": False}
    if "timeout" not in target.query:
        connect_args["timeout"] = SQLITE_BUSY_TIMEOUT
    kwargs["connect_args"] = connect_args
    if memory:
        # One connection for the store's lifetime, so every caller sees the same database.
        kwargs["poolclass"] = StaticPool
    elif not database.startswith("file:"):
        folder = Path(database).parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreUnavailable(
                f"cannot create the folder {str(folder)!r} for the SQLite database file of "
                f"{masked}: {exc.strerror}; choose a path you have permission to write to"
            ) from None
    engine = _create(sa.create_engine, target, masked, kwargs)
    _sqlite_hooks(engine, memory)
    writer = engine.execution_options(ailib_write=True)
    return Engines(
        engine, engine, writer, shared_connection=memory, single_writer=True, direct=True
    )


def _sqlite_hooks(engine: sa.Engine, memory: bool) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # the "begin" hook below issues BEGIN
        cursor = dbapi_connection.cursor()
        try:
            if not memory:
                # Readers no longer block the writer nor the writer them.
                cursor.execute("PRAGMA journal_mode=WAL")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        write = conn.get_execution_options().get("ailib_write", False)
        statement = "BEGIN IMMEDIATE" if write else "BEGIN"
        # On the driver's connection: SQLAlchemy's execution path costs more than SQLite.
        error = conn.dialect.loaded_dbapi.Error
        try:
            conn.connection.driver_connection.execute(statement)  # type: ignore[union-attr]
        except error as exc:  # "database is locked": raised as SQLAlchemy would
            raise sa.exc.DBAPIError.instance(
                statement, None, exc, error, hide_parameters=True, dialect=conn.dialect
            ) from None
