"""`s3+mock://bucket/prefix`: the S3 store on moto's in-process S3, for tests.

Opening the URL starts moto's ``mock_aws`` (with dummy credentials) for the store's lifetime
and creates the bucket, so tests of an application need no AWS account and no server::

    store = ailib.open_store("s3+mock://test-bucket")

or, with ailib's pytest plugin, ``pytest --ailib-store s3+mock://test-bucket``. Stores open
at the same time share moto's state; it is discarded when the last one closes. Requires
``pip install ailib-store-s3[mock]``. While a mock store is open, *every* boto3 client in the
process talks to moto, not AWS. moto's conditional writes are made atomic, as S3's are
(:mod:`ailib_store_s3.moto`).

``ailib.open_async_store("s3+mock://…")`` gives :class:`AsyncMockS3Store`, the one async
S3 store that is not native: moto's ``mock_aws`` answers aiobotocore's requests with bodies
aiobotocore cannot await, so it runs this store's operations in worker threads
(:class:`ailib.async_adapter.ThreadedAsyncStore`). Same behaviour, and it never blocks the
event loop. (While a mock store is open, aiobotocore clients in the process fail: test the
native ``AsyncS3Store`` against moto's server, as ``tests/s3`` does.)
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any, ClassVar, TypeVar

from botocore.exceptions import ClientError

from ailib.errors import ConfigurationError
from ailib.spi import StoreURL, ThreadedAsyncStore, make_url, set_store_url
from ailib_store_s3.moto import make_conditional_writes_atomic
from ailib_store_s3.objects import Call, Failed
from ailib_store_s3.store import Bucket, S3Store

__all__ = ("AsyncMockS3Store", "MockS3Store")

_MOTO_RACE_RETRIES = 20

T = TypeVar("T")

_DUMMY_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
}
_lock = threading.Lock()


class _MotoBucket(Bucket):
    """moto's in-process S3 is not thread-safe when one key is read while it is being
    overwritten: the read fails with "I/O operation on closed file" (its server answers 500
    there, which botocore retries). Retry the same way here, and like botocore mark an
    answer to a retried request as such: a conditional PUT whose first try was applied
    before moto failed answers 412 to the retry, and the store must check its own commit
    rather than apply the change again."""

    def call(self, call: Call[T]) -> T | Failed | None:
        for attempt in range(_MOTO_RACE_RETRIES):
            try:
                answer = super().call(call)
            except ValueError as exc:
                if "closed file" not in str(exc) or attempt == _MOTO_RACE_RETRIES - 1:
                    raise
                time.sleep(0.001 * (attempt + 1))
                continue
            if attempt and isinstance(answer, Failed) and isinstance(answer.error, ClientError):
                response: Any = answer.error.response
                response.setdefault("ResponseMetadata", {})["RetryAttempts"] = attempt
            return answer
        raise AssertionError("unreachable")


class MockS3Store(S3Store):
    """An :class:`S3Store` whose bucket lives in moto's in-process mock."""

    bucket_class = _MotoBucket
    async_twin: ClassVar[str | None] = "ailib_store_s3.mock:AsyncMockS3Store"
    options = frozenset(
        {"region", "max_attempts", "retries", "timeout", "pool_size", "index_resolution"}
    )

    def __init__(self, *, bucket: str, region: str | None = None, **options: Any) -> None:
        try:
            from moto import mock_aws
        except ImportError as exc:
            raise ConfigurationError(
                "s3+mock:// needs moto: pip install 'ailib-store-s3[mock]'"
            ) from exc
        region = region or "us-east-1"
        make_conditional_writes_atomic()
        with _lock:
            for name, value in _DUMMY_ENV.items():
                os.environ.setdefault(name, value)
            self._mock = mock_aws()
            self._mock.start()
        try:
            super().__init__(bucket=bucket, region=region, **options)
            existing = {b["Name"] for b in self.client.list_buckets().get("Buckets", [])}
            if bucket not in existing:
                if region == "us-east-1":
                    self.client.create_bucket(Bucket=bucket)
                else:
                    self.client.create_bucket(
                        Bucket=bucket,
                        CreateBucketConfiguration={"LocationConstraint": region},  # type: ignore[typeddict-item]
                    )
        except BaseException:
            self._mock.stop()
            raise
        self.endpoint = self.objects.endpoint = self._context.endpoint = (
            "moto mock_aws (in process)"
        )

    @classmethod
    def from_url(cls, url: str | StoreURL, **options: Any) -> MockS3Store:
        parsed = make_url(url)
        if not parsed.host:
            raise ConfigurationError(f"no bucket in {parsed.render()}; use s3+mock://bucket")
        store = cls(bucket=parsed.host, prefix=parsed.path, **options)
        set_store_url(store, parsed)
        store._context.url = store.url
        return store

    def close(self) -> None:
        try:
            super().close()
        finally:
            with _lock:
                self._mock.stop()


class AsyncMockS3Store(ThreadedAsyncStore):
    """``s3+mock://`` for ``ailib.open_async_store``: :class:`MockS3Store`'s operations in
    worker threads (moto's ``mock_aws`` does not serve aiobotocore)."""

    sync_class = MockS3Store
    options = MockS3Store.options
