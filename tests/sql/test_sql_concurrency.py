"""Concurrent appends to one session lose nothing, duplicate nothing and keep one total order:
from threads sharing a store, and from processes each opening the store by URL."""

from __future__ import annotations

import multiprocessing
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

import ailib

THREADS, PER_THREAD = 8, 40
PROCESSES, PER_PROCESS = 4, 40


@pytest.fixture
def store(any_url: str) -> Iterator[ailib.BaseStore]:
    with ailib.open_store(any_url, namespace=f"conc-{uuid.uuid4().hex[:10]}") as opened:
        yield opened
        for summary in opened.list(limit=100):
            opened.delete(summary.session_id)


def check_log(store: ailib.BaseStore, session_id: str, writers: int, each: int) -> None:
    loaded = store.load(session_id)
    contents = [m["content"] for m in loaded.messages]
    assert len(contents) == writers * each, "lost or duplicated messages"
    assert len(set(contents)) == writers * each, "duplicated messages"
    for worker in range(writers):
        mine = [int(c.split(":")[1]) for c in contents if c.startswith(f"{worker}:")]
        assert mine == list(range(each)), f"writer {worker}'s messages out of order"
    # One total order: every append made one version, and a tail read agrees with the log.
    assert loaded.version == 1 + writers * each
    assert store.load(session_id, last=5).messages == loaded.messages[-5:]


def test_threads_append_to_one_session(store: ailib.BaseStore) -> None:
    session_id = store.create().session_id
    errors: list[BaseException] = []

    def writer(worker: int) -> None:
        try:
            for n in range(PER_THREAD):
                store.append(session_id, {"role": "user", "content": f"{worker}:{n}"})
        except BaseException as exc:
            errors.append(exc)

    pool = [threading.Thread(target=writer, args=(w,)) for w in range(THREADS)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    assert errors == []
    check_log(store, session_id, THREADS, PER_THREAD)


def test_processes_append_to_one_session(
    store: ailib.BaseStore, any_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Spawned children import the worker by module name from the parent's sys.path.
    monkeypatch.syspath_prepend(str(Path(__file__).parent))
    sys.modules.pop("_workers", None)
    from _workers import append_many  # type: ignore[import-not-found]

    session_id = store.create().session_id
    context = multiprocessing.get_context("spawn")
    processes = [
        context.Process(
            target=append_many, args=(any_url, store.namespace, session_id, w, PER_PROCESS)
        )
        for w in range(PROCESSES)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=120)
    assert [p.exitcode for p in processes] == [0] * PROCESSES
    check_log(store, session_id, PROCESSES, PER_PROCESS)
