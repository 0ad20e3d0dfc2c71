"""The same operations timed on two revisions of ailib, in one run: a change of design must
not make any operation more than 5% slower.

"before" is a git revision (``--before``, default ``b0e16f9``: the v0.1 design), unpacked
with ``git archive`` into a temporary folder (the repository's worktree list is left
alone); "after" is this working tree. Each revision runs in a long-lived worker process of
its own, with ``PYTHONPATH`` set to that tree's ``src`` folders: they come before the venv's
editable installs (``.pth`` path entries), so ``ailib.open_store`` resolves the
``ailib.stores`` entry points (the same module paths in both trees) to that tree's modules;
each worker checks that the store it opened comes from its tree. Only public API both
revisions share is used.

Why paired batches: this machine has slow phases (every operation about 1.7x slower, for
minutes), longer than a whole worker's run, which land unevenly on the two sides of a
before/after alternation of whole processes. So both workers stay up for the whole backend,
and the parent asks them in turn for small batches (``--batch`` calls of one operation,
default 10), the two batches of a pair back to back (order ABBA across rounds), ``--batches``
pairs per operation. A slow phase then falls on both sides of a pair alike, and the ratio of
each pair's two medians cancels it. Printed per operation: median wall and CPU µs
(``time.process_time`` of the worker) of all calls on each side, and the **median of the
pairs' ratios** with its interquartile range; a row whose wall and CPU paired ratios are both
above 1.05 is marked ``!``.

For each backend (memory, SQLite file, PostgreSQL, MariaDB, Redis 127.0.0.1:6379 db 14, S3
on moto's server started here) each worker uses its own fresh store (its own tables /
namespace / prefix, dropped afterwards); S3 pairs run a fifth of ``--batches``.

    .venv/bin/python bench/revisions_bench.py [--before REV] [--batches 60] [--batch 10]
        [--backends memory,sqlite,postgresql,mariadb,redis,s3]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import socket
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("ailib_core", "ailib_store_sql", "ailib_store_redis", "ailib_store_s3")
BACKENDS = ("memory", "sqlite", "postgresql", "mariadb", "redis", "s3")
PORTS = {"postgresql": 5432, "mariadb": 3306, "redis": 6379}
PG_URL = os.environ.get("AILIB_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
MYSQL_URL = os.environ.get("AILIB_BENCH_MYSQL_URL", "mariadb://root@127.0.0.1:3306/test")
REDIS_URL = "redis://127.0.0.1:6379/14"
S3_BUCKET = "ailib-revisions"
OPERATIONS = (
    "create",
    "append",
    "load 100",
    "load(last=20)",
    "list(limit=50)",
    "pop",
    "checkpoint",
)
MESSAGE = {"role": "user", "content": "m" * 200}


# -- worker: runs inside one revision's tree --------------------------------------------------


def store_url(backend: str, tag: str, folder: str, endpoint: str) -> str:
    if backend == "memory":
        return "memory://"
    if backend == "sqlite":
        return f"sqlite:///{folder}/{tag}.db"
    if backend == "postgresql":
        return f"{PG_URL}?table_prefix={tag}_"
    if backend == "mariadb":
        return f"{MYSQL_URL}?table_prefix={tag}_"
    if backend == "redis":
        return f"{REDIS_URL}?namespace={tag}"
    return f"s3://{S3_BUCKET}/{tag}?endpoint_url={endpoint}"


def timed(action: Callable[[], object], repeats: int) -> list[tuple[float, float]]:
    """Wall and CPU µs of each of ``repeats`` calls."""
    figures = []
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        action()
        figures.append(((time.perf_counter() - wall) * 1e6, (time.process_time() - cpu) * 1e6))
    return figures


def actions(store: Any, pops: int) -> dict[str, Callable[[], object]]:
    """One call of each operation, on sessions set up once for the worker's whole run."""
    target = store.create({"user_id": "u2"}).session_id
    hundred = store.create({"user_id": "u3"}).session_id
    store.append(hundred, *[MESSAGE] * 100)
    popped = store.create({"user_id": "u4"}).session_id
    store.append(popped, *[MESSAGE] * pops)
    return {
        "create": lambda: store.create({"user_id": "u1"}),
        "append": lambda: store.append(target, MESSAGE),
        "load 100": lambda: store.load(hundred),
        "load(last=20)": lambda: store.load(hundred, last=20),
        "list(limit=50)": lambda: store.list(limit=50),
        "pop": lambda: store.pop(popped),
        "checkpoint": lambda: store.checkpoint(hundred),
    }


