"""Faults injected while writers append: the server SIGKILLed and restarted, connections
dropped with ``CLIENT KILL``. Every acknowledged append must be stored exactly once and in
order, every failed one must fail with an ailib error, and the store must recover by itself,
without being reopened. Each run prints its books (faults, acknowledged, lost, duplicated,
errors, time to recover); run with ``-s`` to see them."""

from __future__ import annotations

import asyncio
import statistics
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field

import ailib
from ailib.errors import AilibError

from ..servers.redis import RestartableRedis

WRITERS = 4
SESSIONS = 2
KILLS = 3
CLIENT_KILLS = 3
#: Appends acknowledged between two faults, and by each writer after the last one.
PROGRESS = 30
DEADLINE = 120.0
#: Seconds the server stays down after each kill.
DOWN = 1.5
#: Generous, so that a slow restart on a busy machine is waited out rather than reported.
OPTIONS = {"resend_for": "30s"}


@dataclass
class Books:
    """What the writers and the fault injector saw."""

    acknowledged: dict[str, list[str]] = field(default_factory=dict)  # writer -> contents
    failed: dict[str, list[str]] = field(default_factory=dict)
    errors: Counter[str] = field(default_factory=Counter)
    faults: list[str] = field(default_factory=list)
    #: Monotonic times: when the server answered again, and each acknowledgement.
    back: list[float] = field(default_factory=list)
    acks: list[float] = field(default_factory=list)
    last_ack: dict[str, float] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    stop: threading.Event = field(default_factory=threading.Event)

    def acked(self, writer: str, content: str) -> None:
        with self.lock:
            self.acknowledged.setdefault(writer, []).append(content)
            self.acks.append(time.monotonic())
            self.last_ack[writer] = self.acks[-1]

    def raised(self, writer: str, content: str, exc: BaseException) -> None:
        with self.lock:
            self.failed.setdefault(writer, []).append(content)
            self.errors[type(exc).__name__] += 1
        if not isinstance(exc, AilibError):
            raise exc

    def count(self) -> int:
        with self.lock:
            return len(self.acks)

    def recoveries(self) -> list[float]:
        """Seconds from each restart's first answer to the next acknowledged append."""
        with self.lock:
            return [min(a for a in self.acks if a >= t) - t for t in self.back]


def _wait_for(books: Books, count: int) -> None:
    deadline = time.monotonic() + DEADLINE
    while books.count() < count:
        assert time.monotonic() < deadline, f"writers stalled at {books.count()} appends"
        time.sleep(0.05)


def inject_faults(server: RestartableRedis, books: Books) -> None:
    """Alternate server kills and connection kills, each after writers made progress."""
    admin = server.client()
    try:
        for n in range(max(KILLS, CLIENT_KILLS)):
            if n < CLIENT_KILLS:
                _wait_for(books, books.count() + PROGRESS)
                killed = admin.client_kill_filter(_type="normal", skipme=True)
                books.faults.append(f"CLIENT KILL ({killed} connections)")
            if n < KILLS:
                _wait_for(books, books.count() + PROGRESS)
                server.kill()
                books.faults.append("SIGKILL + restart")
                # Down longer than redis-py's own retries last (about 0.75 s): writes in
                # flight lose their replies and meet a dead server.
                time.sleep(DOWN)
                server.start()
                books.back.append(time.monotonic())
        _wait_for(books, books.count() + WRITERS * PROGRESS)
    finally:
        books.stop.set()
        admin.close()


