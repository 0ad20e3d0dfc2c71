"""Append, load and list through ailib's SQL store against raw SQLAlchemy Core, in one run.

For SQLite (a file, WAL mode on both sides), PostgreSQL and MariaDB (skipped with a note when
the server is not reachable), and sessions of 10 / 1,000 / 10,000 messages:

* append one message: ailib ``store.append`` (versioned, op id recorded, TTL and listing
  order kept) vs a raw transaction with one INSERT of the same row shape (the raw side tracks
  ``seq`` in the client, which a real app cannot do safely);
* load the whole session: ailib ``store.load`` vs a raw ``SELECT body … ORDER BY seq`` whose
  rows are JSON-decoded;
* ``list(limit=50)`` with 1,000 sessions in the namespace vs a raw ``SELECT`` of the same 51
  rows from the sessions table in listing order, metadata JSON-decoded.

Both sides use tables of the same shape (``define()``), under prefixes of their own, dropped
at the end. Each figure alternates rounds of the two sides (so drift in the machine's speed
hits both alike) and reports the median of the round medians, in milliseconds, with the
ailib/raw ratio; the goals are ratios within 1.3 for append, list under 2 ms on SQLite, and
an append median that stays flat as the history grows. Run: ``.venv/bin/python
bench/sql_bench.py``.
"""

from __future__ import annotations

import functools
import json
import os
import socket
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sqlalchemy as sa

import ailib
from ailib.codec import dumps
from ailib_store_sql import SQLStore, define

