"""Database errors as ailib errors, with the URL's password masked.

SQLAlchemy's messages carry the SQL and, for connection failures, driver text; ailib's carry
what went wrong in one line, the masked URL, and what to do. The driver error is not chained
(``from None``): its traceback is noise to a caller, and text from a driver may quote a DSN.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from ailib.errors import AilibError, ConflictError, StoreUnavailable
from ailib.spi import StoreURL

__all__ = (
    "ATTEMPTS",
    "RECONNECTS",
    "Attempts",
    "is_lost_connection",
    "is_transient",
    "retry_delay",
    "translating",
)

#: Attempts for a transaction the database rolled back as a deadlock victim.
ATTEMPTS = 8

# Deadlock / serialization failures: the transaction was rolled back and may simply be retried.
_PG_RETRY = frozenset({"40001", "40P01"})
_MYSQL_RETRY = frozenset({1213, 1205})


def is_transient(exc: sa.exc.DBAPIError) -> bool:
    """Whether the database rolled the transaction back for a retryable reason."""
    orig = exc.orig
    sqlstate = getattr(orig, "sqlstate", None)
    if sqlstate in _PG_RETRY:
        return True
    args: tuple[Any, ...] = getattr(orig, "args", ())
    return bool(args) and args[0] in _MYSQL_RETRY


def retry_delay(exc: sa.exc.DBAPIError, attempt: int) -> float:
    """Seconds to wait before running again a transaction that failed with ``exc`` on try
    number ``attempt`` (it was rolled back, so running it again is safe); raises ``exc``
    when it is not worth retrying."""
    if attempt >= ATTEMPTS or not is_transient(exc):
        raise exc
    return random.uniform(0, 0.005 * 2**attempt)


#: Reconnections an operation tries after losing its connection (about 6 s of backoff).
RECONNECTS = 8


class Attempts:
    """The retry policy of one operation: after a deadlock or serialization failure, run it
    again (the database rolled it back); after a lost connection, run it again only when that
    is safe: a read, or a write whose op id shows whether it landed (``recoverable``)."""

    def __init__(self, *, write: bool, recoverable: bool) -> None:
        self._retry_lost = recoverable or not write
        self._transient = 0
        #: Connections lost so far: a write's next attempt first looks up its op id.
        self.lost = 0

    def delay(self, exc: sa.exc.DBAPIError) -> float:
        """Seconds to wait before the next attempt after ``exc``; raises ``exc`` when there
        is none to make."""
        if is_lost_connection(exc):
            if not self._retry_lost or self.lost >= RECONNECTS:
                raise exc
            self.lost += 1
            return random.uniform(0.5, 1.0) * min(2.0, 0.05 * 2.0 ** (self.lost - 1))
        self._transient += 1
        return retry_delay(exc, self._transient)


def _driver_text(exc: BaseException, url: StoreURL) -> str:
    orig = getattr(exc, "orig", None) or exc
    text = str(orig).strip().splitlines()[0] if str(orig).strip() else ""
    if url.password:
        text = text.replace(url.password, "***")
    return f"{type(orig).__name__}: {text}" if text else type(orig).__name__


#: PostgreSQL SQLSTATEs of a server shutting down or restarting (also what a connection
#: ended by ``pg_terminate_backend`` reports: "terminating connection due to administrator
#: command").
_PG_SHUTDOWN = frozenset({"57P01", "57P02", "57P03"})
#: MySQL/MariaDB: server gone away, lost connection during a query, connection killed,
#: disconnected for inactivity; and a server shutting down.
_MYSQL_LOST = frozenset({2006, 2013, 2055, 1927, 4031})
_MYSQL_SHUTDOWN = frozenset({1053})


def _code(exc: sa.exc.SQLAlchemyError) -> Any:
    args: tuple[Any, ...] = getattr(getattr(exc, "orig", None), "args", ())
    return args[0] if args else None


def _sqlstate(exc: sa.exc.SQLAlchemyError) -> str | None:
    return getattr(getattr(exc, "orig", None), "sqlstate", None)


def is_lost_connection(exc: BaseException) -> bool:
    """Whether ``exc`` means the connection broke (the server went away, was restarted, or
    ended it): the outcome of a write in flight is then unknown until it is looked up."""
    if not isinstance(exc, sa.exc.DBAPIError):
        return False
    if exc.connection_invalidated:
        return True
    return _sqlstate(exc) in _PG_SHUTDOWN or _code(exc) in _MYSQL_LOST | _MYSQL_SHUTDOWN


def _sqlite_path(url: StoreURL) -> str:
    path = url.path[1:] if url.path.startswith("/") else url.path
    return str(Path(path).expanduser()) if path.startswith("~") else path


def _sqlite(exc: sa.exc.SQLAlchemyError, url: StoreURL, what: str, detail: str) -> AilibError:
    """SQLite errors speak of the database file: locks, paths and permissions."""
    path = _sqlite_path(url) or ":memory:"
    text = str(getattr(exc, "orig", exc)).lower()
    if "locked" in text or "busy" in text:
        return StoreUnavailable(
            f"the SQLite database file {path!r} is locked by another writer (a process or "
            f"connection held its write transaction longer than the busy timeout), so this "
            f"store could not {what}; retry, find the writer that keeps it locked, or wait "
            "longer with the option ?timeout=<seconds> (default 60)"
        )
    if "unable to open" in text or "readonly" in text or "permission" in text:
        return StoreUnavailable(
            f"cannot open or write the SQLite database file {path!r} ({detail}); check that "
            "the path is right and that you have permission to read and write the file and "
            "its folder"
        )
    return StoreUnavailable(
        f"the SQLite database file {path!r} failed to {what} ({detail}); check the disk and "
        "the file's permissions"
    )


def translate(
    exc: sa.exc.SQLAlchemyError, url: StoreURL, what: str, conflict: str | None = None
) -> AilibError:
    """The ailib error for a database error raised while doing ``what``; ``conflict`` is
    the message for a constraint violation, when the operation knows what it means."""
    where = url.render()
    detail = _driver_text(exc, url)
    if isinstance(exc, sa.exc.IntegrityError):
        if conflict is not None:
            return ConflictError(conflict)
        return ConflictError(
            f"{what} in {where} collided with a concurrent write ({detail}); "
            "reload the session and try again"
        )
    if isinstance(exc, sa.exc.TimeoutError):
        return StoreUnavailable(
            f"no free database connection for {where} ({detail}); raise pool_size or close "
            "stores you no longer use"
        )
    if url.base_scheme == "sqlite" and isinstance(exc, sa.exc.DBAPIError):
        return _sqlite(exc, url, what, detail)
    if _sqlstate(exc) in _PG_SHUTDOWN or _code(exc) in _MYSQL_SHUTDOWN:
        return StoreUnavailable(
            f"the database server at {where} is shutting down or restarting, or an "
            f"administrator ended this connection ({detail}), so it could not {what}; "
            "retry once the server is back up"
        )
    if is_lost_connection(exc):
        return StoreUnavailable(
            f"lost the connection to the database at {where} and could not get it back to "
            f"{what} ({detail}); retry once the server is reachable again"
        )
    if isinstance(exc, sa.exc.OperationalError | sa.exc.InterfaceError):
        return StoreUnavailable(
            f"cannot reach the database at {where} ({detail}); check that the server is up "
            "and the URL, user and database are right"
        )
    return StoreUnavailable(f"the database at {where} failed to {what} ({detail})")


@contextmanager
def translating(url: StoreURL, what: str, conflict: str | None = None) -> Iterator[None]:
    """Raise database errors inside the block as ailib errors."""
    try:
        yield
    except sa.exc.SQLAlchemyError as exc:
        raise translate(exc, url, what, conflict) from None
