"""`S3StoreCore`: what the sync store and its asyncio twin share: options and URL parsing,
the keys, and the context of their programs (manifest cache, group commit); and
:class:`Operations`, every operation written once as a program of
:mod:`ailib_store_s3.writes` / :mod:`ailib_store_s3.reads`.

The stores run those programs on ``ailib.spi.ProgramStore`` and ``AsyncProgramStore`` and
differ only in ``_perform``, which carries one step out: ``S3Store`` with boto3 and threads,
``AsyncS3Store`` with aiobotocore and asyncio tasks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Self
from urllib.parse import urlsplit, urlunsplit

from ailib.errors import ConfigurationError
from ailib.spi import (
    Programs,
    StoreCore,
    StoreURL,
    make_url,
    parse_duration,
    set_store_url,
)
from ailib_store_s3 import reads, writes
from ailib_store_s3.context import Context, GroupCommit, Op
from ailib_store_s3.manifest import Layout
from ailib_store_s3.objects import Event, Step

__all__ = ("ClientSettings", "Operations", "S3StoreCore")


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


class Operations:
    """Every operation of the store as a program: the ``ailib.spi.Programs`` both stores
    run, each with its own ``_perform``."""

    create = staticmethod(writes.create)
    fetch = staticmethod(reads.fetch)
    apply = staticmethod(writes.apply)
    replace = staticmethod(writes.replace)
    delete = staticmethod(reads.delete)
    list_page = staticmethod(reads.list_page)
    purge = staticmethod(reads.purge)
    pop = staticmethod(writes.pop)
    checkpoint = staticmethod(writes.checkpoint)
    checkpoints = staticmethod(reads.checkpoints)
    checkpoint_state = staticmethod(reads.checkpoint_state)
    restore = staticmethod(writes.restore)


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
        group: GroupCommit[Op] = GroupCommit(type(self).event_class)
        self._context = Context(self.layout, group, self.url, self.bucket, self.endpoint)
        self._programs: Programs[Context, Step] = Operations()

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
        store._context.url = store.url
        return store


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
