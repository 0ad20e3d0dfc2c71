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
from dataclasses import dataclass
from typing import Any, ClassVar, Self
from urllib.parse import urlsplit, urlunsplit

from ailib.errors import ConfigurationError
from ailib.records import Change, SessionRecord
from ailib.storecore import StoreCore
from ailib.url import StoreURL, make_url
from ailib_store_s3 import reads, writes
from ailib_store_s3.context import Context
from ailib_store_s3.groupcommit import GroupCommit
from ailib_store_s3.layout import Layout
from ailib_store_s3.steps import Event, Program

__all__ = ("ClientSettings", "S3StoreCore")


@dataclass(frozen=True)
class ClientSettings:
    """How to reach S3: what both stores' clients are built from."""

    region: str | None
    endpoint_url: str | None
    access_key: str | None
    secret_key: str | None
    max_attempts: int
    #: The store's own concurrency (threads or parallel requests of one operation).
    workers: int


class S3StoreCore(StoreCore):
    """Options, keys and operations of an S3 store; see ``docs/stores/s3.md``."""

    options: ClassVar[frozenset[str]] = frozenset(
        {"region", "endpoint_url", "max_attempts", "pool_size", "index_resolution"}
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
        max_attempts: int | str = 8,
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
            attempts, workers = int(max_attempts), int(pool_size)
            resolution = float(index_resolution)
        except ValueError as exc:
            raise ConfigurationError(
                "max_attempts and pool_size must be whole numbers, index_resolution seconds"
            ) from exc
        if attempts < 1 or workers < 1 or not resolution > 0:
            raise ConfigurationError("max_attempts, pool_size and index_resolution must be > 0")
        self.settings = ClientSettings(
            region, endpoint_url, access_key, secret_key, attempts, workers
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
        store._url = parsed
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


def _shown_endpoint(endpoint_url: str | None, region: str | None) -> str:
    """The endpoint as error messages name it, without any user:password@ in it."""
    if not endpoint_url:
        return f"AWS S3 ({region or 'default region'})"
    parts = urlsplit(endpoint_url)
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))
