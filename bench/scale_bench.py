"""How ailib's costs grow with the work, on every backend with a server here.

For each backend (SQLite file, PostgreSQL, MariaDB, Redis, S3 on moto's server, which this
script starts on 127.0.0.1), through the public API only:

* ``list(limit=50)`` and ``list(user_id=…, limit=50)`` with N sessions in the store, for each
  N of ``--sizes`` (the store grows from one size to the next); beside the figure at the
  smallest size. Flat means ≤ 1.5x from the smallest to the largest.
* ``purge_expired()`` of 1,000 expired sessions at each N live ones (flat in N means the
  purge never walks the live), and at the largest N of N/10 expired (time per expired
  session beside the 1,000 figure); afterwards a sample of live sessions is checked to be
  untouched.
* ``load(last=20)`` and ``append`` on a session of ``--history`` messages beside a session of
  10 messages.
* bytes on the server per byte of message JSON for that long session, beside the raw layout
  (the same JSON strings in an RPUSH list / a (session, seq, body) table / one S3 object),
  and the client's peak memory (tracemalloc) loading it, beside the raw driver's read.

After each size is added, PostgreSQL's and MariaDB's tables are ANALYZEd, as autovacuum and
persistent statistics do in a deployment a while after a table grew: the bench grows a table
tenfold in seconds, and PostgreSQL planned on the small table's statistics then reads every
live row for a page (list(limit=50) 6.3x from 1,000 to 10,000 sessions, raw 4.6x; flat once
analyzed).

Every size is checked through ailib before it is timed: a sample of sessions loads, a user's
sessions listed page by page number what was added, and the store's raw count of live
sessions (the driver's ``COUNT(*)`` / ``ZCARD`` / object listing) is the size; after each
purge the raw count is the live count again.

Run: ``.venv/bin/python bench/scale_bench.py`` (sizes 1,000 / 10,000; S3 200 / 600;
a history of 20,000 messages: what ``make bench`` runs, ~4 min here). The full run
(``make bench-full``, ~35 min here) is
``--sizes 1000,100000,1000000 --s3-sizes 1000,10000 --history 100000 --bulk-seed``:
adding a million sessions one by one through ailib takes ~20 min per SQL server here, so
``--bulk-seed`` creates one template session through ailib and copies its rows in batched
INSERTs (its own id, user and a distinct ``updated_at`` each). Redis always adds through
ailib (~3,000 creates/s on 8 threads). S3 adds through ailib too (~50 creates/s on moto's
server, so ``--s3-sizes 1000,100000`` takes ~35 min more): a copied S3 session would need
its index marker keys and manifest times rewritten, and copies that all share one marker
interval would make listing read every one of them. ``--backends redis,sqlite`` picks backends.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import functools
import json
import os
import socket
import statistics
import tempfile
import time
import tracemalloc
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import boto3
import redis
import sqlalchemy as sa

import ailib
from ailib.store import SessionStore
from ailib_store_s3.moto import serve

PG_URL = os.environ.get("AILIB_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
MYSQL_URL = os.environ.get("AILIB_BENCH_MYSQL_URL", "mariadb://root@127.0.0.1:3306/test")
REDIS_DB = 13
USERS = 1_000
PURGED = 1_000  # expired sessions purged at each size (fewer if the smallest size is smaller)
LIVE_TTL = "30d"  # live sessions carry a TTL too (as under ?ttl=30d): a purge walking them shows
MESSAGE = {"role": "user", "content": "m" * 200}
TEMPLATE_USER = "userTMPL"  # replaced by user_of(i) in every copy of a template
HEAVY = "heavy"  # every HEAVY_EVERY-th session's user: a full page at every size
HEAVY_EVERY = 20  # main() makes it the smallest size / 50
BATCH = 10_000
TIME_BUDGET = 5.0  # seconds of repeats per timed figure (at least 3 repeats)


def reachable(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def median_ms(action: Callable[[], object], times: int) -> float:
    """Median of ``times`` runs, fewer (at least 3) when they outlast TIME_BUDGET."""
    samples: list[float] = []
    deadline = time.perf_counter() + TIME_BUDGET
    while len(samples) < times and (len(samples) < 3 or time.perf_counter() < deadline):
        start = time.perf_counter()
        action()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples) * 1000


def alternating_ms(
    ours: Callable[[], object], raw: Callable[[], object], times: int
) -> tuple[float, float]:
    """Medians of ``ours`` and ``raw``, called in turn (see median_ms for the budget)."""
    mine: list[float] = []
    theirs: list[float] = []
    deadline = time.perf_counter() + 2 * TIME_BUDGET
    while len(mine) < times and (len(mine) < 3 or time.perf_counter() < deadline):
        for action, samples in ((ours, mine), (raw, theirs)):
            start = time.perf_counter()
            action()
            samples.append(time.perf_counter() - start)
    return statistics.median(mine) * 1000, statistics.median(theirs) * 1000


def user_of(i: int) -> str:
    return HEAVY if i % HEAVY_EVERY == 0 else f"user{i % USERS}"


# (store, tag, count, first index, ttl) -> the ids of ``count`` new sessions
Seeder = Callable[[SessionStore, str, int, int, "str | None"], list[str]]


def seed_through_ailib(
    store: SessionStore, _tag: str, count: int, start: int, ttl: str | None
) -> list[str]:
    def one(i: int) -> str:
        return store.create({"user_id": user_of(i)}, ttl=ttl).session_id

    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(one, range(start, start + count)))


def swap(value: Any, session_id: str, template: str, user: str) -> Any:
    if isinstance(value, str):
        return value.replace(template, session_id).replace(TEMPLATE_USER, user)
    return value


@dataclass
class Backend:
    """How to open a backend's stores, seed and count them, and weigh what they store."""

    name: str
    url: Callable[[str], str]  # tag -> URL of a store of its own
    stored_bytes: Callable[[str, str], int]  # (tag, session id) -> bytes on the server
    raw_bytes: Callable[[list[str]], int]  # JSON strings -> bytes in the raw layout
    raw_read: Callable[[], object]  # reads back what raw_bytes stored
    cleanup: Callable[[str], object]  # tag -> drop what the store of that tag wrote
    raw_count: Callable[[str], int]  # tag -> live sessions, counted by the driver
    raw_list: Callable[[str, str | None], object]  # (tag, user or None) -> the page, raw
    sizes: list[int] = field(default_factory=list)
    seed: Seeder = seed_through_ailib
    #: tag -> refresh the server's planner statistics of the store's tables, as a
    #: deployment's autovacuum (PostgreSQL) or persistent statistics (MariaDB) do a while
    #: after a table grew; the bench grows a table tenfold in seconds.
    settle: Callable[[str], object] = lambda _tag: None


