"""The conformance suite in async mode: the same cases, against a store's async twin.

    class TestMyAsyncStore(AsyncStoreConformance):
        @pytest.fixture
        def store_url(self) -> str:
            return "mystore://127.0.0.1/test"

The cases drive the async store through :class:`BlockingStore` on an event loop of their
own; one more case checks that the store never blocks that loop.
"""

from __future__ import annotations

import asyncio
import gc
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from ailib.registry import open_async_store
from ailib.testing.blocking import BlockingStore, LoopThread
from ailib.testing.conformance import MakeStore, StoreConformance
from ailib.testing.pytest_plugin import empty

__all__ = ("AsyncStoreConformance",)

#: How late a heartbeat on the store's event loop may be while 50 tasks write.
MAX_LOOP_DELAY = 0.05


@contextmanager
def collector_paused() -> Iterator[None]:
    """Collect garbage now, then not until the block ends.

    A full collection of a large test process (a whole suite's leftovers) stops every thread
    for hundreds of milliseconds; that is the interpreter pausing, not the store blocking the
    loop, so the heartbeat case measures with the collector out of the way."""
    enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class AsyncStoreConformance(StoreConformance):
    @pytest.fixture
    def loop_thread(self) -> Iterator[LoopThread]:
        thread = LoopThread()
        yield thread
        thread.stop()

    @pytest.fixture
    def make_store(self, store_url: str, loop_thread: LoopThread) -> Iterator[MakeStore]:
        prefix = f"c{uuid.uuid4().hex[:10]}"
        opened: list[BlockingStore] = []

        def make(namespace: str = "a", **options: object) -> BlockingStore:
            store = open_async_store(store_url, namespace=f"{prefix}-{namespace}", **options)
            opened.append(BlockingStore(store, loop_thread))
            return opened[-1]

        yield make
        for store in opened:
            empty(store)
            store.close()

    def test_event_loop_is_never_blocked(
        self, make_store: MakeStore, loop_thread: LoopThread
    ) -> None:
        blocking = make_store("heartbeat")
        assert isinstance(blocking, BlockingStore)
        store = blocking.store

        async def scenario() -> tuple[float, int]:
            loop = asyncio.get_running_loop()
            ids = [(await store.create()).session_id for _ in range(10)]
            worst = 0.0
            beats = 0
            done = asyncio.Event()

            async def heartbeat() -> None:
                nonlocal worst, beats
                while not done.is_set():
                    started = loop.time()
                    await asyncio.sleep(0.002)
                    worst = max(worst, loop.time() - started - 0.002)
                    beats += 1

            async def writer(task: int) -> None:
                for n in range(10):
                    await store.append(ids[task % 10], {"role": "user", "content": f"{task}:{n}"})

            beating = asyncio.create_task(heartbeat())
            await asyncio.sleep(0)
            await asyncio.gather(*(writer(task) for task in range(50)))
            done.set()
            await beating
            return worst, beats

        with collector_paused():
            worst, beats = loop_thread.run(scenario())
        assert beats > 0
        assert worst < MAX_LOOP_DELAY, f"the event loop was blocked for {worst * 1000:.0f} ms"
        total = sum(len(blocking.load(s.session_id)) for s in blocking.list(limit=20))
        assert total == 500
