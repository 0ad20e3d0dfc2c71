"""`Bucket`: the sync store's driver, carrying out the steps of its programs with boto3.

S3 calls block the calling thread; :class:`~ailib_store_s3.steps.Parallel` programs run on a
thread pool (one round trip for the caller), and best-effort clean-up runs on that pool off
the caller's path.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import TYPE_CHECKING, Any, TypeVar

from botocore.exceptions import BotoCoreError, ClientError

from ailib_store_s3 import objects
from ailib_store_s3.steps import Call, Later, Parallel, Program, Sleep, Wait, run

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

__all__ = ("Bucket",)

T = TypeVar("T")


class Bucket:
    """One bucket through one boto3 client (thread-safe), named ``endpoint`` in errors."""

    def __init__(self, client: S3Client, name: str, endpoint: str, workers: int) -> None:
        self.client = client
        self.name = name
        self.endpoint = endpoint
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ailib-s3")
        self._background: set[Future[None]] = set()
        self._lock = threading.Lock()

    def run(self, program: Program[T]) -> T:
        return run(program, self)

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

    def call(self, call: Call) -> Any:
        try:
            response: dict[str, Any] = getattr(self.client, call.method)(
                Bucket=self.name, **call.kwargs
            )
            if call.streamed:
                response["Body"] = response["Body"].read()
        except (ClientError, BotoCoreError) as exc:
            return call.failed(exc, self.name, self.endpoint)
        return call.decode(response)

    def parallel(self, step: Parallel) -> list[Any]:
        if len(step.programs) <= 1:
            return [self.run(p) for p in step.programs]
        futures = [self._pool.submit(self.run, p) for p in step.programs]
        wait(futures)
        return step.settle([f.exception() or f.result() for f in futures])

    def later(self, step: Later) -> None:
        future = self._pool.submit(self.run, step.program)
        with self._lock:
            self._background.add(future)
        future.add_done_callback(self._done)

    def _done(self, future: Future[None]) -> None:
        with self._lock:
            self._background.discard(future)

    def sleep(self, step: Sleep) -> None:
        time.sleep(step.seconds)

    def wait(self, step: Wait) -> None:
        step.event.wait()  # type: ignore[attr-defined]  # a threading.Event

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