# -- backends -------------------------------------------------------------------------------


def redis_backend(sizes: list[int]) -> Backend:
    client = redis.Redis(host="127.0.0.1", port=6379, db=REDIS_DB)
    raw_key = f"scale-raw-{uuid.uuid4().hex[:6]}"

    def stored(_tag: str, session_id: str) -> int:
        keys = list(client.scan_iter(match=f"*{session_id}*", count=1000))
        return sum(int(client.memory_usage(k, samples=0) or 0) for k in keys)

    def raw(bodies: list[str]) -> int:
        for start in range(0, len(bodies), 1000):
            client.rpush(raw_key, *bodies[start : start + 1000])
        return int(client.memory_usage(raw_key, samples=0) or 0)

    def read() -> object:
        return [json.loads(b) for b in client.lrange(raw_key, 0, -1)]

    def cleanup(tag: str) -> None:
        """Only this run's keys: the database may be shared."""
        doomed: list[bytes] = []
        for key in client.scan_iter(match=f"ailib:{{{tag}*", count=5000):
            doomed.append(key)
            if len(doomed) >= BATCH:
                client.unlink(*doomed)
                doomed.clear()
        client.unlink(raw_key, *doomed)

    def listed(tag: str, user: str | None) -> object:
        """The index's newest 51 ids, then every header in one pipeline."""
        index = f"ailib:{{{tag}}}:" + ("idx" if user is None else f"user:{json.dumps(user)}")
        ids = cast("list[bytes]", client.zrevrange(index, 0, 50))
        pipe = client.pipeline(transaction=False)
        for session_id in ids:
            pipe.hgetall(f"ailib:{{{tag}:{session_id.decode()}}}:meta")
        return pipe.execute()

    return Backend(
        "redis",
        lambda tag: f"redis://127.0.0.1:6379/{REDIS_DB}?namespace={tag}",
        stored,
        raw,
        read,
        cleanup,
        lambda tag: int(client.zcard(f"ailib:{{{tag}}}:idx")),
        listed,
        sizes,
    )


