"""Faults injected between the store and S3, with the books kept.

Writers append numbered messages to one session through the fault proxy
(:mod:`tests.s3.faultproxy`, in front of moto's server) while it answers 503s, drops
connections before and after the request reached S3, and delays replies past the client's
timeout. Afterwards, read straight from moto:

* every append that returned is stored exactly once, at the position its version says, and
  each writer's acknowledged appends are in the writer's order;
* nothing is duplicated, and an append that raised was not stored either (the store found
  out before raising);
* every error the writers saw is an ``AilibError``;
* once the faults stop, every writer appends again, on the same store objects.

A summary table is printed (``pytest -s`` or the CI log shows it).
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

import pytest

from ailib.errors import AilibError
from ailib.registry import open_async_store, open_store

from .faultproxy import Faults, proxy

#: (mode, share of requests hit, delay) — each phase lasts PHASE seconds.
PHASES = (
    ("503", 0.3, 0.0),
    ("drop_before", 0.3, 0.0),
    ("drop_after", 0.3, 0.0),
    ("delay", 0.25, 2.0),
)
PHASE = 1.5
#: Options of the stores under test: the delay phase outlasts the timeout.
OPTIONS = "&timeout=1s&retries=2"
STORES, WRITERS_PER_STORE = 2, 3
#: Acknowledged appends each writer needs after the faults stop.
AFTER = 3
#: How long the writers may take to recover before the test fails.
RECOVERY_DEADLINE = 60.0


@dataclass
class Books:
    """What the writers saw."""

    acked: dict[str, list[tuple[int, int]]] = field(default_factory=dict)  # writer: (n, version)
    raised: dict[str, list[int]] = field(default_factory=dict)  # writer: n
    errors: Counter[str] = field(default_factory=Counter)
    foreign: list[BaseException] = field(default_factory=list)
    recovered: dict[str, float] = field(default_factory=dict)  # writer: seconds after faults off
    lock: threading.Lock = field(default_factory=threading.Lock)

    def ack(self, writer: str, n: int, version: int) -> None:
        with self.lock:
            self.acked.setdefault(writer, []).append((n, version))

    def fail(self, writer: str, n: int, exc: BaseException) -> None:
        with self.lock:
            self.raised.setdefault(writer, []).append(n)
            self.errors[type(exc).__name__] += 1
            if not isinstance(exc, AilibError):
                self.foreign.append(exc)


@dataclass
class Clock:
    """The faults' schedule; ``off`` is when they stopped (monotonic), None while on."""

    off: float | None = None
    done: threading.Event = field(default_factory=threading.Event)


def _drive_faults(faults: Faults, clock: Clock) -> None:
    for mode, rate, delay in PHASES:
        faults.set(mode, rate, delay)
        time.sleep(PHASE)
    faults.off()
    clock.off = time.monotonic()


def _content(writer: str, n: int) -> str:
    return f"{writer}:{n}"


def _check(books: Books, stored: list[str], version: int, injected: int) -> dict[str, Any]:
    """The books against what is stored; the summary row."""
    counts = Counter(stored)
    duplicated = sum(c - 1 for c in counts.values() if c > 1)
    acked = sum(len(a) for a in books.acked.values())
    lost, misplaced, out_of_order, raised_but_stored = 0, 0, 0, 0
    for writer, appends in books.acked.items():
        positions = []
        for n, acked_version in appends:
            content = _content(writer, n)
            if counts[content] == 0:
                lost += 1
                continue
            index = acked_version - 2  # created at version 1, one message per append
            if not (0 <= index < len(stored)) or stored[index] != content:
                misplaced += 1
            positions.append(stored.index(content))
        out_of_order += sum(1 for a, b in pairwise(positions) if a > b)
    for writer, numbers in books.raised.items():
        raised_but_stored += sum(1 for n in numbers if counts[_content(writer, n)])
    recover = max(books.recovered.values()) if books.recovered else float("nan")
    return {
        "faults injected": injected,
        "appends acknowledged": acked,
        "appends raised": sum(len(r) for r in books.raised.values()),
        "lost": lost,
        "duplicated": duplicated,
        "misplaced": misplaced,
        "out of order": out_of_order,
        "raised but stored": raised_but_stored,
        "stored": len(stored),
        "stored version": version,
        "error classes": dict(books.errors) or "-",
        "time to recover (s)": round(recover, 2),
    }


def _report(name: str, faults: Faults, row: dict[str, Any], capsys: Any) -> None:
    with capsys.disabled():
        print(f"\n[{name}] faults by kind: {dict(faults.injected)}")
        width = max(len(k) for k in row)
        for key, value in row.items():
            print(f"  {key:<{width}}  {value}")


