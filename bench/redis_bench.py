"""Append and load through ailib's Redis store, next to raw redis-py doing the same work.

Raw append is ``RPUSH key json.dumps(message)``; raw load is ``LRANGE key 0 -1`` plus
``json.loads`` of each message. Both run in the same process, interleaved, against
127.0.0.1:6379 (db 0, a namespace and keys of this run, removed at the end)::

    .venv/bin/python bench/redis_bench.py [--appends N] [--loads N]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from typing import Any

import redis

import ailib

URL = "redis://127.0.0.1:6379/0"
SIZES = (10, 1_000, 10_000)
TARGET = 1.3


def message(n: int) -> dict[str, Any]:
    return {"role": "user" if n % 2 else "assistant", "content": f"message {n} " + "lorem " * 30}


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def interleaved(
    ours: Callable[[], object], raw: Callable[[], object], reps: int
) -> tuple[float, float]:
    """Median seconds of each, alternating which goes first to cancel drift."""
    a: list[float] = []
    b: list[float] = []
    for rep in range(reps):
        if rep % 2:
            b.append(timed(raw))
            a.append(timed(ours))
        else:
            a.append(timed(ours))
            b.append(timed(raw))
    return statistics.median(a), statistics.median(b)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--appends", type=int, default=1000, help="appends timed per size")
    parser.add_argument("--loads", type=int, default=40, help="loads timed per size")
    args = parser.parse_args()

    run = uuid.uuid4().hex[:8]
    raw = redis.Redis.from_url(URL)
    try:
        raw.ping()
    except redis.ConnectionError as exc:
        print(f"Redis is not reachable at 127.0.0.1:6379 ({exc}); start redis-server first")
        return 1
    store = ailib.open_store(URL, namespace=f"bench-{run}")
    raw_keys: list[str] = []
    rows: list[tuple[str, int, float, float]] = []
    try:
        for size in SIZES:
            session = store.create()
            sid = session.session_id
            raw_key = f"bench-raw-{run}:{size}"
            raw_keys.append(raw_key)
            history = [message(n) for n in range(size)]
            for start in range(0, size, 1000):
                chunk = history[start : start + 1000]
                store.append(sid, *chunk)
                raw.rpush(raw_key, *(json.dumps(m) for m in chunk))
            new = message(size)

            def ours_append(sid: str = sid, new: dict[str, Any] = new) -> None:
                store.append(sid, new)

            def raw_append(key: str = raw_key, new: dict[str, Any] = new) -> None:
                raw.rpush(key, json.dumps(new))

            def ours_load(sid: str = sid) -> None:
                store.load(sid)

            def raw_load(key: str = raw_key) -> None:
                [json.loads(m) for m in raw.lrange(key, 0, -1)]

            for _ in range(5):  # warm up connections and the script cache
                ours_load()
                raw_load()
            rows.append(("load", size, *interleaved(ours_load, raw_load, args.loads)))
            for _ in range(20):
                ours_append()
                raw_append()
            rows.append(("append", size, *interleaved(ours_append, raw_append, args.appends)))
    finally:
        for summary in store.list(limit=100):
            store.delete(summary.session_id)
        store.purge_expired()
        store.close()
        if raw_keys:
            raw.delete(*raw_keys)
        raw.close()

    print(f"ailib RedisStore vs raw redis-py, {URL}, medians (append: one message)")
    print(f"{'op':<8}{'messages':>10}{'ailib':>12}{'raw':>12}{'ratio':>8}")
    for op, size, ours, plain in rows:
        print(f"{op:<8}{size:>10,}{ours * 1e6:>10.0f}µs{plain * 1e6:>10.0f}µs{ours / plain:>8.2f}")
    appends = {size: ours for op, size, ours, _ in rows if op == "append"}
    flat = appends[SIZES[-1]] / appends[SIZES[0]]
    worst = max(ours / plain for _, _, ours, plain in rows)
    print(f"append at {SIZES[-1]:,} vs {SIZES[0]} messages: {flat:.2f}x (flat is ~1.0)")
    verdict = "met" if worst <= TARGET else "MISSED"
    print(f"worst ratio {worst:.2f}x; target {TARGET}x of raw: {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
