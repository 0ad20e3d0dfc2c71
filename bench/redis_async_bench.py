"""The async Redis store with 50 concurrent tasks, next to the sync store driven by 50 threads.

Each of the 50 workers appends to a session of its own, then loads it (all its messages)
repeatedly; throughput is operations per second over all workers, latency the median of one
call. Both run in the same process, one after the other, against 127.0.0.1:6379 (db 0, a
namespace of this run, emptied at the end)::

    .venv/bin/python bench/redis_async_bench.py [--appends N] [--loads N]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import redis

import ailib
from ailib.async_base import AsyncBaseStore
from ailib.base import BaseStore

URL = "redis://127.0.0.1:6379/0"
WORKERS = 50


def message(worker: int, n: int) -> dict[str, Any]:
    return {"role": "user", "content": f"worker {worker} message {n} " + "lorem " * 30}


class Result:
    """Latencies of one phase and its wall-clock time."""

    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.wall = 0.0

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.wall

    @property
    def median_ms(self) -> float:
        return statistics.median(self.latencies) * 1000


def sync_phase(
    store: BaseStore, ids: list[str], count: int, op: Callable[[BaseStore, str, int], object]
) -> Result:
    """``op`` ``count`` times in each of 50 threads, started together."""
    result = Result()
    lock = threading.Lock()
    start = threading.Barrier(WORKERS + 1)

    def worker(w: int) -> None:
        mine: list[float] = []
        start.wait()
        for n in range(count):
            began = time.perf_counter()
            op(store, ids[w], n)
            mine.append(time.perf_counter() - began)
        with lock:
            result.latencies += mine

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(WORKERS)]
    for thread in threads:
        thread.start()
    start.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    result.wall = time.perf_counter() - began
    return result


async def async_phase(
    store: AsyncBaseStore,
    ids: list[str],
    count: int,
    op: Callable[[AsyncBaseStore, str, int], Awaitable[object]],
) -> Result:
    """``op`` ``count`` times in each of 50 tasks on this loop."""
    result = Result()

    async def worker(w: int) -> None:
        for n in range(count):
            began = time.perf_counter()
            await op(store, ids[w], n)
            result.latencies.append(time.perf_counter() - began)

    began = time.perf_counter()
    await asyncio.gather(*(worker(w) for w in range(WORKERS)))
    result.wall = time.perf_counter() - began
    return result


def run_sync(namespace: str, appends: int, loads: int) -> tuple[Result, Result]:
    store = ailib.open_store(URL, namespace=namespace)
    ids = [store.create().session_id for _ in range(WORKERS)]
    # A first call per thread would otherwise time the connection set-up.
    sync_phase(store, ids, 1, lambda s, sid, n: s.exists(sid))
    appended = sync_phase(store, ids, appends, lambda s, sid, n: s.append(sid, message(0, n)))
    loaded = sync_phase(store, ids, loads, lambda s, sid, n: s.load(sid))
    store.close()
    return appended, loaded


async def run_async(namespace: str, appends: int, loads: int) -> tuple[Result, Result]:
    store = ailib.open_async_store(URL, namespace=namespace)
    ids = [(await store.create()).session_id for _ in range(WORKERS)]
    await async_phase(store, ids, 1, lambda s, sid, n: s.exists(sid))
    appended = await async_phase(
        store, ids, appends, lambda s, sid, n: s.append(sid, message(0, n))
    )
    loaded = await async_phase(store, ids, loads, lambda s, sid, n: s.load(sid))
    await store.aclose()
    return appended, loaded


def empty(namespace: str) -> None:
    store = ailib.open_store(URL, namespace=namespace)
    while page := store.list(limit=100).items:
        for summary in page:
            store.delete(summary.session_id)
    store.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--appends", type=int, default=200, help="appends per worker")
    parser.add_argument("--loads", type=int, default=100, help="loads per worker")
    args = parser.parse_args()
    try:
        redis.Redis.from_url(URL).ping()
    except redis.ConnectionError as exc:
        print(f"Redis is not reachable at 127.0.0.1:6379 ({exc}); start redis-server first")
        return 1

    run = uuid.uuid4().hex[:8]
    namespaces = (f"bench-sync-{run}", f"bench-async-{run}")
    try:
        sync_append, sync_load = run_sync(namespaces[0], args.appends, args.loads)
        async_append, async_load = asyncio.run(run_async(namespaces[1], args.appends, args.loads))
    finally:
        for namespace in namespaces:
            empty(namespace)

    print(
        f"{WORKERS} workers; each appends {args.appends} messages to its session, then loads "
        f"it ({args.appends} messages) {args.loads} times"
    )
    header = ("op", "sync ops/s", "async ops/s", "ratio", "sync median", "async median")
    print(
        f"{header[0]:<8}{header[1]:>12}{header[2]:>13}{header[3]:>8}{header[4]:>13}{header[5]:>14}"
    )
    for op, sync, aio in (("append", sync_append, async_append), ("load", sync_load, async_load)):
        print(
            f"{op:<8}{sync.rate:>12,.0f}{aio.rate:>13,.0f}{aio.rate / sync.rate:>8.2f}"
            f"{sync.median_ms:>11.2f}ms{aio.median_ms:>12.2f}ms"
        )
    print("ratio: async ops/s over sync ops/s (above 1: the async store is faster)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