def _assert_books(books: Books, row: dict[str, Any], stored: list[str]) -> None:
    assert books.foreign == [], "every error must be an AilibError"
    assert row["faults injected"] > 0
    assert row["appends acknowledged"] > 0
    assert row["lost"] == 0
    assert row["duplicated"] == 0
    assert row["misplaced"] == 0
    assert row["out of order"] == 0
    assert row["raised but stored"] == 0
    assert row["stored version"] == len(stored) + 1
    assert len(books.recovered) == STORES * WRITERS_PER_STORE, "every writer recovered"


@pytest.fixture
def through_proxy(moto_endpoint: str, moto_bucket: str) -> Iterator[tuple[str, str, Faults]]:
    """(URL through the fault proxy, the same URL straight to moto, the proxy's faults)."""
    prefix = f"f{uuid.uuid4().hex[:8]}"
    with proxy(moto_endpoint) as (endpoint, faults):
        yield (
            f"s3://{moto_bucket}/{prefix}?endpoint_url={endpoint}{OPTIONS}",
            f"s3://{moto_bucket}/{prefix}?endpoint_url={moto_endpoint}",
            faults,
        )


def _stored(direct_url: str, session_id: str) -> tuple[list[str], int]:
    with open_store(direct_url) as reader:
        loaded = reader.load(session_id)
    return [m["content"] for m in loaded.messages], loaded.version


def test_sync_writers_through_faults(
    through_proxy: tuple[str, str, Faults], capsys: pytest.CaptureFixture[str]
) -> None:
    url, direct_url, faults = through_proxy
    with open_store(direct_url) as setup:
        session_id = setup.create().session_id
    stores = [open_store(url) for _ in range(STORES)]
    books, clock = Books(), Clock()

    def writer(store: Any, name: str) -> None:
        n, after = 0, 0
        deadline = time.monotonic() + len(PHASES) * PHASE + RECOVERY_DEADLINE
        while after < AFTER and time.monotonic() < deadline:
            n += 1
            started = time.monotonic()
            try:
                version = store.append(session_id, {"role": "user", "content": _content(name, n)})
            except Exception as exc:
                books.fail(name, n, exc)
                continue
            books.ack(name, n, version)
            off = clock.off
            if off is not None and started >= off:
                after += 1
                with books.lock:
                    books.recovered.setdefault(name, time.monotonic() - off)

    threads = [
        threading.Thread(target=writer, args=(stores[s], f"s{s}w{w}"))
        for s in range(STORES)
        for w in range(WRITERS_PER_STORE)
    ]
    for thread in threads:
        thread.start()
    _drive_faults(faults, clock)
    for thread in threads:
        thread.join()
    for store in stores:
        store.close()
    stored, version = _stored(direct_url, session_id)
    row = _check(books, stored, version, faults.total)
    _report("sync S3Store, 2 stores x 3 threads", faults, row, capsys)
    _assert_books(books, row, stored)


def test_async_writers_through_faults(
    through_proxy: tuple[str, str, Faults], capsys: pytest.CaptureFixture[str]
) -> None:
    url, direct_url, faults = through_proxy
    with open_store(direct_url) as setup:
        session_id = setup.create().session_id
    books, clock = Books(), Clock()

    async def writer(store: Any, name: str) -> None:
        n, after = 0, 0
        deadline = time.monotonic() + len(PHASES) * PHASE + RECOVERY_DEADLINE
        while after < AFTER and time.monotonic() < deadline:
            n += 1
            started = time.monotonic()
            try:
                message = {"role": "user", "content": _content(name, n)}
                version = await store.append(session_id, message)
            except Exception as exc:
                books.fail(name, n, exc)
                continue
            books.ack(name, n, version)
            off = clock.off
            if off is not None and started >= off:
                after += 1
                books.recovered.setdefault(name, time.monotonic() - off)

    async def scenario() -> None:
        stores = [open_async_store(url) for _ in range(STORES)]
        faults_thread = threading.Thread(target=_drive_faults, args=(faults, clock))
        faults_thread.start()
        try:
            await asyncio.gather(
                *(
                    writer(stores[s], f"s{s}t{w}")
                    for s in range(STORES)
                    for w in range(WRITERS_PER_STORE)
                )
            )
        finally:
            await asyncio.to_thread(faults_thread.join)
            for store in stores:
                await store.aclose()

    asyncio.run(scenario())
    stored, version = _stored(direct_url, session_id)
    row = _check(books, stored, version, faults.total)
    _report("async AsyncS3Store, 2 stores x 3 tasks", faults, row, capsys)
    _assert_books(books, row, stored)
