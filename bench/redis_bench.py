"""Append, load and list through ailib's Redis store, next to raw redis-py doing the same
work, alternating rounds in one run.

Raw append is ``RPUSH key json.dumps(message)``; raw load is ``LRANGE key 0 -1`` plus
``json.loads`` of each message, over RESP2 as the store speaks it (the ``load RESP3`` row
times that raw load over redis-py's default RESP3 against RESP2: why the store picks RESP2);
raw listing is ``ZREVRANGE`` of 50 ids then one pipeline of
``HMGET`` of each one's header fields. For appends the server's own time per call (``INFO
commandstats``: EVALSHA for ailib, RPUSH for raw) is printed beside the time the client
waited, so what the server spends and what the client and the network spend show apart.
The ``EVALSHA floor`` row is the least any script-based append costs: a script that does
nothing but the RPUSH, called through redis-py, against the raw RPUSH (its server time is
printed too). Every guarantee ailib keeps (version check, op id, index) costs on top of it.

By default the bench starts a private redis-server of its own (so other clients of a shared
server do not blur its statistics); ``--url`` points it at another one::

    .venv/bin/python bench/redis_bench.py [--appends N] [--loads N] [--lists N] [--url URL]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import redis

import ailib

SIZES = (10, 1_000, 10_000)
FLOOR_SCRIPT = "return redis.call('RPUSH', KEYS[1], ARGV[1])"
LISTED = 200
PAGE = 50
TARGET = 1.3
LIST_TARGET_MS = 2.0


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


@contextlib.contextmanager
def private_server() -> Iterator[str]:
    """A redis-server of this run on a free loopback port (no persistence), stopped after."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    with tempfile.TemporaryDirectory() as directory:
        process = subprocess.Popen(
            [
                *("redis-server", "--bind", "127.0.0.1", "--port", str(port)),
                *("--dir", directory, "--save", "", "--appendonly", "no"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 30
            while True:
                with contextlib.suppress(redis.ConnectionError):
                    if redis.Redis(port=port).ping():
                        break
                if time.monotonic() > deadline:
                    raise RuntimeError("redis-server did not start")
                time.sleep(0.05)
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            process.terminate()
            process.wait(timeout=10)


def server_usec(raw: redis.Redis, command: str, run: Callable[[], object], reps: int) -> float:
    """The server's own microseconds per call of ``command`` while ``run`` runs ``reps``
    times (``INFO commandstats``, reset before each of 5 windows). The server reports a
    mean, which one call descheduled on a busy machine inflates: the lowest window's."""
    means = []
    for _ in range(5):
        raw.config_resetstat()
        for _ in range(reps):
            run()
        stats: dict[str, Any] = raw.info("commandstats")
        means.append(float(stats[f"cmdstat_{command}"]["usec_per_call"]))
    return min(means)


def bench(url: str, args: argparse.Namespace) -> list[str]:
    run = uuid.uuid4().hex[:8]
    raw = redis.Redis.from_url(url, protocol=2)
    raw3 = redis.Redis.from_url(url, protocol=3)
    store = ailib.open_store(url, namespace=f"bench-{run}")
    raw_keys: list[str] = []
    rows: list[tuple[str, str, float, float]] = []
    server: list[tuple[int, float, float]] = []
    floor_server = 0.0
    try:
        for size in SIZES:
            session = store.create({"user_id": "bench"})
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

            def raw3_load(key: str = raw_key) -> None:
                [json.loads(m) for m in raw3.lrange(key, 0, -1)]

            for _ in range(5):  # warm up connections and the script cache
                ours_load()
                raw_load()
                raw3_load()
            rows.append(("load", f"{size:,}", *interleaved(ours_load, raw_load, args.loads)))
            if size == SIZES[1]:
                rows.append(
                    ("load RESP3", f"{size:,}", *interleaved(raw3_load, raw_load, args.loads))
                )
            for _ in range(20):
                ours_append()
                raw_append()
            rows.append(
                ("append", f"{size:,}", *interleaved(ours_append, raw_append, args.appends))
            )
            reps = max(50, args.appends // 10)
            server.append(
                (
                    size,
                    server_usec(raw, "evalsha", ours_append, reps),
                    server_usec(raw, "rpush", raw_append, reps),
                )
            )
            if size == SIZES[0]:
                floor = raw.register_script(FLOOR_SCRIPT)

                def floor_append(
                    key: str = raw_key, new: dict[str, Any] = new, script: Any = floor
                ) -> None:
                    script(keys=[key], args=[json.dumps(new)])

                for _ in range(20):
                    floor_append()
                rows.append(
                    (
                        "EVALSHA floor",
                        f"{size:,}",
                        *interleaved(floor_append, raw_append, args.appends),
                    )
                )
                floor_server = server_usec(raw, "evalsha", floor_append, reps)

        listed = [store.create({"user_id": "lister", "topic": "bench"}) for _ in range(LISTED)]
        for session in listed:
            store.append(session.session_id, message(0))
        index = f"ailib:{{bench-{run}}}:idx"
        fields = ("v", "k", "c", "u", "e", "m:user_id", "m:topic")

        def ours_list() -> None:
            assert len(store.list(limit=PAGE).items) == PAGE

        def raw_list() -> None:
            ids: list[bytes] = raw.zrevrange(index, 0, PAGE - 1)  # type: ignore[assignment]
            pipe = raw.pipeline(transaction=False)
            for member in ids:
                pipe.hmget(f"ailib:{{bench-{run}:{member.decode()}}}:meta", fields)
            assert len(pipe.execute()) == PAGE

        for _ in range(10):
            ours_list()
            raw_list()
        rows.append(("list", f"{PAGE} of {LISTED}", *interleaved(ours_list, raw_list, args.lists)))
    finally:
        for summary in store.list(limit=1000):
            store.delete(summary.session_id)
        store.purge_expired()
        store.close()
        if raw_keys:
            raw.delete(*raw_keys)
        raw.close()
        raw3.close()

    out = [f"ailib RedisStore vs raw redis-py, {url}, medians (append: one message)"]
    out.append(f"{'op':<12}{'messages':>12}{'ailib':>12}{'raw':>12}{'ratio':>8}")
    out.append("(load RESP3: raw redis-py over RESP3 in the ailib column, over RESP2 in raw)")
    for op, what, ours, plain in rows:
        out.append(
            f"{op:<12}{what:>12}{ours * 1e6:>10.0f}µs{plain * 1e6:>10.0f}µs{ours / plain:>8.2f}"
        )
    out.append("append, server side (INFO commandstats, µs per call) and the rest (client+network)")
    out.append(f"{'messages':>10}{'EVALSHA':>10}{'RPUSH':>8}{'ailib rest':>12}{'raw rest':>10}")
    appends = {size: (ours, plain) for op, size, ours, plain in rows if op == "append"}
    for messages, evalsha, rpush in server:
        ours, plain = appends[f"{messages:,}"]
        out.append(
            f"{messages:>10,}{evalsha:>10.1f}{rpush:>8.1f}"
            f"{ours * 1e6 - evalsha:>10.0f}µs{plain * 1e6 - rpush:>8.0f}µs"
        )
    out.append(f"EVALSHA floor, server side: {floor_server:.1f} µs per call")
    ours_small, _ = appends[f"{SIZES[0]:,}"]
    ours_big, _ = appends[f"{SIZES[-1]:,}"]
    out.append(f"append at {SIZES[-1]:,} vs {SIZES[0]} messages: {ours_big / ours_small:.2f}x")
    worst = max(ours / plain for op, _, ours, plain in rows if op == "append")
    verdict = "met" if worst <= TARGET else "MISSED"
    out.append(f"append: worst ratio {worst:.2f}x; target {TARGET}x of raw: {verdict}")
    listing = next(ours for op, _, ours, _ in rows if op == "list")
    verdict = "met" if listing * 1e3 < LIST_TARGET_MS else "MISSED"
    out.append(f"list(limit={PAGE}): {listing * 1e3:.2f} ms; target {LIST_TARGET_MS} ms: {verdict}")
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--appends", type=int, default=1000, help="appends timed per size")
    parser.add_argument("--loads", type=int, default=40, help="loads timed per size")
    parser.add_argument("--lists", type=int, default=200, help="list pages timed")
    parser.add_argument("--url", help="a Redis server to use instead of a private one")
    args = parser.parse_args()
    if args.url is None and shutil.which("redis-server") is None:
        print("redis-server not found: install Redis 7, or give --url redis://host:port/db")
        return 1
    with contextlib.ExitStack() as stack:
        url = args.url or stack.enter_context(private_server())
        try:
            redis.Redis.from_url(url).ping()
        except redis.ConnectionError as exc:
            print(f"Redis is not reachable at {url} ({exc})")
            return 1
        print("\n".join(bench(url, args)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
