"""Faults injected while writers append, with the books kept.

Writer threads (or tasks, for the async twin) append numbered messages to one session while
the test ends the store's own server connections (``pg_terminate_backend`` of the backends
carrying this test's ``application_name``; MariaDB ``KILL`` of the connection ids the store's
engine opened, and nothing else: the servers are shared). Afterwards every append that
returned is in the session exactly once and in its writer's order, no message is there twice,
every error the application saw is an ``AilibError``, and the same store object works again.
SQLite: another connection holds the write lock past the busy timeout.

Each case prints its row of the table: faults injected, appends acknowledged, lost,
duplicated, error classes, and the time from a fault to the next acknowledged append.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

import ailib
from ailib.errors import AilibError
from tests.servers.sql import mysql_url, postgres_url

WRITERS = 4
FAULT_ROUNDS = 12


@dataclass
class Books:
    """What the application saw."""

    acknowledged: list[tuple[int, int, float]] = field(default_factory=list)  # writer, n, t
    errors: Counter[str] = field(default_factory=Counter)
    foreign: list[BaseException] = field(default_factory=list)
    faults: list[float] = field(default_factory=list)
    #: Server connections ended in all.
    killed: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def ack(self, writer: int, n: int) -> None:
        with self.lock:
            self.acknowledged.append((writer, n, time.monotonic()))

    def failed(self, exc: BaseException) -> None:
        with self.lock:
            self.errors[type(exc).__name__] += 1
            if not isinstance(exc, AilibError):
                self.foreign.append(exc)

    def check(self, label: str, messages: list[dict[str, Any]], capsys: Any) -> None:
        contents = [m["content"] for m in messages]
        seen = Counter(contents)
        duplicated = sum(n - 1 for n in seen.values() if n > 1)
        lost = [(w, n) for w, n, _ in self.acknowledged if seen[f"w{w}-{n}"] != 1]
        recovery = []
        for fault in self.faults:
            after = [t for _, _, t in self.acknowledged if t > fault]
            if after:
                recovery.append(min(after) - fault)
        row = (
            f"| {label} | {len(self.faults)} ({self.killed}) | {len(self.acknowledged)} | "
            f"{len(lost)} | {duplicated} | {dict(self.errors) or '-'} | "
            f"median {statistics.median(recovery) * 1000:.0f} ms, "
            f"max {max(recovery) * 1000:.0f} ms |"
            if recovery
            else f"| {label} | {len(self.faults)} ({self.killed}) | {len(self.acknowledged)} | "
            f"{len(lost)} | {duplicated} | {dict(self.errors) or '-'} | - |"
        )
        with capsys.disabled():
            print(
                "\n| store | faults (connections ended) | acknowledged | lost | duplicated | "
                f"errors seen | time from a fault to the next acknowledged append |\n{row}"
            )
        assert not self.foreign, self.foreign
        assert lost == []
        assert duplicated == 0
        for writer in range(WRITERS):
            mine = [c for c in contents if c.startswith(f"w{writer}-")]
            numbers = [int(c.split("-")[1]) for c in mine]
            assert numbers == sorted(numbers), f"writer {writer}'s messages are out of order"
        assert len(self.faults) == FAULT_ROUNDS
        assert recovery, "no append was acknowledged after a fault"


# -- killing the store's own connections ----------------------------------------------------


class Killer:
    """Ends the server connections the store's engine opened, and only those."""

    def __init__(self, engine: sa.Engine | AsyncEngine, admin_url: str, app_name: str) -> None:
        sync = engine.sync_engine if isinstance(engine, AsyncEngine) else engine
        self.backend = sync.dialect.name
        self.app_name = app_name
        self.ids: set[int] = set()
        self._lock = threading.Lock()
        self.admin = sa.create_engine(admin_url, poolclass=sa.pool.NullPool)
        sa.event.listen(sync, "connect", self._opened)

    def _opened(self, dbapi_connection: Any, _record: Any) -> None:
        raw = getattr(dbapi_connection, "_connection", dbapi_connection)
        pid = getattr(getattr(raw, "info", None), "backend_pid", None)
        number = raw.thread_id() if pid is None else pid
        with self._lock:
            self.ids.add(int(number))

    def kill(self) -> int:
        """End every connection the store opened; returns how many the server ended."""
        with self._lock:
            ids, self.ids = sorted(self.ids), set()
        ended = 0
        with self.admin.connect() as conn:
            if self.backend == "postgresql":
                found = conn.execute(
                    sa.text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE application_name = :name AND pid = ANY(:pids)"
                    ),
                    {"name": self.app_name, "pids": ids},
                )
                return sum(bool(ok) for ok in found.scalars())
            for number in ids:
                try:
                    conn.exec_driver_sql(f"KILL {int(number)}")
                    ended += 1
                except sa.exc.DBAPIError:
                    pass  # already gone
        return ended

    def run(self, books: Books, stop: threading.Event) -> None:
        for _ in range(FAULT_ROUNDS):
            time.sleep(random.uniform(0.08, 0.2))
            books.killed += self.kill()
            books.faults.append(time.monotonic())
        time.sleep(0.3)
        stop.set()


def _target(backend: str) -> tuple[str, str, str]:
    """The store URL (with this test's application name), the admin URL, and the name."""
    name = f"ailib-fault-{uuid.uuid4().hex[:8]}"
    if backend == "postgresql":
        base = postgres_url()
        return f"{base}?application_name={name}", base, name
    base = mysql_url()
    return base, base, name


