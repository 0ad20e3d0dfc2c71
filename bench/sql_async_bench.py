"""The SQL store's async twin with 50 concurrent tasks, next to the sync store driven from 50
threads, in the same run.

For SQLite (a file), PostgreSQL and MariaDB (skipped with a note when the server is not
reachable). Each of 50 workers owns a session and first appends ``OPS`` messages to it one
by one, then loads it ``OPS`` times: tasks of one event loop on ``AsyncSQLStore``
(``open_async_store``), or threads of a pool on ``SQLStore`` (``open_store``), both with the
stores' default connection pool (5 + 10 overflow). The table shows throughput (operations
per second of wall time), the median latency of one operation, the async/sync ratios, and
how late a 1 ms heartbeat on the async store's loop ever was (a blocked loop shows there).
Thread medians can look far better than their throughput suggests: the GIL lets one thread
run many operations in a row while the others wait, so read them with the p95 column; the
tasks are served in turn, and their median is close to their mean.

Run: ``.venv/bin/python bench/sql_async_bench.py`` (about 15 s). Tables of a prefix of
the run's own, dropped at the end.
"""

from __future__ import annotations

import asyncio
import os
import socket
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

import ailib
from ailib.async_base import AsyncBaseStore
from ailib.base import BaseStore
from ailib_store_sql import SQLStore

WORKERS = 50
OPS = 20
MESSAGE = {"role": "assistant", "content": "a reply " + "y" * 80}
PG_URL = os.environ.get(
    "AILIB_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
MYSQL_URL = os.environ.get("AILIB_BENCH_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306/test")


@dataclass
class Phase:
    """One side's run of one kind of operation."""

    ops_per_second: float
    median_ms: float
    p95_ms: float


def reachable(url: str, port: int) -> bool:
    parsed = sa.make_url(url)
    try:
        with socket.create_connection((parsed.host or "127.0.0.1", parsed.port or port), 1):
            return True
    except OSError:
        return False


def phase(latencies: list[float], wall: float) -> Phase:
    p95 = statistics.quantiles(latencies, n=20)[-1]
    return Phase(len(latencies) / wall, statistics.median(latencies) * 1000, p95 * 1000)


# -- the sync store from threads ------------------------------------------------------------


def run_threads(store: BaseStore) -> tuple[Phase, Phase]:
    ids = [store.create().session_id for _ in range(WORKERS)]

    def timed(action: Callable[[str], object]) -> Phase:
        def worker(session_id: str) -> list[float]:
            samples = []
            for _ in range(OPS):
                start = time.perf_counter()
                action(session_id)
                samples.append(time.perf_counter() - start)
            return samples

        started = time.perf_counter()
        with ThreadPoolExecutor(WORKERS) as pool:
            latencies = [s for samples in pool.map(worker, ids) for s in samples]
        return phase(latencies, time.perf_counter() - started)

    appends = timed(lambda sid: store.append(sid, MESSAGE))
    loads = timed(store.load)
    return appends, loads


# -- the async twin from tasks --------------------------------------------------------------


async def run_tasks(store: AsyncBaseStore) -> tuple[Phase, Phase, float]:
    ids = [(await store.create()).session_id for _ in range(WORKERS)]
    loop = asyncio.get_running_loop()
    worst = 0.0
    running = True

    async def heartbeat() -> None:
        nonlocal worst
        while running:
            started = loop.time()
            await asyncio.sleep(0.001)
            worst = max(worst, loop.time() - started - 0.001)

    async def timed(action: Callable[[str], Awaitable[object]]) -> Phase:
        async def worker(session_id: str) -> list[float]:
            samples = []
            for _ in range(OPS):
                start = time.perf_counter()
                await action(session_id)
                samples.append(time.perf_counter() - start)
            return samples

        started = time.perf_counter()
        results = await asyncio.gather(*(worker(sid) for sid in ids))
        return phase([s for samples in results for s in samples], time.perf_counter() - started)

    beating = asyncio.create_task(heartbeat())
    appends = await timed(lambda sid: store.append(sid, MESSAGE))
    loads = await timed(store.load)
    running = False
    await beating
    await store.aclose()
    return appends, loads, worst * 1000


def bench(url: str) -> tuple[Phase, Phase, Phase, Phase, float]:
    prefix = f"ab{uuid.uuid4().hex[:6]}_"
    sync = ailib.open_store(url, namespace="bench-sync", table_prefix=prefix)
    assert isinstance(sync, SQLStore)
    try:
        twin = ailib.open_async_store(url, namespace="bench-async", table_prefix=prefix)
        async_append, async_load, lag = asyncio.run(run_tasks(twin))
        sync_append, sync_load = run_threads(sync)
    finally:
        sync.tables.metadata.drop_all(sync.engine)
        sync.close()
    return async_append, sync_append, async_load, sync_load, lag


def main() -> int:
    started = time.perf_counter()
    results = []
    with tempfile.TemporaryDirectory() as folder:
        targets = [("sqlite", f"sqlite:///{Path(folder) / 'bench.db'}")]
        for name, url, port in (("postgresql", PG_URL, 5432), ("mariadb", MYSQL_URL, 3306)):
            if reachable(url, port):
                targets.append((name, url))
            else:
                print(f"# {name}: not reachable, skipped", file=sys.stderr)
        for name, url in targets:
            results.append((name, *bench(url)))
    print(
        f"{WORKERS} workers x {OPS} appends, then x {OPS} loads each; async = AsyncSQLStore "
        f"tasks on one loop, sync = SQLStore from {WORKERS} threads; ratio = async / sync"
    )
    header = (
        f"{'database':<11}{'op':<7}| {'async ops/s':>11}{'sync ops/s':>11}{'ratio':>7} | "
        f"{'async med ms':>12}{'sync med ms':>12}{'ratio':>7} | {'async p95':>9}{'sync p95':>9} | "
        f"{'loop lag ms':>11}"
    )
    print(header)
    print("-" * len(header))
    for name, async_append, sync_append, async_load, sync_load, lag in results:
        for op, a, s in (("append", async_append, sync_append), ("load", async_load, sync_load)):
            print(
                f"{name:<11}{op:<7}| {a.ops_per_second:>11.0f}{s.ops_per_second:>11.0f}"
                f"{a.ops_per_second / s.ops_per_second:>7.2f} | {a.median_ms:>12.2f}"
                f"{s.median_ms:>12.2f}{a.median_ms / s.median_ms:>7.2f} | "
                f"{a.p95_ms:>9.1f}{s.p95_ms:>9.1f} | "
                + (f"{lag:>11.1f}" if op == "append" else f"{'':>11}")
            )
    print(f"total {time.perf_counter() - started:.1f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
