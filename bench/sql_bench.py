"""Append and load through ailib's SQL store against raw SQLAlchemy Core, in the same run.

For SQLite (a file), PostgreSQL and MariaDB (skipped with a note when the server is not
reachable), and sessions of 10 / 1,000 / 10,000 messages:

* append one message: ailib ``store.append`` vs a raw transaction with one INSERT of the same
  row shape (the raw side tracks ``seq`` in the client, which a real app cannot do safely);
* load the whole session: ailib ``store.load`` vs a raw ``SELECT body … ORDER BY seq`` whose
  rows are JSON-decoded.

Both sides use tables of the same shape (``define()``), under prefixes of their own, dropped at
the end. Medians in milliseconds, ailib/raw ratios; the goal is ratios within 1.3 and an append
median that stays flat as the history grows. Run: ``.venv/bin/python bench/sql_bench.py``.
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

import sqlalchemy as sa

import ailib
from ailib.codec import dumps
from ailib_store_sql import SQLStore, define

SIZES = (10, 1_000, 10_000)
APPENDS = 300
LOADS = {10: 200, 1_000: 40, 10_000: 10}
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


def median_ms(action: Callable[[], object], times: int) -> float:
    samples = []
    for _ in range(times):
        start = time.perf_counter()
        action()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples) * 1000


class Raw:
    """The same INSERT / SELECT with SQLAlchemy Core and nothing else."""

    def __init__(self, url: str, prefix: str) -> None:
        self.engine = sa.create_engine(url)
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

    def drop(self) -> None:
        self.tables.metadata.drop_all(self.engine)
        self.engine.dispose()


def bench(name: str, url: str) -> list[tuple[str, int, float, float, float, float]]:
    tag = uuid.uuid4().hex[:6]
    store = ailib.open_store(url, namespace="bench", table_prefix=f"bench_{tag}_")
    assert isinstance(store, SQLStore)
    raw = Raw(store.engine.url.render_as_string(hide_password=False), f"braw_{tag}_")
    rows = []
    try:
        for size in SIZES:
            history = [{"role": "user", "content": f"message {n} " + "x" * 80} for n in range(size)]
            session_id = store.create(messages=history).session_id
            raw.create(session_id, history)
            message = {"role": "assistant", "content": "a reply " + "y" * 80}
            # Interleave the two sides so drift in the machine's speed hits both alike.
            ours_append: list[float] = []
            raw_append: list[float] = []
            ours = functools.partial(store.append, session_id, message)
            theirs = functools.partial(raw.append, session_id, message)
            for _ in range(3):
                ours_append.append(median_ms(ours, APPENDS // 3))
                raw_append.append(median_ms(theirs, APPENDS // 3))
            loads = LOADS[size]
            ours_load = median_ms(functools.partial(store.load, session_id), loads)
            raw_load = median_ms(functools.partial(raw.load, session_id), loads)
            a, b = statistics.median(ours_append), statistics.median(raw_append)
            rows.append((name, size, a, b, ours_load, raw_load))
    finally:
        store.tables.metadata.drop_all(store.engine)
        store.close()
        raw.drop()
    return rows


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
        rows = [row for name, url in targets for row in bench(name, url)]
    header = (
        f"{'database':<11}{'messages':>9} | {'append ailib':>12}{'raw':>8}{'ratio':>7} | "
        f"{'load ailib':>11}{'raw':>9}{'ratio':>7}"
    )
    print("medians in ms; ratio = ailib / raw SQLAlchemy Core")
    print(header)
    print("-" * len(header))
    for name, size, a, b, c, d in rows:
        print(
            f"{name:<11}{size:>9,} | {a:>12.3f}{b:>8.3f}{a / b:>7.2f} | "
            f"{c:>11.3f}{d:>9.3f}{c / d:>7.2f}"
        )
    print()
    for name, _url in targets:
        appends = [a for n, _, a, *_ in rows if n == name]
        print(
            f"{name}: append at 10,000 messages / at 10 messages = {appends[-1] / appends[0]:.2f}"
        )
    print(f"total {time.perf_counter() - started:.1f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