@pytest.mark.parametrize("backend", ["postgresql", "mariadb"])
def test_killed_connections_lose_and_duplicate_nothing(backend: str, capsys: Any) -> None:
    url, admin, name = _target(backend)
    books, stop = Books(), threading.Event()
    with ailib.open_store(url, namespace=name) as store:
        killer = Killer(store.engine, admin, name)  # type: ignore[attr-defined]
        store.create(session_id="s")

        def writer(w: int) -> None:
            n = 0
            while not stop.is_set():
                try:
                    store.append("s", {"role": "user", "content": f"w{w}-{n}"})
                    books.ack(w, n)
                except Exception as exc:  # the books record every class
                    books.failed(exc)
                n += 1

        threads = [threading.Thread(target=writer, args=(w,)) for w in range(WRITERS)]
        for thread in threads:
            thread.start()
        killer.run(books, stop)
        for thread in threads:
            thread.join()
        # The same store object, never reopened, works again.
        store.append("s", {"role": "user", "content": "after"})
        messages = store.load("s").messages
        killer.admin.dispose()
    assert messages[-1]["content"] == "after"
    books.check(f"{backend} sync", messages[:-1], capsys)


@pytest.mark.parametrize("backend", ["postgresql", "mariadb"])
def test_killed_connections_lose_and_duplicate_nothing_async(backend: str, capsys: Any) -> None:
    url, admin, name = _target(backend)
    books, stop = Books(), threading.Event()

    async def scenario() -> list[dict[str, Any]]:
        async with ailib.open_async_store(url, namespace=name) as store:
            await store.create(session_id="s")
            killer = Killer(store.engine, admin, name)  # type: ignore[attr-defined]

            async def writer(w: int) -> None:
                n = 0
                while not stop.is_set():
                    try:
                        await store.append("s", {"role": "user", "content": f"w{w}-{n}"})
                        books.ack(w, n)
                    except Exception as exc:  # the books record every class
                        books.failed(exc)
                    n += 1

            tasks = [asyncio.create_task(writer(w)) for w in range(WRITERS)]
            await asyncio.to_thread(killer.run, books, stop)
            await asyncio.gather(*tasks)
            await store.append("s", {"role": "user", "content": "after"})
            killer.admin.dispose()
            return (await store.load("s")).messages

    messages = asyncio.run(scenario())
    assert messages[-1]["content"] == "after"
    books.check(f"{backend} async", messages[:-1], capsys)


# -- SQLite: another writer holds the lock ----------------------------------------------------


def _hold_lock(path: Path, books: Books, stop: threading.Event, hold: float) -> None:
    """Another connection takes the write lock and keeps it past the store's busy timeout."""
    # The writers take the lock in a tight loop; under load they can keep it from this
    # connection for longer than sqlite3's default 5 s busy timeout, so it waits longer.
    engine = sa.create_engine(
        f"sqlite:///{path}", poolclass=sa.pool.NullPool, connect_args={"timeout": 120}
    )
    try:
        for _ in range(FAULT_ROUNDS):
            time.sleep(random.uniform(0.05, 0.15))
            with engine.connect() as conn:
                conn.exec_driver_sql("BEGIN IMMEDIATE")
                books.killed += 1
                time.sleep(hold)
                conn.exec_driver_sql("ROLLBACK")
            books.faults.append(time.monotonic())
        time.sleep(0.3)
    finally:
        stop.set()
        engine.dispose()


def _check_locked_errors(books: Books) -> None:
    assert books.errors, "no append met the held lock"
    assert set(books.errors) == {"StoreUnavailable"}


@pytest.mark.parametrize("twin", [False, True], ids=["sync", "async"])
def test_sqlite_writer_holding_the_lock_loses_nothing(
    tmp_path: Path, twin: bool, capsys: Any
) -> None:
    path = tmp_path / "s.db"
    url = f"sqlite:///{path}?timeout=0.1"
    books, stop = Books(), threading.Event()
    messages: list[dict[str, Any]]
    raised: list[str] = []

    def record(exc: BaseException) -> None:
        books.failed(exc)
        raised.append(str(exc))

    if not twin:
        with ailib.open_store(url) as store:
            store.create(session_id="s")

            def writer(w: int) -> None:
                n = 0
                while not stop.is_set():
                    try:
                        store.append("s", {"role": "user", "content": f"w{w}-{n}"})
                        books.ack(w, n)
                    except Exception as exc:  # the books record every class
                        record(exc)
                    n += 1

            _run_threads(writer, lambda: _hold_lock(path, books, stop, 0.3))
            messages = store.load("s").messages
    else:

        async def scenario() -> list[dict[str, Any]]:
            async with ailib.open_async_store(url) as store:
                await store.create(session_id="s")

                async def writer(w: int) -> None:
                    n = 0
                    while not stop.is_set():
                        try:
                            await store.append("s", {"role": "user", "content": f"w{w}-{n}"})
                            books.ack(w, n)
                        except Exception as exc:  # the books record every class
                            record(exc)
                        n += 1

                tasks = [asyncio.create_task(writer(w)) for w in range(WRITERS)]
                await asyncio.to_thread(_hold_lock, path, books, stop, 0.3)
                await asyncio.gather(*tasks)
                return (await store.load("s")).messages

        messages = asyncio.run(scenario())
    books.check(f"sqlite {'async' if twin else 'sync'}", messages, capsys)
    _check_locked_errors(books)
    assert all("locked by another writer" in text for text in raised)
    # A refused append (the lock was never taken) left nothing behind.
    assert len(messages) == len(books.acknowledged)


def _run_threads(writer: Callable[[int], None], fault: Callable[[], None]) -> None:
    threads = [threading.Thread(target=writer, args=(w,)) for w in range(WRITERS)]
    for thread in threads:
        thread.start()
    fault()
    for thread in threads:
        thread.join()