SIZES = (10, 1_000, 10_000)
APPENDS = 300
LOADS = {10: 200, 1_000: 40, 10_000: 10}
LISTS = 200
LISTED_SESSIONS = 1_000
ROUNDS = 5
PG_URL = os.environ.get(
    "AILIB_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
MYSQL_URL = os.environ.get("AILIB_BENCH_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306/test")


def reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def medians(action: Callable[[], object], times: int) -> tuple[float, float]:
    """Median wall-clock and median CPU time of this process per call, in ms."""
    wall, cpu = [], []
    for _ in range(times):
        start, start_cpu = time.perf_counter(), time.process_time()
        action()
        cpu.append(time.process_time() - start_cpu)
        wall.append(time.perf_counter() - start)
    return statistics.median(wall) * 1000, statistics.median(cpu) * 1000


Pair = tuple[tuple[float, float], tuple[float, float]]


def alternating(ours: Callable[[], object], theirs: Callable[[], object], times: int) -> Pair:
    """(wall, cpu) medians of ``ROUNDS`` alternating rounds of each side, ``times`` calls
    per side in all: ours, then theirs."""
    a: list[tuple[float, float]] = []
    b: list[tuple[float, float]] = []
    per_round = max(1, times // ROUNDS)
    for _ in range(ROUNDS):
        a.append(medians(ours, per_round))
        b.append(medians(theirs, per_round))

    def middle(side: list[tuple[float, float]]) -> tuple[float, float]:
        return statistics.median(w for w, _ in side), statistics.median(c for _, c in side)

    return middle(a), middle(b)


def _wal(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.execute("PRAGMA journal_mode=WAL")


class Raw:
    """The same INSERT / SELECT with SQLAlchemy Core and nothing else."""

    def __init__(self, url: str, prefix: str) -> None:
        self.engine = sa.create_engine(url)
        if self.engine.dialect.name == "sqlite":
            sa.event.listen(self.engine, "connect", _wal)
        self.tables = define(prefix)
        self.tables.metadata.create_all(self.engine)
        self.seq: dict[str, int] = {}

    def create(self, session_id: str, messages: list[dict[str, str]]) -> None:
        m = self.tables.messages
        with self.engine.begin() as conn:
            conn.execute(
                sa.insert(m),
                [
                    {"namespace": "bench", "session_id": session_id, "seq": i, "body": dumps(x)}
                    for i, x in enumerate(messages)
                ],
            )
        self.seq[session_id] = len(messages)

    def append(self, session_id: str, message: dict[str, str]) -> None:
        seq = self.seq[session_id]
        with self.engine.begin() as conn:
            conn.execute(
                sa.insert(self.tables.messages).values(
                    namespace="bench", session_id=session_id, seq=seq, body=dumps(message)
                )
            )
        self.seq[session_id] = seq + 1

    def load(self, session_id: str) -> list[object]:
        m = self.tables.messages
        query = (
            sa.select(m.c.body)
            .where(m.c.namespace == "bench", m.c.session_id == session_id)
            .order_by(m.c.seq)
        )
        with self.engine.connect() as conn:
            return [json.loads(body) for body in conn.execute(query).scalars()]

    def create_sessions(self, count: int) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                sa.insert(self.tables.sessions),
                [
                    {
                        "namespace": "list",
                        "session_id": f"s{n:05d}",
                        "kind": "chat",
                        "metadata": dumps({"user_id": f"u{n % 7}", "title": "t" * 30}),
                        "user_id": f"u{n % 7}",
                        "version": 1,
                        "message_count": 0,
                        "created_at": 1000.0 + n,
                        "updated_at": 1000.0 + n,
                    }
                    for n in range(count)
                ],
            )

    def list(self, limit: int) -> list[object]:
        s = self.tables.sessions
        query = (
            sa.select(*[c for c in s.c if c.name != "user_id"])
            .where(s.c.namespace == "list")
            .order_by(s.c.updated_at.desc(), s.c.session_id.desc())
            .limit(limit + 1)
        )
        with self.engine.connect() as conn:
            return [json.loads(row.metadata) for row in conn.execute(query)]

    def drop(self) -> None:
        self.tables.metadata.drop_all(self.engine)
        self.engine.dispose()


Row = tuple[str, int, Pair, Pair]


def bench(name: str, url: str) -> tuple[list[Row], Pair]:
    tag = uuid.uuid4().hex[:6]
    store = ailib.open_store(url, namespace="bench", table_prefix=f"bench_{tag}_")
    listing = ailib.open_store(url, namespace="list", table_prefix=f"bench_{tag}_")
    assert isinstance(store, SQLStore)
    raw = Raw(store.engine.url.render_as_string(hide_password=False), f"braw_{tag}_")
    rows = []
    try:
        for size in SIZES:
            history = [{"role": "user", "content": f"message {n} " + "x" * 80} for n in range(size)]
            session_id = store.create(messages=history).session_id
            raw.create(session_id, history)
            message = {"role": "assistant", "content": "a reply " + "y" * 80}
            appends = alternating(
                functools.partial(store.append, session_id, message),
                functools.partial(raw.append, session_id, message),
                APPENDS,
            )
            loads = alternating(
                functools.partial(store.load, session_id),
                functools.partial(raw.load, session_id),
                LOADS[size] * 2,
            )
            rows.append((name, size, appends, loads))
        for n in range(LISTED_SESSIONS):
            listing.create({"user_id": f"u{n % 7}", "title": "t" * 30})
        raw.create_sessions(LISTED_SESSIONS)
        assert len(listing.list(limit=50)) == 50
        listed = alternating(
            functools.partial(listing.list, limit=50), functools.partial(raw.list, 50), LISTS
        )
        return rows, listed
    finally:
        store.tables.metadata.drop_all(store.engine)
        store.close()
        listing.close()
        raw.drop()


def main() -> int:
    started = time.perf_counter()
    targets: list[tuple[str, str]] = []
    with tempfile.TemporaryDirectory() as folder:
        targets.append(("sqlite", f"sqlite:///{Path(folder) / 'bench.db'}"))
        for name, url, port in (("postgresql", PG_URL, 5432), ("mariadb", MYSQL_URL, 3306)):
            host = sa.make_url(url).host or "127.0.0.1"
            if reachable(host, sa.make_url(url).port or port):
                targets.append((name, url))
            else:
                print(f"# {name}: not reachable at {host}, skipped", file=sys.stderr)
        results = [(name, *bench(name, url)) for name, url in targets]
    rows = [row for _, found, _ in results for row in found]
    print("medians in ms (wall clock; cpu = this process's CPU time per call); ratio = ailib / raw")
    header = (
        f"{'database':<11}{'messages':>9} | {'append':>8}{'raw':>8}{'ratio':>7}"
        f"{'cpu':>8}{'raw':>8}{'ratio':>7} | {'load':>9}{'raw':>9}{'ratio':>7}"
    )
    print(header)
    print("-" * len(header))
    for name, size, ((a, a_cpu), (b, b_cpu)), ((c, _), (d, _)) in rows:
        print(
            f"{name:<11}{size:>9,} | {a:>8.3f}{b:>8.3f}{a / b:>7.2f}"
            f"{a_cpu:>8.3f}{b_cpu:>8.3f}{a_cpu / b_cpu:>7.2f} | {c:>9.3f}{d:>9.3f}{c / d:>7.2f}"
        )
    print()
    print(f"list(limit=50), {LISTED_SESSIONS:,} sessions: ailib vs a raw SELECT of the page")
    for name, _found, ((ours, ours_cpu), (theirs, theirs_cpu)) in results:
        print(
            f"{name:<11} {ours:>7.3f} ms {theirs:>7.3f} ms {ours / theirs:>5.2f} | cpu "
            f"{ours_cpu:>7.3f} ms {theirs_cpu:>7.3f} ms {ours_cpu / theirs_cpu:>5.2f}"
        )
    print()
    for name, _url in targets:
        walls = [a[0][0] for n, _, a, _ in rows if n == name]
        print(f"{name}: append at 10,000 messages / at 10 messages = {walls[-1] / walls[0]:.2f}")
    print(f"total {time.perf_counter() - started:.1f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
