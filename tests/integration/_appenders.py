"""What each spawned process of the multi-process append test runs (importable by module
name, as spawn requires): a store of its own, threads appending numbered messages to one
session until a deadline, and the books of what was acknowledged."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Event
from typing import Any

import ailib

#: How long a process waits for the signal to start before giving up.
READY_TIMEOUT = 300.0


@dataclass
class WriterBooks:
    """One thread's books: the numbers whose append returned a version, and (number, error
    class, message) of those whose append raised."""

    process: int
    thread: int
    acknowledged: list[int] = field(default_factory=list)
    failed: list[tuple[int, str, str]] = field(default_factory=list)


def content(process: int, thread: int, number: int) -> str:
    return f"{process}:{thread}:{number}"


def parse(text: str) -> tuple[int, int, int]:
    process, thread, number = text.split(":")
    return int(process), int(thread), int(number)


def run_process(
    url: str,
    namespace: str,
    session_id: str,
    process: int,
    threads: int,
    duration: float,
    ready: Queue[Any],
    go: Event,
    results: Queue[Any],
) -> None:
    """Open the store, say ready, wait for ``go``, then append from ``threads`` threads for
    ``duration`` seconds; put every thread's books on ``results``."""
    books = [WriterBooks(process, t) for t in range(threads)]
    try:
        with ailib.open_store(url, namespace=namespace) as store:
            store.exists(session_id)  # connect before the clock starts
            ready.put(process)
            if not go.wait(READY_TIMEOUT):
                raise RuntimeError("the parent never said go")
            deadline = time.monotonic() + duration

            def writer(mine: WriterBooks) -> None:
                number = 0
                while time.monotonic() < deadline:
                    message = {"role": "user", "content": content(process, mine.thread, number)}
                    try:
                        store.append(session_id, message)
                    except Exception as exc:  # the books keep it; the parent reports it
                        mine.failed.append((number, type(exc).__name__, str(exc)[:300]))
                    else:
                        mine.acknowledged.append(number)
                    number += 1

            pool = [threading.Thread(target=writer, args=(b,)) for b in books]
            for thread in pool:
                thread.start()
            for thread in pool:
                thread.join()
        results.put(("ok", process, [vars(b) for b in books]))
    except BaseException as exc:  # reported by the parent, which would otherwise just wait
        results.put(("error", process, f"{type(exc).__name__}: {exc}"))