def sql_backend(name: str, url: str, sizes: list[int], bulk: bool) -> Backend:
    engine = sa.create_engine(_driver_url(url))
    raw_table = f"scaleraw_{uuid.uuid4().hex[:6]}"

    def size_of(prefix: str) -> int:
        with engine.begin() as conn:
            if name == "postgresql":
                return int(
                    conn.execute(
                        sa.text(
                            "SELECT COALESCE(SUM(pg_total_relation_size(c.oid)), 0) "
                            "FROM pg_class c WHERE c.relkind = 'r' AND c.relname LIKE :p"
                        ),
                        {"p": prefix + "%"},
                    ).scalar_one()
                )
            names = conn.execute(
                sa.text(
                    "SELECT table_name FROM information_schema.tables "
                    "WHERE table_schema = DATABASE() AND table_name LIKE :p"
                ),
                {"p": prefix + "%"},
            ).scalars()
            for table in list(names):
                conn.execute(sa.text(f"ANALYZE TABLE `{table}`"))
            return int(
                conn.execute(
                    sa.text(
                        "SELECT COALESCE(SUM(data_length + index_length), 0) "
                        "FROM information_schema.tables "
                        "WHERE table_schema = DATABASE() AND table_name LIKE :p"
                    ),
                    {"p": prefix + "%"},
                ).scalar_one()
            )

    table = sa.Table(
        raw_table,
        sa.MetaData(),
        sa.Column("session_id", sa.String(64), primary_key=True),
        sa.Column("seq", sa.Integer, primary_key=True),
        sa.Column("body", sa.Text, nullable=False),
    )

    def raw(bodies: list[str]) -> int:
        table.create(engine)
        with engine.begin() as conn:
            for start in range(0, len(bodies), 1000):
                conn.execute(
                    sa.insert(table),
                    [
                        {"session_id": "s", "seq": start + i, "body": b}
                        for i, b in enumerate(bodies[start : start + 1000])
                    ],
                )
        return size_of(raw_table)

    def read() -> object:
        with engine.connect() as conn:
            query = sa.select(table.c.body).order_by(table.c.seq)
            return [json.loads(b) for b in conn.execute(query).scalars()]

    def cleanup(tag: str) -> None:
        inspector = sa.inspect(engine)
        with engine.begin() as conn:
            for t in inspector.get_table_names():
                if t.startswith(f"s{tag}_") or t == raw_table:
                    quoted = f"`{t}`" if name == "mariadb" else f'"{t}"'
                    conn.execute(sa.text(f"DROP TABLE IF EXISTS {quoted}"))

    def copies(store: SessionStore, tag: str, count: int, start: int, ttl: str | None) -> list[str]:
        return sql_copies(engine, f"s{tag}_", store, count, start, ttl)

    def settle(tag: str) -> None:
        with engine.begin() as conn:
            for t in sa.inspect(engine).get_table_names():
                if t.startswith(f"s{tag}_"):
                    conn.execute(
                        sa.text(f"ANALYZE TABLE `{t}`" if name == "mariadb" else f'ANALYZE "{t}"')
                    )

    return Backend(
        name,
        lambda tag: f"{url}?table_prefix=s{tag}_",
        lambda tag, _sid: size_of(f"s{tag}_"),
        raw,
        read,
        cleanup,
        lambda tag: sql_count(engine, f"s{tag}_"),
        lambda tag, user: sql_list(engine, f"s{tag}_", user),
        sizes,
        copies if bulk else seed_through_ailib,
        settle,
    )


def sql_count(engine: sa.Engine, prefix: str) -> int:
    sessions = sa.Table(f"{prefix}sessions", sa.MetaData(), autoload_with=engine)
    with engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(sessions)).scalar_one())


@functools.cache
def sessions_table(engine: sa.Engine, prefix: str) -> sa.Table:
    return sa.Table(f"{prefix}sessions", sa.MetaData(), autoload_with=engine)


