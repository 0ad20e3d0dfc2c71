"""`Bucket`: the S3 calls the store makes, with ailib's errors and a thread pool.

Parallel GETs (one round trip for the caller), DeleteObjects in batches of 1,000, ListObjectsV2
through boto3's paginator, and best-effort clean-up run off the caller's path. 412 and
missing-key answers stay ``ClientError`` for the store to decide on; anything else becomes an
ailib error naming the bucket and the endpoint.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, TypeVar

from botocore.exceptions import BotoCoreError, ClientError

from ailib_store_s3.client import is_missing, is_precondition_failed, translate

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

__all__ = ("Bucket", "Write")

log = logging.getLogger(__name__)

T = TypeVar("T")

#: An object to PUT: (key, body).
Write = tuple[str, bytes]

_DELETE_BATCH = 1000


class Bucket:
    """One bucket through one boto3 client (thread-safe), named ``endpoint`` in errors."""

    def __init__(self, client: S3Client, name: str, endpoint: str, workers: int) -> None:
        self.client = client
        self.name = name
        self.endpoint = endpoint
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ailib-s3")
        self._background: set[Future[None]] = set()
        self._lock = threading.Lock()

    def close(self) -> None:
        self.flush()
        self._pool.shutdown(wait=True)
        self.client.close()

    def flush(self) -> None:
        """Wait for background clean-up."""
        while True:
            with self._lock:
                pending = list(self._background)
            if not pending:
                return
            for future in pending:
                future.exception()

    def error(self, exc: BaseException, action: str) -> Exception:
        return translate(exc, bucket=self.name, endpoint=self.endpoint, action=action)

    def call(self, action: str, fn: Callable[..., T], **kwargs: Any) -> T:
        """Call ``fn``; 412 and 404-key answers propagate as ClientError for the caller to
        decide on, anything else becomes an ailib error naming bucket and endpoint."""
        try:
            return fn(Bucket=self.name, **kwargs)
        except ClientError as exc:
            if is_precondition_failed(exc) or is_missing(exc):
                raise
            raise self.error(exc, action) from exc
        except BotoCoreError as exc:
            raise self.error(exc, action) from exc

    def get(self, key: str, byte_range: str | None = None) -> tuple[bytes, str] | None:
        """The object's bytes and ETag; None if there is no such key."""
        extra = {"Range": byte_range} if byte_range else {}
        try:
            response = self.call("GetObject", self.client.get_object, Key=key, **extra)
        except ClientError as exc:
            if is_missing(exc):
                return None
            raise self.error(exc, "GetObject") from exc
        return response["Body"].read(), response["ETag"]

    def put(
        self, key: str, body: bytes, *, if_match: str | None = None, create: bool = False
    ) -> str:
        extra: dict[str, str] = {}
        if if_match is not None:
            extra["IfMatch"] = if_match
        elif create:
            extra["IfNoneMatch"] = "*"
        response = self.call(
            "PutObject",
            self.client.put_object,
            Key=key,
            Body=body,
            ContentType="application/json",
            **extra,
        )
        return response["ETag"]

    def put_all(self, writes: Sequence[Write]) -> None:
        for _ in self.parallel(lambda w: self.put(w[0], w[1]), writes):
            pass

    def keys(self, prefix: str, start_after: str | None = None) -> Iterator[list[str]]:
        """The keys under ``prefix`` in ascending order, one ListObjectsV2 page at a time."""
        paginator = self.client.get_paginator("list_objects_v2")
        extra: dict[str, Any] = {"StartAfter": start_after} if start_after else {}
        try:
            for page in paginator.paginate(Bucket=self.name, Prefix=prefix, **extra):
                yield [item["Key"] for item in page.get("Contents", ())]
        except (ClientError, BotoCoreError) as exc:
            raise self.error(exc, "ListObjectsV2") from exc

    def delete_keys(self, keys: Iterable[str]) -> None:
        """Delete ``keys`` with DeleteObjects, 1,000 a request."""
        unique = list(dict.fromkeys(keys))
        for start in range(0, len(unique), _DELETE_BATCH):
            batch = unique[start : start + _DELETE_BATCH]
            self.call(
                "DeleteObjects",
                self.client.delete_objects,
                Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True},
            )

    def delete_prefix(self, prefix: str) -> None:
        for page in self.keys(prefix):
            self.delete_keys(page)

    def parallel(self, fn: Callable[[Any], T], items: Sequence[Any]) -> list[T]:
        """``fn`` over ``items`` concurrently (one round trip for the caller)."""
        if len(items) <= 1:
            return [fn(item) for item in items]
        return list(self._pool.map(fn, items))

    def later(self, fn: Callable[[], None], what: str) -> None:
        """Run best-effort clean-up off the caller's path; ``flush`` waits for it."""

        def run() -> None:
            try:
                fn()
            except Exception as exc:  # clean-up only: the next writer or purge retries it
                log.warning("%s in bucket %r failed: %s", what, self.name, exc)

        future = self._pool.submit(run)
        with self._lock:
            self._background.add(future)
        future.add_done_callback(self._done)

    def _done(self, future: Future[None]) -> None:
        with self._lock:
            self._background.discard(future)

    def discard(self, keys: Sequence[str], what: str = "deleting unused objects") -> None:
        """Delete ``keys`` in the background (best effort)."""
        if keys:
            self.later(lambda: self.delete_keys(keys), what)

    def submit(self, fn: Callable[..., T], *args: Any) -> Future[T]:
        return self._pool.submit(fn, *args)
