"""The S3 store's async twin with 50 concurrent tasks, next to the sync store driven from 50
threads, in the same run, against moto's S3 server (started here, in a process of its own,
on 127.0.0.1).

Three phases per side, each of 50 workers doing ``OPS`` operations one after another:
appends to a session of its own, appends to one of 10 sessions shared by 5 workers each
(group commit batches them into shared conditional writes), and loads of its own session
(whose tail holds the 20 messages appended before). The async side is ``AsyncS3Store``
(``open_async_store``) on one event loop; the sync side is ``S3Store`` (``open_store``) on a
pool of 50 threads; both with their default options. The table shows throughput
(operations per second of wall time), the median and p95 latency of one operation, the
async/sync throughput ratio, and how late a 1 ms heartbeat on the async store's loop ever was.
moto's server is the bottleneck of both sides: read the ratios, not the absolute numbers.

Run: ``.venv/bin/python bench/s3_async_bench.py`` (about 30 s).
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import boto3

import ailib
from ailib.async_base import AsyncBaseStore
from ailib.base import BaseStore
from ailib_store_s3.moto import serve

WORKERS = 50
SHARED = 10
OPS = 20
MESSAGE = {"role": "assistant", "content": "a reply " + "y" * 80}
BUCKET = "ailib-bench"


@dataclass
class Phase:
    ops_per_second: float
    median_ms: float
    p95_ms: float


def phase(latencies: list[float], wall: float) -> Phase:
    ordered = sorted(latencies)
    return Phase(
        len(latencies) / wall,
        statistics.median(ordered) * 1000,
        ordered[int(len(ordered) * 0.95) - 1] * 1000,
    )


def targets(own: list[str], shared: list[str]) -> dict[str, list[str]]:
    """Each phase's session per worker."""
    return {
        "append (own session)": own,
        f"append ({SHARED} shared sessions)": [shared[w % SHARED] for w in range(WORKERS)],
        "load (own session)": own,
    }


def run_threads(store: BaseStore) -> dict[str, Phase]:
    own = [store.create().session_id for _ in range(WORKERS)]
    shared = [store.create().session_id for _ in range(SHARED)]
    actions: list[Callable[[str], object]] = [
        lambda s: store.append(s, MESSAGE),
        lambda s: store.append(s, MESSAGE),
        lambda s: store.load(s),
    ]
    results: dict[str, Phase] = {}
    with ThreadPoolExecutor(WORKERS) as pool:
        for (name, sessions), action in zip(targets(own, shared).items(), actions, strict=True):

            def worker(session_id: str, act: Callable[[str], object] = action) -> list[float]:
                times = []
                for _ in range(OPS):
                    started = time.perf_counter()
                    act(session_id)
                    times.append(time.perf_counter() - started)
                return times

            started = time.perf_counter()
            latencies = [t for ts in pool.map(worker, sessions) for t in ts]
            results[name] = phase(latencies, time.perf_counter() - started)
    return results


async def run_tasks(store: AsyncBaseStore) -> tuple[dict[str, Phase], float]:
    loop = asyncio.get_running_loop()
    worst = 0.0
    done = asyncio.Event()

    async def heartbeat() -> None:
        nonlocal worst
        while not done.is_set():
            started = loop.time()
            await asyncio.sleep(0.001)
            worst = max(worst, loop.time() - started - 0.001)

    own = [(await store.create()).session_id for _ in range(WORKERS)]
    shared = [(await store.create()).session_id for _ in range(SHARED)]
    actions: list[Callable[[str], Awaitable[object]]] = [
        lambda s: store.append(s, MESSAGE),
        lambda s: store.append(s, MESSAGE),
        lambda s: store.load(s),
    ]
    beating = asyncio.create_task(heartbeat())
    results: dict[str, Phase] = {}
    for (name, sessions), action in zip(targets(own, shared).items(), actions, strict=True):

        async def worker(
            session_id: str, act: Callable[[str], Awaitable[object]] = action
        ) -> list[float]:
            times = []
            for _ in range(OPS):
                started = time.perf_counter()
                await act(session_id)
                times.append(time.perf_counter() - started)
            return times

        started = time.perf_counter()
        latencies = [t for ts in await asyncio.gather(*map(worker, sessions)) for t in ts]
        results[name] = phase(latencies, time.perf_counter() - started)
    done.set()
    await beating
    return results, worst


async def async_side(url: str) -> tuple[dict[str, Phase], float]:
    async with ailib.open_async_store(url, namespace=f"a{uuid.uuid4().hex[:6]}") as store:
        return await run_tasks(store)


def main() -> int:
    for name, value in {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench"}.items():
        os.environ.setdefault(name, value)
    started = time.perf_counter()
    with serve() as endpoint:
        boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1").create_bucket(
            Bucket=BUCKET
        )
        url = f"s3://{BUCKET}/bench?endpoint_url={endpoint}&region=us-east-1"
        with ailib.open_store(url, namespace=f"s{uuid.uuid4().hex[:6]}") as sync_store:
            threads = run_threads(sync_store)
        tasks, worst = asyncio.run(async_side(url))
    print(f"{WORKERS} workers x {OPS} operations each, moto's S3 server on 127.0.0.1\n")
    header = (
        f"{'phase':<28} {'async op/s':>10} {'sync op/s':>10} {'ratio':>6} "
        f"{'async p50/p95 ms':>17} {'sync p50/p95 ms':>16}"
    )
    print(header)
    print("-" * len(header))
    for name, a in tasks.items():
        s = threads[name]
        print(
            f"{name:<28} {a.ops_per_second:>10.0f} {s.ops_per_second:>10.0f} "
            f"{a.ops_per_second / s.ops_per_second:>6.2f} "
            f"{a.median_ms:>8.1f}/{a.p95_ms:<8.1f} {s.median_ms:>7.1f}/{s.p95_ms:<8.1f}"
        )
    print(f"\nasync loop heartbeat: worst delay {worst * 1000:.1f} ms")
    print(f"total {time.perf_counter() - started:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
