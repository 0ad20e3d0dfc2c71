"""The same operations timed on two revisions of ailib, in one run: a change of design must
not make any operation more than 5% slower.

"before" is a git revision (``--before``, default ``b0e16f9``: the v0.1 design), unpacked
with ``git archive`` into a temporary folder (the repository's worktree list is left
alone); "after" is this working tree. Each revision runs in processes of its own, with
``PYTHONPATH`` set to that tree's ``src`` folders: they come before the venv's editable
installs (``.pth`` path entries), so ``ailib.open_store`` resolves the ``ailib.stores`` entry
points (the same module paths in both trees) to that tree's modules; each worker checks that
the store it opened comes from its tree. Only public API both revisions share is used.

For each backend (memory, SQLite file, PostgreSQL, MariaDB, Redis 127.0.0.1:6379 db 14, S3
on moto's server started here), rounds alternate before/after (ABBA), each worker times
``--ops`` repeats (S3: a tenth, at least 10) of every operation in its own fresh store (its
own tables / namespace / prefix, dropped afterwards). Printed: median of the rounds'
medians, wall and CPU time (``time.process_time`` of the worker), and after/before ratios;
a row whose wall and CPU ratios are both above 1.05 is marked ``!``.

    .venv/bin/python bench/revisions_bench.py [--before REV] [--rounds 4] [--ops 100]
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


def timed(action: Callable[[], object], repeats: int) -> tuple[float, float]:
    """Median wall and CPU µs of ``repeats`` calls."""
    walls, cpus = [], []
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        action()
        cpus.append(time.process_time() - cpu)
        walls.append(time.perf_counter() - wall)
    return statistics.median(walls) * 1e6, statistics.median(cpus) * 1e6


def work(store: Any, repeats: int) -> dict[str, tuple[float, float]]:
    figures: dict[str, tuple[float, float]] = {}
    figures["create"] = timed(lambda: store.create({"user_id": "u1"}), repeats)
    target = store.create({"user_id": "u2"}).session_id
    figures["append"] = timed(lambda: store.append(target, MESSAGE), repeats)
    hundred = store.create({"user_id": "u3"}).session_id
    store.append(hundred, *[MESSAGE] * 100)
    figures["load 100"] = timed(lambda: store.load(hundred), repeats)
    figures["load(last=20)"] = timed(lambda: store.load(hundred, last=20), repeats)
    figures["list(limit=50)"] = timed(lambda: store.list(limit=50), repeats)
    popped = store.create({"user_id": "u4"}).session_id
    store.append(popped, *[MESSAGE] * (repeats + 1))
    figures["pop"] = timed(lambda: store.pop(popped), repeats)
    figures["checkpoint"] = timed(lambda: store.checkpoint(hundred), repeats)
    return figures


def worker(args: argparse.Namespace) -> int:
    import ailib

    tree = Path(args.tree).resolve()
    tag = f"rv{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory() as folder:
        store = ailib.open_store(store_url(args.worker, tag, folder, args.endpoint))
        for module in (ailib, sys.modules[type(store).__module__]):
            if not Path(module.__file__ or "").resolve().is_relative_to(tree):
                raise SystemExit(f"{module.__name__} came from {module.__file__}, not {tree}")
        try:
            figures = work(store, args.ops)
        finally:
            store.close()
            drop(args.worker, tag, args.endpoint)
    print(json.dumps(figures))
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


def run_worker(tree: Path, backend: str, ops: int, endpoint: str) -> dict[str, tuple[float, float]]:
    env = dict(os.environ, PYTHONPATH=python_path(tree))
    done = subprocess.run(
        [
            sys.executable,
            str(Path(__file__).resolve()),
            "--worker",
            backend,
            "--tree",
            str(tree),
            "--ops",
            str(ops),
            "--endpoint",
            endpoint,
        ],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode:
        raise SystemExit(f"{backend} worker in {tree} failed:\n{done.stderr[-3000:]}")
    figures: dict[str, list[float]] = json.loads(done.stdout.strip().splitlines()[-1])
    return {op: (wall, cpu) for op, (wall, cpu) in figures.items()}


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


def report(backend: str, rounds: dict[str, list[dict[str, tuple[float, float]]]]) -> None:
    print(f"\n## {backend}")
    print(
        f"{'operation':<16}{'before µs':>11}{'after µs':>10}{'ratio':>8}"
        f"{'before CPU':>12}{'after CPU':>11}{'ratio':>8}"
    )
    for op in OPERATIONS:
        cells = []
        for index in (0, 1):
            for side in ("before", "after"):
                cells.append(statistics.median(r[op][index] for r in rounds[side]))
        wall_b, wall_a, cpu_b, cpu_a = cells
        wall_ratio, cpu_ratio = wall_a / wall_b, cpu_a / cpu_b if cpu_b else float("nan")
        mark = " !" if min(wall_ratio, cpu_ratio) > 1.05 else ""
        print(
            f"{op:<16}{wall_b:>11.1f}{wall_a:>10.1f}{wall_ratio:>7.2f}x"
            f"{cpu_b:>12.1f}{cpu_a:>11.1f}{cpu_ratio:>7.2f}x{mark}"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", default="b0e16f9")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--ops", type=int, default=100)
    parser.add_argument("--backends", default=",".join(BACKENDS))
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--tree", help=argparse.SUPPRESS)
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
    print(f"# {describe(args.before)}; {args.rounds} rounds of {args.ops} calls per operation")
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
            rounds: dict[str, list[dict[str, tuple[float, float]]]] = {"before": [], "after": []}
            for number in range(args.rounds):
                order = ("before", "after") if number % 2 == 0 else ("after", "before")
                for side in order:
                    repeats = max(10, args.ops // 10) if backend == "s3" else args.ops
                    rounds[side].append(run_worker(trees[side], backend, repeats, endpoint))
            report(backend, rounds)
    print(f"\ntotal {time.perf_counter() - started:.0f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
