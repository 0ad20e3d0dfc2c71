"""Database errors as ailib errors, with the URL's password masked.

SQLAlchemy's messages carry the SQL and, for connection failures, driver text; ailib's carry
what went wrong in one line, the masked URL, and what to do. The driver error is not chained
(``from None``): its traceback is noise to a caller, and text from a driver may quote a DSN.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa

from ailib.errors import AilibError, ConflictError, StoreUnavailable
from ailib.url import StoreURL

__all__ = ("ATTEMPTS", "is_transient", "retry_delay", "translating")

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


def _driver_text(exc: BaseException, url: StoreURL) -> str:
    orig = getattr(exc, "orig", None) or exc
    text = str(orig).strip().splitlines()[0] if str(orig).strip() else ""
    if url.password:
        text = text.replace(url.password, "***")
    return f"{type(orig).__name__}: {text}" if text else type(orig).__name__


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
    if isinstance(exc, sa.exc.DBAPIError) and (
        exc.connection_invalidated
        or isinstance(exc, sa.exc.OperationalError | sa.exc.InterfaceError)
    ):
        return StoreUnavailable(
            f"cannot reach the database at {where} ({detail}); check that the server is up "
            "and the URL, user and database are right"
        )
    if isinstance(exc, sa.exc.TimeoutError):
        return StoreUnavailable(
            f"no free database connection for {where} ({detail}); raise pool_size or close "
            "stores you no longer use"
        )
    return StoreUnavailable(f"the database at {where} failed to {what} ({detail})")


@contextmanager
def translating(url: StoreURL, what: str, conflict: str | None = None) -> Iterator[None]:
    """Raise database errors inside the block as ailib errors."""
    try:
        yield
    except sa.exc.SQLAlchemyError as exc:
        raise translate(exc, url, what, conflict) from None