def check(books: Books, stored: dict[str, list[str]], label: str) -> None:
    """Assert the books balance against what is stored, and print them."""
    lost = duplicated = failed_but_stored = 0
    for writer, acked in books.acknowledged.items():
        session = writer.split("/")[0]
        mine = [c for c in stored[session] if c.startswith(writer + ":")]
        counts = Counter(mine)
        lost += sum(1 for c in acked if counts[c] == 0)
        failed_but_stored += sum(1 for c in books.failed.get(writer, []) if counts[c])
        duplicated += sum(n - 1 for n in counts.values() if n > 1)
        numbers = [int(c.rsplit(":", 1)[1]) for c in mine]
        assert numbers == sorted(numbers), f"{writer}'s appends are out of order: {numbers}"
        unexplained = set(mine) - set(acked) - set(books.failed.get(writer, []))
        assert not unexplained, f"stored but never sent: {unexplained}"
    recoveries = books.recoveries()
    acknowledged = sum(len(a) for a in books.acknowledged.values())
    print(
        f"\n{label}: faults injected {len(books.faults)} ({', '.join(books.faults)}); "
        f"appends acknowledged {acknowledged}; lost {lost}; duplicated {duplicated}; "
        f"failed but stored {failed_but_stored}; "
        f"errors seen by the application {dict(books.errors) or 'none'}; time to recover "
        f"after a restart: median {statistics.median(recoveries):.2f}s, "
        f"max {max(recoveries):.2f}s"
    )
    assert lost == 0
    assert duplicated == 0
    assert failed_but_stored == 0, "an append raised although its message was stored"
    assert len(books.faults) == KILLS + CLIENT_KILLS
    assert len(recoveries) == KILLS
    stale = [w for w in books.acknowledged if books.last_ack[w] <= books.back[-1]]
    assert not stale, f"writers with nothing acknowledged after the last restart: {stale}"


def test_sync_store_loses_and_duplicates_nothing(restartable_redis: RestartableRedis) -> None:
    store = ailib.open_store(restartable_redis.url, namespace=f"f{uuid.uuid4().hex[:8]}", **OPTIONS)
    sessions = [store.create({"user_id": "faults"}).session_id for _ in range(SESSIONS)]
    books = Books()

    def writer(name: str, session_id: str) -> None:
        n = 0
        while not books.stop.is_set():
            content = f"{name}:{n}"
            try:
                store.append(session_id, {"role": "user", "content": content})
            except Exception as exc:
                books.raised(name, content, exc)
            else:
                books.acked(name, content)
            n += 1

    threads = [
        threading.Thread(
            target=writer, args=(f"{sessions[i % SESSIONS]}/w{i}", sessions[i % SESSIONS])
        )
        for i in range(WRITERS)
    ]
    for thread in threads:
        thread.start()
    try:
        inject_faults(restartable_redis, books)
    finally:
        books.stop.set()
        for thread in threads:
            thread.join(timeout=DEADLINE)
    # The same store object, never reopened, reads everything back.
    stored = {s: [m["content"] for m in store.load(s).messages] for s in sessions}
    check(books, stored, "sync RedisStore")
    store.close()


def test_async_store_loses_and_duplicates_nothing(restartable_redis: RestartableRedis) -> None:
    books = Books()

    async def main() -> dict[str, list[str]]:
        store = ailib.open_async_store(
            restartable_redis.url, namespace=f"f{uuid.uuid4().hex[:8]}", **OPTIONS
        )
        sessions = [(await store.create({"user_id": "faults"})).session_id for _ in range(SESSIONS)]

        async def writer(name: str, session_id: str) -> None:
            n = 0
            while not books.stop.is_set():
                content = f"{name}:{n}"
                try:
                    await store.append(session_id, {"role": "user", "content": content})
                except Exception as exc:
                    books.raised(name, content, exc)
                else:
                    books.acked(name, content)
                n += 1

        tasks = [
            asyncio.create_task(writer(f"{sessions[i % SESSIONS]}/w{i}", sessions[i % SESSIONS]))
            for i in range(WRITERS)
        ]
        try:
            await asyncio.to_thread(inject_faults, restartable_redis, books)
        finally:
            books.stop.set()
            await asyncio.gather(*tasks)
        stored = {s: [m["content"] for m in (await store.load(s)).messages] for s in sessions}
        await store.aclose()
        return stored

    stored = asyncio.run(main())
    check(books, stored, "async AsyncRedisStore")