def sql_list(engine: sa.Engine, prefix: str, user: str | None) -> object:
    """The store's listing query, written out: live rows of the namespace [of one user],
    newest first, 51 of them."""
    s = sessions_table(engine, prefix)
    query = sa.select(s).where(
        s.c.namespace == "default",
        sa.or_(s.c.expires_at.is_(None), s.c.expires_at > time.time()),
    )
    if user is not None:
        query = query.where(s.c.user_id == user)
    query = query.order_by(s.c.updated_at.desc(), s.c.session_id.desc()).limit(51)
    with engine.connect() as conn:
        return conn.execute(query).all()


def sql_copies(
    engine: sa.Engine, prefix: str, store: SessionStore, count: int, start: int, ttl: str | None
) -> list[str]:
    """``count`` copies of a template session's rows (every table with a session_id column),
    each with its own id, user and a distinct updated_at; the template is then deleted."""
    template = store.create({"user_id": TEMPLATE_USER}, ttl=ttl).session_id
    metadata = sa.MetaData()
    metadata.reflect(engine, only=lambda t, _m: t.startswith(prefix))
    tables = [t for t in metadata.tables.values() if "session_id" in t.c]
    ids = [uuid.uuid4().hex for _ in range(count)]
    with engine.connect() as conn:
        rows = {
            t.name: [
                dict(r._mapping)
                for r in conn.execute(sa.select(t).where(t.c.session_id == template))
            ]
            for t in tables
        }
    for first in range(0, count, BATCH):
        with engine.begin() as conn:
            for t in tables:
                copies = []
                for n in range(first, min(count, first + BATCH)):
                    for row in rows[t.name]:
                        copy = {
                            c: swap(v, ids[n], template, user_of(start + n)) for c, v in row.items()
                        }
                        if isinstance(copy.get("updated_at"), float):
                            copy["updated_at"] += (start + n) * 1e-6
                        copies.append(copy)
                if copies:
                    conn.execute(sa.insert(t), copies)
    store.delete(template)
    if engine.dialect.name == "postgresql":
        # What autovacuum does on its own after this many new rows, within a minute or so.
        with engine.begin() as conn:
            for t in tables:
                conn.execute(sa.text(f'ANALYZE "{t.name}"'))
    return ids


def _driver_url(url: str) -> str:
    if url.startswith("mariadb://"):
        return "mysql+pymysql://" + url.removeprefix("mariadb://")
    if url.startswith("postgresql://"):
        return "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return url


def sqlite_backend(folder: Path, sizes: list[int], bulk: bool) -> Backend:
    raw_path = folder / "raw.db"
    engine = sa.create_engine(f"sqlite:///{raw_path}")

    def stored(tag: str, _sid: str) -> int:
        path = folder / f"{tag}.db"
        with sa.create_engine(f"sqlite:///{path}").connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        return path.stat().st_size

    def raw(bodies: list[str]) -> int:
        with engine.begin() as conn:
            conn.exec_driver_sql(
                "CREATE TABLE m (session_id TEXT, seq INTEGER, body TEXT, "
                "PRIMARY KEY (session_id, seq))"
            )
            conn.exec_driver_sql(
                "INSERT INTO m VALUES ('s', ?, ?)", [(i, b) for i, b in enumerate(bodies)]
            )
        engine.dispose()
        return raw_path.stat().st_size

    def read() -> object:
        with engine.connect() as conn:
            rows = conn.exec_driver_sql("SELECT body FROM m ORDER BY seq").scalars()
            return [json.loads(b) for b in rows]

    def copies(store: SessionStore, tag: str, count: int, start: int, ttl: str | None) -> list[str]:
        return sql_copies(of(tag), "ailib_", store, count, start, ttl)

    @functools.cache
    def of(tag: str) -> sa.Engine:
        return sa.create_engine(f"sqlite:///{folder / tag}.db")

    def cleanup(tag: str) -> None:
        for path in folder.glob(f"{tag}.db*"):
            path.unlink()

    return Backend(
        "sqlite",
        lambda tag: f"sqlite:///{folder / tag}.db",
        stored,
        raw,
        read,
        cleanup,
        lambda tag: sql_count(of(tag), "ailib_"),
        lambda tag, user: sql_list(of(tag), "ailib_", user),
        sizes,
        copies if bulk else seed_through_ailib,
    )


