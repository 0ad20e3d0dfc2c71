"""From an ailib store URL to a configured SQLAlchemy engine.

ailib's own options (``namespace``, ``ttl``, ``table_prefix``, …) are consumed before the URL
reaches SQLAlchemy; the driver options listed in ``DRIVER_OPTIONS`` go through to it. A scheme
without a driver gets the one this distribution's extras install (psycopg 3, PyMySQL).

SQLite needs care for concurrency: Python's sqlite3 module begins transactions lazily and never
for reads, so the engine takes over: every transaction starts with ``BEGIN`` (reads see one
snapshot), and write transactions with ``BEGIN IMMEDIATE``, which takes the write lock up front
so that concurrent writers queue on the busy timeout rather than fail when upgrading a lock.
"""

from __future__ import annotations

import threading
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.pool import StaticPool

from ailib.errors import ConfigurationError, StoreUnavailable
from ailib.url import StoreURL

__all__ = ("DRIVER_OPTIONS", "Engines", "make_engines", "sqlalchemy_url")

#: Driver defaults for schemes given without ``+driver``.
_DEFAULT_DRIVERS: Final = {
    "sqlite": "sqlite",
    "postgresql": "postgresql+psycopg",
    "postgres": "postgresql+psycopg",
    "mysql": "mysql+pymysql",
    "mariadb": "mariadb+pymysql",
}
_EXTRAS: Final = {"postgresql": "postgresql", "mysql": "mysql", "mariadb": "mysql"}

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
    if base == "postgres":
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
class Engines:
    """One pool, seen three ways: for reads, for writes, and as configured."""

    engine: sa.Engine
    reader: sa.Engine
    writer: sa.Engine
    #: Held around every transaction: only for an in-memory SQLite database, whose one
    #: connection the threads share.
    guard: AbstractContextManager[Any]


def make_engines(
    target: sa.URL, masked: str, *, pool_size: int | None, pool_pre_ping: bool
) -> Engines:
    """A configured engine for ``target``; ``masked`` names it in errors."""
    kwargs: dict[str, Any] = {"hide_parameters": True, "pool_pre_ping": pool_pre_ping}
    backend = target.get_backend_name()
    if backend == "sqlite":
        return _sqlite_engines(target, masked, kwargs)
    if pool_size is not None:
        kwargs["pool_size"] = pool_size
    if backend in ("mysql", "mariadb"):
        kwargs["pool_recycle"] = 3600  # below MySQL's default wait_timeout of 8 hours
    engine = _create(target, masked, kwargs)
    reader = engine
    if backend == "postgresql":
        # Loading reads the session row, then its messages: one snapshot for both. (MySQL's
        # default, REPEATABLE READ, already is one; setting it would cost a round trip.)
        reader = engine.execution_options(isolation_level="REPEATABLE READ")
    return Engines(engine, reader, engine, nullcontext())


def _create(target: sa.URL, masked: str, kwargs: dict[str, Any]) -> sa.Engine:
    try:
        return sa.create_engine(target, **kwargs)
    except ModuleNotFoundError as exc:
        extra = _EXTRAS.get(target.get_backend_name(), "postgresql")
        raise ConfigurationError(
            f"the driver for {masked} is not installed ({exc.name}); "
            f'pip install "ailib-store-sql[{extra}]"'
        ) from None
    except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError) as exc:
        raise ConfigurationError(f"cannot use {masked}: {exc}") from None


def _sqlite_engines(target: sa.URL, masked: str, kwargs: dict[str, Any]) -> Engines:
    database = target.database or ""
    memory = database in ("", ":memory:") or target.query.get("mode") == "memory"
    connect_args: dict[str, Any] = {"check_same_thread": False}
    if "timeout" not in target.query:
        connect_args["timeout"] = SQLITE_BUSY_TIMEOUT
    kwargs["connect_args"] = connect_args
    if memory:
        # One connection for the store's lifetime, so every thread sees the same database.
        kwargs["poolclass"] = StaticPool
    elif not database.startswith("file:"):
        folder = Path(database).expanduser().parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreUnavailable(
                f"cannot create the folder {str(folder)!r} for {masked}: {exc.strerror}; "
                "choose a path you can write to"
            ) from None
    engine = _create(target, masked, kwargs)

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
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    guard: AbstractContextManager[Any] = threading.RLock() if memory else nullcontext()
    writer = engine.execution_options(ailib_write=True)
    return Engines(engine, engine, writer, guard)
