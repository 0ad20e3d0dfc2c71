"""`s3://bucket/prefix`: sessions in Amazon S3 or any S3-compatible service.

Each session is a small *manifest* object (header + the newest messages inline) plus sealed
*chunk* objects for older history (see :mod:`ailib_store_s3.manifest`). Every change is a
conditional PUT of the manifest (``If-Match`` its ETag, ``If-None-Match: *`` to create), so
concurrent writers never lose an update: the loser of a race re-reads and tries again.
Listing uses index markers (:mod:`ailib_store_s3.manifest`). ``docs/stores/s3.md`` counts the
requests of every operation.

What each operation does is written once, as a program (:mod:`ailib_store_s3.writes`,
:mod:`ailib_store_s3.reads`); this store runs them on ``ailib.spi.ProgramStore``, its
:class:`Bucket` carrying each step out with boto3 on the calling thread (parallel programs
and clean-up on a thread pool), and ``AsyncS3Store`` (:mod:`ailib_store_s3.aio`) runs the
very same programs with aiobotocore.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from botocore.exceptions import BotoCoreError, ClientError

from ailib.spi import ProgramStore, drive
from ailib_store_s3 import objects
from ailib_store_s3.client import make_client
from ailib_store_s3.context import Context
from ailib_store_s3.core import S3StoreCore
from ailib_store_s3.objects import Call, Failed, Later, Parallel, Program, Sleep, Step, Wait

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

__all__ = ("Bucket", "S3Store")

T = TypeVar("T")


class Bucket:
    """One bucket through one boto3 client (thread-safe), named ``endpoint`` in errors:
    performs the steps of the sync store's programs."""

    def __init__(self, client: S3Client, name: str, endpoint: str, workers: int) -> None:
        self.client = client
        self.name = name
        self.endpoint = endpoint
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ailib-s3")
        self._background: set[Future[None]] = set()
        self._lock = threading.Lock()

    def run(self, program: Program[T]) -> T:
        return drive(program, self.perform)

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
            wait(pending)

    # -- the steps ------------------------------------------------------------------------

    def perform(self, step: Step) -> object:
        """Carry ``step`` out; its answer, or :class:`Failed` (a step never raises)."""
        try:
            match step:
                case Call():
                    return self.call(step)
                case Parallel():
                    if len(step.programs) <= 1:
                        return [self._settled(p) for p in step.programs]
                    futures = [self._pool.submit(self._settled, p) for p in step.programs]
                    return [f.result() for f in futures]
                case Later():
                    future = self._pool.submit(self.run, step.program)
                    with self._lock:
                        self._background.add(future)
                    future.add_done_callback(self._done)
                    return None
                case Sleep():
                    time.sleep(step.seconds)
                    return None
                case Wait():
                    assert isinstance(step.event, threading.Event)
                    step.event.wait()
                    return None
        except BaseException as exc:
            return Failed(exc)

    def call(self, call: Call[T]) -> T | Failed | None:
        try:
            response: dict[str, Any] = getattr(self.client, call.method)(
                Bucket=self.name, **call.kwargs
            )
            if call.streamed:
                response["Body"] = response["Body"].read()
        except (ClientError, BotoCoreError) as exc:
            return call.failed(exc, self.name, self.endpoint)
        return call.decode(response)

    def _settled(self, program: Program[T]) -> T | Failed:
        try:
            return self.run(program)
        except BaseException as exc:
            return Failed(exc)

    def _done(self, future: Future[None]) -> None:
        with self._lock:
            self._background.discard(future)

    # -- for tests and tools --------------------------------------------------------------

    def get(self, key: str, byte_range: str | None = None) -> tuple[bytes, str] | None:
        """The object's bytes and ETag; None if there is no such key."""
        return self.run(objects.get(key, byte_range))

    def keys(self, prefix: str) -> Iterator[list[str]]:
        """The keys under ``prefix`` in ascending order, one page at a time."""
        token: str | None = None
        while True:
            page, token = self.run(objects.list_page(prefix, None, token))
            yield page
            if token is None:
                return


class S3Store(S3StoreCore, ProgramStore[Context, Step]):
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

    def _perform(self, step: Step) -> object:
        return self.objects.perform(step)
