"""`s3://bucket/prefix`: sessions in Amazon S3 or any S3-compatible service.

Each session is a small *manifest* object (header + the newest messages inline) plus sealed
*chunk* objects for older history (see :mod:`ailib_store_s3.manifest`). Every change is a
conditional PUT of the manifest (``If-Match`` its ETag, ``If-None-Match: *`` to create), so
concurrent writers never lose an update: the loser of a race re-reads and tries again.
Listing uses index markers (:mod:`ailib_store_s3.layout`). ``docs/stores/s3.md`` counts the
requests of every operation.

What each operation does is written once, as a program (:mod:`ailib_store_s3.writes`,
:mod:`ailib_store_s3.reads`); this store runs them with boto3 on the calling thread, and
``AsyncS3Store`` (:mod:`ailib_store_s3.aio`) runs the very same programs with aiobotocore.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, ClassVar

from ailib.spi import BaseStore
from ailib_store_s3.bucket import Bucket
from ailib_store_s3.client import make_client
from ailib_store_s3.core import S3StoreCore
from ailib_store_s3.steps import Program

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

__all__ = ("S3Store",)


class S3Store(S3StoreCore, BaseStore):
    """Sessions in an S3 bucket, under ``prefix/namespace/``.

    Thread-safe: one store may be shared by many threads, which then also share a cache of
    the manifests this process wrote or read last (always checked by ``If-Match``, so a
    stale entry costs one retry, never a wrong write).
    """

    async_twin: ClassVar[str | None] = "ailib_store_s3.aio:AsyncS3Store"
    event_class = threading.Event
    #: The S3 calls; ``s3+mock://`` swaps in one that works around moto's in-process races.
    bucket_class: ClassVar[type[Bucket]] = Bucket

    def __init__(self, *, client: S3Client | None = None, **options: Any) -> None:
        super().__init__(**options)
        self.client: S3Client = client or make_client(self.settings)
        self.objects = self.bucket_class(
            self.client, self.bucket, self.endpoint, self.settings.workers
        )

    def close(self) -> None:
        self.objects.close()

    def flush(self) -> None:
        """Wait for background clean-up (deleting superseded index markers and garbage)."""
        self.objects.flush()

    def _drive(self, program: Program[Any]) -> Any:
        return self.objects.run(program)
