"""`S3StoreCore`: everything the sync store and its asyncio twin share: options and URL
parsing, the keys, the manifest cache, group commit, and every operation, each written once
as a program of :mod:`ailib_store_s3.writes` / :mod:`ailib_store_s3.reads`.

The two stores differ only in :meth:`S3StoreCore._drive`, which carries a program's steps
out: ``S3Store`` with boto3 and threads (returning the result), ``AsyncS3Store`` with
aiobotocore and asyncio tasks (returning an awaitable of it). So each operation below serves
as ``BaseStore``'s method in the one and ``AsyncBaseStore``'s coroutine method in the other.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Self
from urllib.parse import urlsplit, urlunsplit

from ailib.errors import ConfigurationError
from ailib.spi import (
    Change,
    SessionRecord,
    StoreCore,
    StoreURL,
    make_url,
    parse_duration,
    set_store_url,
)
from ailib_store_s3 import reads, writes
from ailib_store_s3.context import Context
from ailib_store_s3.groupcommit import GroupCommit
from ailib_store_s3.layout import Layout
from ailib_store_s3.steps import Event, Program

__all__ = ("ClientSettings", "S3StoreCore")


#: Seconds to wait for a connection, and for each answer, unless the URL says otherwise.
DEFAULT_TIMEOUT = 10.0
#: Retries of a failed request (5xx, throttling, a dropped connection) unless the URL says.
DEFAULT_RETRIES = 4


@dataclass(frozen=True)
class ClientSettings:
    """How to reach S3: what both stores' clients are built from. The secret key never
    shows in its ``repr``."""

    region: str | None
    endpoint_url: str | None
    access_key: str | None
    secret_key: str | None = field(repr=False)
    max_attempts: int
    #: The store's own concurrency (threads or parallel requests of one operation).
    workers: int
    #: Connect and read timeout of each request, in seconds.
    timeout: float = DEFAULT_TIMEOUT

    def __repr__(self) -> str:
        shown = None if self.secret_key is None else "***"
        return (
            f"ClientSettings(region={self.region!r}, endpoint_url={self.endpoint_url!r}, "
            f"access_key={self.access_key!r}, secret_key={shown!r}, "
            f"max_attempts={self.max_attempts}, workers={self.workers}, timeout={self.timeout})"
        )

    __str__ = __repr__


class S3StoreCore(StoreCore):
    """Options, keys and operations of an S3 store; see ``docs/stores/s3.md``."""

    options: ClassVar[frozenset[str]] = frozenset(
        {
            "region",
            "endpoint_url",
            "max_attempts",
            "retries",
            "timeout",
            "pool_size",
            "index_resolution",
        }
    )
    #: Makes the event a group-commit writer waits on (``threading`` or ``asyncio``).
    event_class: ClassVar[Callable[[], Event]]

    def __init__(
        self,
        *,
        bucket: str,
        prefix: str = "",
        region: str | None = None,
        endpoint_url: str | None = None,
        access_key: str | None = None,
        secret_key: str | None = None,
        max_attempts: int | str | None = None,
        retries: int | str | None = None,
        timeout: float | str | None = None,
        pool_size: int | str = 16,
        index_resolution: float | str = 1.0,
        **common: Any,
    ) -> None:
        super().__init__(**common)
        if not bucket:
            raise ConfigurationError("an S3 store URL needs a bucket: s3://bucket/prefix")
        self.bucket = bucket
        self.endpoint = _shown_endpoint(endpoint_url, region)
        try:
            workers = int(pool_size)
            resolution = float(index_resolution)
        except ValueError as exc:
            raise ConfigurationError(
                "pool_size must be a whole number, index_resolution seconds"
            ) from exc
        if workers < 1 or not resolution > 0:
            raise ConfigurationError("pool_size and index_resolution must be > 0")
        self.settings = ClientSettings(
            region,
            endpoint_url,
            access_key,
            secret_key,
            _attempts(retries, max_attempts),
            workers,
            _timeout(timeout),
        )
        self.layout = Layout(prefix.strip("/"), self.namespace, resolution)
        self._context = Context(self, self.layout, GroupCommit(type(self).event_class))

    @classmethod
    def from_url(cls, url: str | StoreURL, **options: Any) -> Self:
        parsed = make_url(url)
        if not parsed.host:
            raise ConfigurationError(
                f"no bucket in {parsed.render()}; use s3://bucket/prefix?region=…"
            )
        store = cls(
            bucket=parsed.host,
            prefix=parsed.path,
            access_key=parsed.username,
            secret_key=parsed.password,
            **options,
        )
        set_store_url(store, parsed)
        return store

    def _drive(self, program: Program[Any]) -> Any:
        """Carry ``program`` out: its result (sync store) or an awaitable of it (async)."""
        raise NotImplementedError

    # -- the operations: one program each, driven by the store's kind of I/O --------------

    def _create(self, record: SessionRecord) -> Any:
        return self._drive(writes.create(self._context, record))

    def _fetch(self, session_id: str, last: int | None) -> Any:
        return self._drive(reads.fetch(self._context, session_id, last))

    def _apply(self, session_id: str, change: Change, now: float) -> Any:
        return self._drive(writes.apply(self._context, session_id, change))

    def _replace(self, record: SessionRecord, expected_version: int, now: float) -> Any:
        return self._drive(writes.replace(self._context, record, expected_version, now))

    def _pop(self, session_id: str, count: int, now: float) -> Any:
        return self._drive(writes.pop(self._context, session_id, count, now))

    def _delete(self, session_id: str) -> Any:
        return self._drive(reads.delete(self._context, session_id))

    def _list(
        self, user_id: str | None, limit: int, after: tuple[float, str] | None, now: float
    ) -> Any:
        return self._drive(reads.list_page(self._context, user_id, limit, after, now))

    def _purge(self, now: float) -> Any:
        return self._drive(reads.purge(self._context, now))

    def _checkpoint(self, session_id: str, label: str | None, now: float) -> Any:
        return self._drive(writes.checkpoint(self._context, session_id, label, now))

    def _checkpoints(self, session_id: str, now: float) -> Any:
        return self._drive(reads.checkpoints(self._context, session_id, now))

    def _checkpoint_state(self, session_id: str, number: int, now: float) -> Any:
        return self._drive(reads.checkpoint_state(self._context, session_id, number, now))

    def _restore(self, session_id: str, number: int, now: float) -> Any:
        return self._drive(writes.restore(self._context, session_id, number, now))


def _attempts(retries: int | str | None, max_attempts: int | str | None) -> int:
    """Tries of one request: ``retries`` + 1 (``max_attempts`` is the older spelling)."""
    if retries is not None and max_attempts is not None:
        raise ConfigurationError(
            "give retries or max_attempts, not both (retries=N means max_attempts=N+1)"
        )
    name, value, extra = "retries", retries, 1
    if retries is None:
        name, value, extra = "max_attempts", max_attempts, 0
    if value is None:
        return DEFAULT_RETRIES + 1
    try:
        number = int(value)
    except (TypeError, ValueError):
        number = -1
    if number + extra < 1 or number > 100:
        lowest = 0 if extra else 1
        raise ConfigurationError(
            f"invalid {name} {value!r}; give a whole number from {lowest} to 100 "
            f"(for example {name}=3)"
        )
    return number + extra


def _timeout(value: float | str | None) -> float:
    """The request timeout in seconds, from seconds or a duration such as ``5s``."""
    if value is None:
        return DEFAULT_TIMEOUT
    seconds = parse_duration(value, "timeout")
    if seconds is None or not 0 < seconds <= 3600:
        raise ConfigurationError(
            f"invalid timeout {value!r}; give a duration above 0 and up to 1h "
            "(for example timeout=5s or timeout=0.5)"
        )
    return seconds


def _shown_endpoint(endpoint_url: str | None, region: str | None) -> str:
    """The endpoint as error messages name it, without any user:password@ in it."""
    if not endpoint_url:
        return f"AWS S3 ({region or 'default region'})"
    parts = urlsplit(endpoint_url)
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))