def s3_backend(endpoint: str, sizes: list[int]) -> Backend:
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    bucket = "ailib-scale"
    client.create_bucket(Bucket=bucket)
    raw_key = f"raw-{uuid.uuid4().hex[:6]}.jsonl"

    def objects(prefix: str) -> Iterator[Any]:
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            yield from page.get("Contents", [])

    def raw(bodies: list[str]) -> int:
        data = ("\n".join(bodies)).encode()
        client.put_object(Bucket=bucket, Key=raw_key, Body=data)
        return len(data)

    def read() -> object:
        body = client.get_object(Bucket=bucket, Key=raw_key)["Body"].read()
        return [json.loads(line) for line in body.splitlines()]

    def cleanup(tag: str) -> None:
        keys: list[Any] = [{"Key": o["Key"]} for o in objects(f"{tag}/")]
        for start in range(0, len(keys), 1000):
            client.delete_objects(Bucket=bucket, Delete={"Objects": keys[start : start + 1000]})

    def count(tag: str) -> int:
        """Sessions with a live manifest (the store's index has one entry per session)."""
        return sum(1 for o in objects(f"{tag}/") if o["Key"].endswith("/manifest"))

    def listed(tag: str, user: str | None) -> object:
        """The index's first 51 markers, then their manifests, 8 GETs at a time."""
        where = (
            "idx/"
            if user is None
            else "u/" + base64.urlsafe_b64encode(user.encode()).decode().rstrip("=") + "/"
        )
        markers = client.list_objects_v2(Bucket=bucket, Prefix=f"{tag}/default/{where}", MaxKeys=51)
        ids = [o["Key"].split("/")[-2] for o in markers.get("Contents", [])]
        with ThreadPoolExecutor(8) as pool:
            return list(
                pool.map(
                    lambda sid: client.get_object(
                        Bucket=bucket, Key=f"{tag}/default/s/{sid}/manifest"
                    )["Body"].read(),
                    ids,
                )
            )

    return Backend(
        "s3",
        lambda tag: f"s3://{bucket}/{tag}?endpoint_url={endpoint}",
        lambda tag, _sid: sum(int(o["Size"]) for o in objects(f"{tag}/")),
        raw,
        read,
        cleanup,
        count,
        listed,
        sizes,
    )


# -- measurements ---------------------------------------------------------------------------


