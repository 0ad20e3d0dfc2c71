"""Across processes: 4 spawned processes x 4 threads append numbered messages to ONE session
for a while, on every backend with a server. Afterwards every acknowledged append is there
exactly once, each writer's messages in its own order, and nothing that raised was stored.

About 3 s per backend by default; ``AILIB_SOAK=1`` makes it 20 s. Run with ``-s`` to see
the books (they are also recorded as the test's properties, in a JUnit report)."""

from __future__ import annotations

import multiprocessing
import os
import queue
import uuid
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pytest

import ailib
from tests.integration._appenders import parse, run_process

PROCESSES, THREADS = 4, 4
DURATION = 20.0 if os.environ.get("AILIB_SOAK") == "1" else 3.0
#: How long the processes may take to start (spawn imports everything afresh) and to
#: finish after their deadline; generous, it only bounds a hang.
STARTUP, FINISH = 180.0, 120.0

BACKENDS = ["sqlite", "postgresql", "mariadb", "redis", "redis-cluster", "s3"]


@pytest.fixture(params=BACKENDS)
def server_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    name = request.param
    if name == "sqlite":
        return f"sqlite:///{tmp_path / 'sessions.db'}"
    fixture = {
        "postgresql": "postgres_store_url",
        "mariadb": "mariadb_store_url",
        "redis": "shared_redis",
        "redis-cluster": "redis_cluster",
        "s3": "moto_url",
    }[name]
    return str(request.getfixturevalue(fixture))


def run_writers(url: str, namespace: str, session_id: str) -> list[dict[str, Any]]:
    """Start the processes, start them writing together, and collect their books."""
    context = multiprocessing.get_context("spawn")
    ready, results, go = context.Queue(), context.Queue(), context.Event()
    processes = [
        context.Process(
            target=run_process,
            args=(url, namespace, session_id, p, THREADS, DURATION, ready, go, results),
            daemon=True,
        )
        for p in range(PROCESSES)
    ]
    for process in processes:
        process.start()
    try:
        started: set[int] = set()
        while len(started) < PROCESSES:
            try:
                started.add(ready.get(timeout=STARTUP))
            except queue.Empty:
                failed = _early_errors(results)
                pytest.fail(f"processes {sorted(started)} started, no word from others {failed}")
        go.set()
        books: list[dict[str, Any]] = []
        for _ in range(PROCESSES):
            status, process_number, payload = results.get(timeout=DURATION + FINISH)
            assert status == "ok", f"process {process_number} failed: {payload}"
            books += payload
        return books
    finally:
        for process in processes:
            process.join(timeout=FINISH)
            if process.is_alive():
                process.kill()


def _early_errors(results: Any) -> list[Any]:
    found = []
    while True:
        try:
            found.append(results.get_nowait())
        except queue.Empty:
            return found


def test_processes_and_threads_append_to_one_session(
    server_url: str, record_property: Any, request: pytest.FixtureRequest
) -> None:
    backend = request.node.callspec.params["server_url"]
    namespace = f"mp{uuid.uuid4().hex[:10]}"
    with ailib.open_store(server_url, namespace=namespace) as store:
        session_id = store.create({"user_id": "many-writers"}).session_id
        try:
            books = run_writers(server_url, namespace, session_id)
            stored = [m["content"] for m in store.load(session_id).messages]
            listed = store.list(user_id="many-writers").items
        finally:
            store.delete(session_id)

    acknowledged = {(b["process"], b["thread"], n) for b in books for n in b["acknowledged"]}
    raised = {(b["process"], b["thread"], n): e for b in books for n, *e in b["failed"]}
    present = [parse(text) for text in stored]
    copies = Counter(present)
    lost = acknowledged - copies.keys()
    duplicated = {key: count for key, count in copies.items() if count > 1}
    raised_but_stored = raised.keys() & copies.keys()
    by_writer: dict[tuple[int, int], list[int]] = defaultdict(list)
    for process, thread, number in present:
        by_writer[(process, thread)].append(number)
    out_of_order = [w for w, numbers in by_writer.items() if numbers != sorted(numbers)]
    errors = Counter(error for error, _ in raised.values())

    figures = {
        "backend": backend,
        "seconds": DURATION,
        "acknowledged": len(acknowledged),
        "stored": len(present),
        "lost": len(lost),
        "duplicated": len(duplicated),
        "raised": len(raised),
        "raised_but_stored": len(raised_but_stored),
        "writers_out_of_order": len(out_of_order),
    }
    for key, value in figures.items():
        record_property(key, value)
    print(f"\nmulti-process appends: {figures} errors={dict(errors)}")

    assert len(acknowledged) > 0, "no append was acknowledged"
    assert not lost, f"{len(lost)} acknowledged appends lost, e.g. {sorted(lost)[:5]}"
    assert not duplicated, f"stored more than once: {sorted(duplicated.items())[:5]}"
    assert not out_of_order, f"writers whose messages are out of their order: {out_of_order}"
    assert not raised_but_stored, f"raised, yet stored: {sorted(raised_but_stored)[:5]}"
    assert not raised, (
        f"appends raised on a healthy server: {dict(errors)}; e.g. {list(raised.items())[:3]}"
    )
    assert [s.message_count for s in listed if s.session_id == session_id] == [len(present)]