def worker(args: argparse.Namespace) -> int:
    """Answer each ``<operation>\t<calls>`` line of stdin with one JSON line of timings."""
    import ailib

    tree = Path(args.tree).resolve()
    tag = f"rv{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory() as folder:
        store = ailib.open_store(store_url(args.worker, tag, folder, args.endpoint))
        for module in (ailib, sys.modules[type(store).__module__]):
            if not Path(module.__file__ or "").resolve().is_relative_to(tree):
                raise SystemExit(f"{module.__name__} came from {module.__file__}, not {tree}")
        try:
            calls = actions(store, args.pops)
            print("ready", flush=True)
            for line in sys.stdin:
                operation, repeats = line.rstrip("\n").split("\t")
                print(json.dumps(timed(calls[operation], int(repeats))), flush=True)
        finally:
            store.close()
            drop(args.worker, tag, args.endpoint)
    return 0


def drop(backend: str, tag: str, endpoint: str) -> None:
    """Remove what a worker's store wrote (raw drivers: the same in both revisions)."""
    if backend in ("postgresql", "mariadb"):
        import sqlalchemy as sa

        url = PG_URL if backend == "postgresql" else MYSQL_URL
        driver = "postgresql+psycopg://" if backend == "postgresql" else "mysql+pymysql://"
        engine = sa.create_engine(driver + url.split("://", 1)[1])
        tables = [t for t in sa.inspect(engine).get_table_names() if t.startswith(f"{tag}_")]
        with engine.begin() as conn:
            for table in tables:
                quoted = f"`{table}`" if backend == "mariadb" else f'"{table}"'
                conn.execute(sa.text(f"DROP TABLE IF EXISTS {quoted}"))
        engine.dispose()
    elif backend == "redis":
        import redis

        server = redis.Redis.from_url(REDIS_URL)
        doomed = list(server.scan_iter(match=f"*{tag}*", count=5000))
        if doomed:
            server.unlink(*doomed)
    elif backend == "s3":
        import boto3

        s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
        pages = s3.get_paginator("list_objects_v2").paginate(Bucket=S3_BUCKET, Prefix=tag)
        for page in pages:
            keys: Any = [{"Key": o["Key"]} for o in page.get("Contents", [])]
            if keys:
                s3.delete_objects(Bucket=S3_BUCKET, Delete={"Objects": keys})


# -- parent: unpacks the old tree, alternates the workers, prints the table -------------------