def verify(backend: Backend, store: SessionStore, tag: str, live: list[str]) -> None:
    """Through ailib: a sample loads; user7's sessions, listed page by page, are all there;
    and the driver counts exactly the live sessions."""
    for session_id in live[:: max(1, len(live) // 50)]:
        store.load(session_id)
    expected = sum(1 for i in range(len(live)) if user_of(i) == "user7")
    listed, cursor = 0, None
    while True:
        page = store.list(user_id="user7", limit=50, cursor=cursor)
        listed += len(page)
        cursor = page.next_cursor
        if cursor is None:
            break
    counted = backend.raw_count(tag)
    if listed != expected or counted != len(live):
        raise SystemExit(
            f"{backend.name}: {len(live):,} live sessions, but user7 lists {listed} "
            f"(expected {expected}) and the store holds {counted:,}"
        )


def listing_and_purge(backend: Backend) -> list[tuple[str, int, float]]:
    """(what, size, ms) rows for listing and purging as the store grows."""
    tag = f"l{uuid.uuid4().hex[:6]}"
    rows: list[tuple[str, int, float]] = []
    store = ailib.open_store(backend.url(tag))
    try:
        store.purge_expired()  # an empty store: S3 records that its expiry index is complete
        lists = index_lists(store)
        live: list[str] = []
        purged = min(PURGED, backend.sizes[0])
        for size in backend.sizes:
            started = time.perf_counter()
            for first in range(len(live), size, 100 * BATCH):
                live += backend.seed(store, tag, min(100 * BATCH, size - first), first, LIVE_TTL)
            fill = time.perf_counter() - started
            backend.settle(tag)
            verify(backend, store, tag, live)
            print(f"# {backend.name}: {size:,} sessions ({fill:.0f}s to add), checked", flush=True)
            for user in (None, HEAVY):
                what = "list(limit=50)" if user is None else "list(user_id, limit=50)"
                ours = functools.partial(store.list, user_id=user, limit=50)
                raw = functools.partial(backend.raw_list, tag, user)
                if len(ours()) != 50:
                    raise SystemExit(f"{backend.name}: {what} did not return 50 sessions")
                ms, raw_ms = alternating_ms(ours, raw, 30)
                rows.append((what, size, ms))
                rows.append((what + " raw", size, raw_ms))
                print(
                    f"# {backend.name}: {size:,} sessions, {what} {ms:.2f} ms, raw {raw_ms:.2f} ms",
                    flush=True,
                )
            listed = lists()
            purged_ms = purge(backend, store, tag, live, purged)
            rows.append((f"purge {purged:,} expired", size, purged_ms))
            note = ""
            if listed is not None:
                made = (lists() or 0) - listed
                rows.append((f"purge {purged:,}: index LISTs (count)", size, made))
                note = f", {made} LISTs of the indexes"
            print(
                f"# {backend.name}: {size:,} sessions, purge {purged:,} expired "
                f"{purged_ms:.1f} ms{note}",
                flush=True,
            )
        largest = backend.sizes[-1]
        expired = max(purged, largest // 10)
        per_expired = purge(backend, store, tag, live, expired) / expired * 1000
        rows.append((f"purge {expired:,} expired, µs each", largest, per_expired))
        print(
            f"# {backend.name}: {largest:,} sessions, purge {expired:,} expired "
            f"{per_expired:.0f} µs each",
            flush=True,
        )
        verify(backend, store, tag, live)
        print(f"# {backend.name}: {len(live):,} live sessions untouched by the purges", flush=True)
    finally:
        store.close()
        backend.cleanup(tag)
    return rows


def index_lists(store: SessionStore) -> Callable[[], int | None]:
    """For an S3 store, how many ListObjectsV2 calls it has made so far outside the
    sessions' own prefixes (on its index markers); None for other stores. On moto's server
    every LIST walks the whole bucket, so time alone cannot show what purge reads."""
    client, layout = getattr(store, "client", None), getattr(store, "layout", None)
    if client is None or layout is None:
        return lambda: None
    calls = [0]

    def note(params: dict[str, Any], **_: Any) -> None:
        if not params["Prefix"].startswith(layout.root + "s/"):
            calls[0] += 1

    client.meta.events.register("before-parameter-build.s3.ListObjectsV2", note)
    return lambda: calls[0]


def purge(backend: Backend, store: SessionStore, tag: str, live: list[str], expired: int) -> float:
    """ms to purge ``expired`` sessions that expired among the ``live`` ones."""
    ids = backend.seed(store, tag, expired, len(live), "2s")
    time.sleep(2.5)
    started = time.perf_counter()
    purged = store.purge_expired()
    elapsed = (time.perf_counter() - started) * 1000
    if purged < len(ids):
        raise SystemExit(f"purge_expired removed {purged} of {len(ids)} expired sessions")
    if backend.raw_count(tag) != len(live):
        raise SystemExit(f"{backend.name}: after the purge the store holds the wrong count")
    return elapsed


def long_history(backend: Backend, history: int) -> dict[str, float]:
    tag = f"h{uuid.uuid4().hex[:6]}"
    store = ailib.open_store(backend.url(tag))
    figures: dict[str, float] = {}
    try:
        short = store.create(messages=[MESSAGE] * 10).session_id
        long = store.create().session_id
        for start in range(0, history, 500):
            store.append(long, *[MESSAGE] * min(500, history - start))
        for name, sid in (("short", short), ("long", long)):
            figures[f"load(last=20) {name}"] = median_ms(
                functools.partial(store.load, sid, last=20), 50
            )
            figures[f"append {name}"] = median_ms(
                functools.partial(store.append, sid, MESSAGE), 100
            )
        bodies = [json.dumps(MESSAGE)] * history
        message_bytes = sum(len(b) for b in bodies)
        figures["stored bytes per message byte"] = backend.stored_bytes(tag, long) / message_bytes
        figures["raw bytes per message byte"] = backend.raw_bytes(bodies) / message_bytes
        figures["client peak MB, load all"] = peak_mb(lambda: store.load(long))
        figures["client peak MB, raw read"] = peak_mb(backend.raw_read)
    finally:
        store.close()
        backend.cleanup(tag)
    return figures


def peak_mb(action: Callable[[], object]) -> float:
    tracemalloc.start()
    try:
        action()
        return tracemalloc.get_traced_memory()[1] / 1e6
    finally:
        tracemalloc.stop()


def report(backend: Backend, rows: list[tuple[str, int, float]], hist: dict[str, float]) -> None:
    print(f"\n## {backend.name}")
    print(f"{'work':<34}{'sessions':>11}{'ms':>10}{'vs smallest':>13}{'raw ms':>10}{'vs raw':>9}")
    first: dict[str, float] = {}
    raw_ms = {
        (what.removesuffix(" raw"), size): ms for what, size, ms in rows if what.endswith(" raw")
    }
    for what, _size, ms in rows:
        first.setdefault(what, ms)
    # The purge of N/10 is compared per expired session with the purge of 1,000 at the
    # smallest size: equal figures mean time proportional to the expired.
    purged = next(
        int(what.split()[1].replace(",", "")) for what in first if what.startswith("purge")
    )
    per_expired = first[f"purge {purged:,} expired"] / purged * 1000
    for what, size, ms in rows:
        if what.endswith(" raw"):
            continue
        base = per_expired if "µs each" in what else first[what]
        line = f"{what:<34}{size:>11,}{ms:>10.2f}{ms / base:>12.2f}x"
        if (what, size) in raw_ms:
            line += f"{raw_ms[what, size]:>10.2f}{ms / raw_ms[what, size]:>8.2f}x"
        print(line)
    print(f"{'':<34}{'short':>11}{'long':>10}{'long/short':>13}")
    for op in ("load(last=20)", "append"):
        s, lg = hist[f"{op} short"], hist[f"{op} long"]
        print(f"{op + ' ms':<34}{s:>11.3f}{lg:>10.3f}{lg / s:>12.2f}x")
    print(f"{'':<34}{'ailib':>11}{'raw':>10}{'ratio':>13}")
    for what in ("bytes per message byte", "peak MB"):
        ours = next(v for k, v in hist.items() if what in k and "raw" not in k)
        raw = next(v for k, v in hist.items() if what in k and "raw" in k)
        label = "server " + what if "bytes" in what else "client " + what + " (load all)"
        print(f"{label:<34}{ours:>11.2f}{raw:>10.2f}{ours / raw:>12.2f}x")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,10000")
    parser.add_argument("--s3-sizes", default="200,600")
    parser.add_argument("--history", type=int, default=20_000)
    parser.add_argument("--backends", default="sqlite,postgresql,mariadb,redis,s3")
    parser.add_argument(
        "--bulk-seed",
        action="store_true",
        help="copy a template session in the store's layout instead of creating each one",
    )
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    s3_sizes = [int(s) for s in args.s3_sizes.split(",")]
    chosen = args.backends.split(",")
    global HEAVY_EVERY
    HEAVY_EVERY = max(1, min(sizes + s3_sizes) // 50)
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder, contextlib.ExitStack() as stack:
        backends: list[Backend] = []
        if "sqlite" in chosen:
            backends.append(sqlite_backend(Path(folder), sizes, args.bulk_seed))
        for name, url, port in (("postgresql", PG_URL, 5432), ("mariadb", MYSQL_URL, 3306)):
            if name in chosen:
                if reachable(port):
                    backends.append(sql_backend(name, url, sizes, args.bulk_seed))
                else:
                    print(f"# {name}: nothing listens on 127.0.0.1:{port}, skipped")
        if "redis" in chosen:
            if reachable(6379):
                backends.append(redis_backend(sizes))
            else:
                print("# redis: nothing listens on 127.0.0.1:6379, skipped")
        if "s3" in chosen:
            backends.append(s3_backend(stack.enter_context(serve()), s3_sizes))
        for backend in backends:
            rows = listing_and_purge(backend)
            hist = long_history(backend, args.history)
            report(backend, rows, hist)
            print(f"# {time.perf_counter() - started:.0f}s so far", flush=True)
    print(f"\ntotal {time.perf_counter() - started:.0f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
