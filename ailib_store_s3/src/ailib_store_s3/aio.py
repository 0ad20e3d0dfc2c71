"""`AsyncS3Store`: the native asyncio twin of :class:`ailib_store_s3.store.S3Store`.

Same URLs, options, object layout, requests, retries and errors: it runs the very programs
of :mod:`ailib_store_s3.writes` and :mod:`ailib_store_s3.reads` that the sync store runs, on
``ailib.spi.AsyncProgramStore``, carrying their steps out with aiobotocore instead of
blocking: parallel GETs with
``asyncio.gather``, best-effort clean-up as tasks, backoff with ``asyncio.sleep``, and
group-commit turns on ``asyncio.Event``. ``ailib.open_async_store`` returns it for ``s3://``.

Building the store does no I/O (``open_async_store`` may be called on a running loop): the
aiobotocore client is created on first use, its service model loaded in a worker thread, so
a missing bucket or an unreachable endpoint raises on the first operation. The client
belongs to the event loop that first used it: use the store on one loop and
``await store.aclose()`` on it.
"""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack
from typing import Any, TypeVar

import aiohttp
from aiobotocore.session import get_session  # type: ignore[import-untyped, unused-ignore]
from botocore.exceptions import BotoCoreError, ClientError

from ailib.spi import AsyncProgramStore, drive_async
from ailib_store_s3.client import client_options
from ailib_store_s3.context import Context
from ailib_store_s3.core import ClientSettings, S3StoreCore
from ailib_store_s3.objects import Call, Failed, Later, Parallel, Sleep, Step, Wait

__all__ = ("AsyncBucket", "AsyncS3Store")

T = TypeVar("T")

#: What an aiobotocore call can fail with; aiohttp's own errors arise reading a body.
_FAILURES = (ClientError, BotoCoreError, aiohttp.ClientError, asyncio.TimeoutError)


class AsyncS3Store(S3StoreCore, AsyncProgramStore[Context, Step]):
    """``S3Store``'s options and behaviour, awaited; see ``docs/stores/s3.md``."""

    event_class = asyncio.Event

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.objects = AsyncBucket(self.settings, self.bucket, self.endpoint)

    async def aclose(self) -> None:
        await self.objects.close()

    async def flush(self) -> None:
        """Wait for background clean-up (deleting superseded index markers and garbage)."""
        await self.objects.flush()

    async def _perform(self, step: Step) -> object:
        return await self.objects.perform(step)


class AsyncBucket:
    """The async store's bucket through one aiobotocore client: performs the steps of its
    programs."""

    def __init__(self, settings: ClientSettings, name: str, endpoint: str) -> None:
        self.settings = settings
        self.name = name
        self.endpoint = endpoint
        self._client: Any = None
        self._stack = AsyncExitStack()
        self._opening = asyncio.Lock()
        self._background: set[asyncio.Task[None]] = set()

    async def client(self) -> Any:
        """The aiobotocore S3 client, created on first use."""
        if self._client is None:
            async with self._opening:
                if self._client is None:
                    self._client = await self._open()
        return self._client

    async def _open(self) -> Any:
        session = get_session()
        # Loading botocore's S3 model reads and parses megabytes of JSON: in a thread, so
        # the loop keeps running; the session's loader caches it for create_client.
        loader = session.get_component("data_loader")
        await asyncio.to_thread(loader.load_service_model, "s3", "service-2")
        await asyncio.to_thread(loader.load_data, "endpoints")
        creator = session.create_client("s3", **client_options(self.settings))
        return await self._stack.enter_async_context(creator)

    async def close(self) -> None:
        await self.flush()
        await self._stack.aclose()
        self._client = None

    async def flush(self) -> None:
        while self._background:
            await asyncio.gather(*self._background, return_exceptions=True)

    # -- the steps ------------------------------------------------------------------------

    async def perform(self, step: Step) -> object:
        """Carry ``step`` out; its answer, or :class:`Failed` (a step never raises: a
        cancellation too is raised inside the program, whose clean-up then runs)."""
        try:
            match step:
                case Call():
                    return await self.call(step)
                case Parallel():
                    runs = [drive_async(p, self.perform) for p in step.programs]
                    answers = await asyncio.gather(*runs, return_exceptions=True)
                    return [Failed(a) if isinstance(a, BaseException) else a for a in answers]
                case Later():
                    task = asyncio.create_task(drive_async(step.program, self.perform))
                    self._background.add(task)
                    task.add_done_callback(self._background.discard)
                    return None
                case Sleep():
                    await asyncio.sleep(step.seconds)
                    return None
                case Wait():
                    assert isinstance(step.event, asyncio.Event)
                    await step.event.wait()
                    return None
        except BaseException as exc:
            return Failed(exc)

    async def call(self, call: Call[T]) -> T | Failed | None:
        client = await self.client()
        try:
            response = await getattr(client, call.method)(Bucket=self.name, **call.kwargs)
            if call.streamed:
                async with response["Body"] as body:
                    response["Body"] = await body.read()
        except _FAILURES as exc:
            return call.failed(exc, self.name, self.endpoint)
        return call.decode(response)