@contextlib.contextmanager
def unpacked(revision: str) -> Iterator[Path]:
    """``revision``'s files in a temporary folder (``git archive``, no worktree registered)."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", "--format=tar", revision],
        check=True,
        capture_output=True,
    ).stdout
    with tempfile.TemporaryDirectory(prefix="ailib-before-") as folder:
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(folder, filter="data")
        yield Path(folder)


def python_path(tree: Path) -> str:
    return os.pathsep.join(
        str(tree / package / "src") for package in PACKAGES if (tree / package / "src").is_dir()
    )


class Worker:
    """One revision's long-lived worker process, asked for one batch at a time."""

    def __init__(self, tree: Path, backend: str, pops: int, endpoint: str) -> None:
        self.label = f"{backend} worker in {tree}"
        argv = [sys.executable, str(Path(__file__).resolve()), "--worker", backend]
        argv += ["--tree", str(tree), "--pops", str(pops), "--endpoint", endpoint]
        self.process = subprocess.Popen(
            argv,
            env=dict(os.environ, PYTHONPATH=python_path(tree)),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self._expect("ready")

    def _expect(self, what: str) -> str:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line or (what and line.strip() != what):
            self.process.kill()
            raise SystemExit(f"{self.label} failed (its errors are above)")
        return line

    def batch(self, operation: str, calls: int) -> list[tuple[float, float]]:
        assert self.process.stdin is not None
        self.process.stdin.write(f"{operation}\t{calls}\n")
        self.process.stdin.flush()
        return [(wall, cpu) for wall, cpu in json.loads(self._expect(""))]

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        if self.process.wait(timeout=120):
            raise SystemExit(f"{self.label} exited with {self.process.returncode}")


def reachable(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def describe(revision: str) -> str:
    def git(*argv: str) -> str:
        return subprocess.run(
            ["git", "-C", str(ROOT), *argv], check=True, capture_output=True, text=True
        ).stdout.strip()

    dirty = " + uncommitted changes" if git("status", "--porcelain", "--untracked-files=no") else ""
    before, after = git("rev-parse", "--short", revision), git("rev-parse", "--short", "HEAD")
    return f"before {before}, after {after}{dirty}"


Timings = list[tuple[float, float]]


def quartiles(values: list[float]) -> tuple[float, float, float]:
    low, middle, high = statistics.quantiles(values, n=4) if len(values) > 1 else values * 3
    return low, middle, high


def report(backend: str, pairs: dict[str, list[tuple[Timings, Timings]]]) -> None:
    print(f"\n## {backend} ({len(next(iter(pairs.values())))} pairs of batches per operation)")
    print(
        f"{'operation':<16}{'before µs':>11}{'after µs':>10}{'ratio [IQR]':>20}"
        f"{'before CPU':>12}{'after CPU':>11}{'ratio [IQR]':>20}"
    )
    for operation, batches in pairs.items():
        cells, marks = [], []
        for index in (0, 1):  # wall, CPU
            before = statistics.median(t[index] for b, _ in batches for t in b)
            after = statistics.median(t[index] for _, a in batches for t in a)
            ratios = [
                statistics.median(t[index] for t in a) / statistics.median(t[index] for t in b)
                for b, a in batches
                if statistics.median(t[index] for t in b) > 0
            ]
            low, middle, high = quartiles(ratios) if ratios else (float("nan"),) * 3
            ratio = f"{middle:.2f}x [{low:.2f}-{high:.2f}]"
            cells.append(f"{before:>11.1f}{after:>10.1f}{ratio:>20}")
            marks.append(middle > 1.05)
        print(f"{operation:<16}{cells[0]}{cells[1]}" + (" !" if all(marks) else ""))


def compare(trees: dict[str, Path], backend: str, batches: int, size: int, endpoint: str) -> None:
    operations = OPERATIONS
    pops = (batches + 1) * size + 1
    workers = {side: Worker(tree, backend, pops, endpoint) for side, tree in trees.items()}
    try:
        for worker_ in workers.values():  # warm-up, not counted
            for operation in operations:
                worker_.batch(operation, 1 if operation == "pop" else size)
        pairs: dict[str, list[tuple[Timings, Timings]]] = {op: [] for op in operations}
        for number in range(batches):
            order = ("before", "after") if number % 2 == 0 else ("after", "before")
            for operation in operations:
                got = {side: workers[side].batch(operation, size) for side in order}
                pairs[operation].append((got["before"], got["after"]))
    finally:
        for worker_ in workers.values():
            worker_.close()
    report(backend, pairs)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", default="b0e16f9")
    parser.add_argument("--batches", type=int, default=60)
    parser.add_argument("--batch", type=int, default=10)
    parser.add_argument("--backends", default=",".join(BACKENDS))
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--tree", help=argparse.SUPPRESS)
    parser.add_argument("--pops", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--endpoint", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    if args.worker:
        return worker(args)

    chosen = [b for b in args.backends.split(",") if b]
    for backend in list(chosen):
        if backend in PORTS and not reachable(PORTS[backend]):
            print(f"# {backend}: nothing listens on 127.0.0.1:{PORTS[backend]}, skipped")
            chosen.remove(backend)
    print(
        f"# {describe(args.before)}; {args.batches} pairs of batches of {args.batch} calls"
        " per operation (S3: a fifth as many pairs)"
    )
    started = time.perf_counter()
    with unpacked(args.before) as before, contextlib.ExitStack() as stack:
        endpoint = ""
        if "s3" in chosen:
            import boto3

            from ailib_store_s3.moto import serve

            endpoint = stack.enter_context(serve())
            boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1").create_bucket(
                Bucket=S3_BUCKET
            )
        trees = {"before": before, "after": ROOT}
        for backend in chosen:
            batches = max(4, args.batches // 5) if backend == "s3" else args.batches
            compare(trees, backend, batches, args.batch, endpoint)
            sys.stdout.flush()
    print(f"\ntotal {time.perf_counter() - started:.0f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
