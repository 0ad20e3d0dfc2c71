"""`LoopBlockMeter`: how long each callback run by an event loop kept it from running others.

A heartbeat task measures the operating system's scheduling as much as the code under test:
on a busy machine it comes back late although nothing blocked the loop. This meter instead
times every callback (each step of each task) the loop runs, as asyncio's debug mode does
for ``slow_callback_duration``, and subtracts the time the loop's thread spent runnable but
waiting for a CPU, which the kernel reports per thread (``/proc/thread-self/schedstat`` on
Linux; elsewhere the meter falls back to wall-clock time). What remains is what the callback
itself took: computing, or waiting on I/O or a lock, which is what blocking the loop means.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

__all__ = ("LoopBlockMeter", "SlowCallback")

_SCHEDSTAT = "/proc/thread-self/schedstat"


@dataclass(frozen=True)
class SlowCallback:
    """The callback that blocked the loop longest, and for how long (seconds)."""

    blocked: float
    wall: float
    callback: str


class LoopBlockMeter:
    """Measures, while active, each callback ``loop`` runs; ``worst`` is the longest block.

    Use it from the loop's own thread (``schedstat`` is read for the calling thread)::

        meter = LoopBlockMeter(asyncio.get_running_loop())
        with meter.active():
            await work()
        assert meter.worst.blocked < 0.05
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.worst = SlowCallback(0.0, 0.0, "nothing ran")
        self.callbacks = 0
        self._fd: int | None = None
        #: True when run-queue waits are subtracted (Linux); False: wall-clock only.
        self.scheduler_aware = False

    def _waiting(self) -> float:
        """Seconds the loop's thread has spent runnable but not running, so far."""
        if self._fd is None:
            return 0.0
        fields = os.pread(self._fd, 128, 0).split()
        return int(fields[1]) / 1e9

    def _record(self, handle: asyncio.Handle, wall: float, waited: float) -> None:
        self.callbacks += 1
        blocked = max(0.0, wall - max(0.0, waited))
        if blocked > self.worst.blocked:
            self.worst = SlowCallback(blocked, wall, _describe(handle))

    @contextmanager
    def active(self) -> Iterator[None]:
        """Time every callback of the loop until the block ends."""
        try:
            self._fd = os.open(_SCHEDSTAT, os.O_RDONLY)
            self._waiting()
            self.scheduler_aware = True
        except (OSError, IndexError, ValueError):
            self._fd = None
        original: Callable[[asyncio.Handle], None] = asyncio.Handle._run
        loop, thread = self.loop, threading.get_ident()
        meter = self

        def timed(handle: asyncio.Handle) -> None:
            if getattr(handle, "_loop", None) is not loop or threading.get_ident() != thread:
                original(handle)
                return
            waited = meter._waiting()
            started = time.perf_counter()
            try:
                original(handle)
            finally:
                wall = time.perf_counter() - started
                meter._record(handle, wall, meter._waiting() - waited)

        setattr(asyncio.Handle, "_run", timed)  # noqa: B010
        try:
            yield
        finally:
            setattr(asyncio.Handle, "_run", original)  # noqa: B010
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None


def _describe(handle: asyncio.Handle) -> str:
    """The callback, or for a step of a task the coroutine it runs."""
    callback = getattr(handle, "_callback", None)
    task = getattr(callback, "__self__", None)
    if isinstance(task, asyncio.Task):
        coroutine = task.get_coro()
        name = getattr(coroutine, "__qualname__", repr(coroutine))
        return f"a step of task {task.get_name()!r} running {name}"
    return repr(handle)
