"""The async conformance suite's blocking case measures what the store blocks, not the
machine's load: a store sleeping on the loop fails it, waiting on the loop does not count."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import pytest

import ailib
from ailib.records import Change
from ailib.registry import open_async_store
from ailib.stores.memory import MemoryStore
from ailib.stores.memory_async import AsyncMemoryStore
from ailib.testing.async_conformance import AsyncStoreConformance
from ailib.testing.blocking import BlockingStore, LoopThread
from ailib.testing.loop_meter import LoopBlockMeter


@pytest.fixture
def loop_thread() -> Iterator[LoopThread]:
    thread = LoopThread()
    yield thread
    thread.stop()


def measure(loop_thread: LoopThread, body: Any) -> LoopBlockMeter:
    async def run() -> LoopBlockMeter:
        meter = LoopBlockMeter(asyncio.get_running_loop())
        with meter.active():
            await body()
        return meter

    return loop_thread.run(run())


def test_a_callback_that_sleeps_is_measured(loop_thread: LoopThread) -> None:
    async def sleeps_on_the_loop() -> None:
        await asyncio.sleep(0)
        time.sleep(0.1)

    meter = measure(loop_thread, lambda: asyncio.create_task(sleeps_on_the_loop()))
    assert meter.worst.blocked >= 0.09
    assert "sleeps_on_the_loop" in meter.worst.callback


def test_awaiting_does_not_count(loop_thread: LoopThread) -> None:
    async def waits() -> None:
        for _ in range(5):
            await asyncio.sleep(0.05)

    meter = measure(loop_thread, waits)
    assert meter.callbacks >= 5
    assert meter.worst.blocked < 0.05


def test_other_loops_are_not_measured(loop_thread: LoopThread) -> None:
    other = LoopThread()
    try:

        async def elsewhere() -> None:
            other.loop.call_soon_threadsafe(time.sleep, 0.1)
            await asyncio.sleep(0.3)

        meter = measure(loop_thread, elsewhere)
    finally:
        other.stop()
    assert meter.worst.blocked < 0.05


class SleepyMemoryStore(MemoryStore):
    """A store whose every 100th append blocks its caller's thread: on the loop, that is a
    bug, in every run of the conformance case."""

    async_twin = "tests.core.test_loop_meter:AsyncSleepyMemoryStore"
    appends = 0

    def _apply(self, session_id: str, change: Change, now: float) -> int:
        SleepyMemoryStore.appends += 1
        if SleepyMemoryStore.appends % 100 == 0:
            time.sleep(0.08)
        return super()._apply(session_id, change, now)


class AsyncSleepyMemoryStore(AsyncMemoryStore):
    sync_class = SleepyMemoryStore


def test_the_conformance_case_fails_a_store_that_blocks(loop_thread: LoopThread) -> None:
    with ailib.register_store("sleepy", SleepyMemoryStore):

        def make(namespace: str = "a", **options: object) -> BlockingStore:
            store = open_async_store("sleepy://blocking", namespace=namespace, **options)
            return BlockingStore(store, loop_thread)

        with pytest.raises(AssertionError, match="blocked the event loop for"):
            AsyncStoreConformance().test_event_loop_is_never_blocked(make, loop_thread)
