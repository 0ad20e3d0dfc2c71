"""Group commit: concurrent changes to one session from this process share one write.

The first thread to arrive leads: it takes every change queued for the key so far and
applies them with one conditional write, while later arrivals queue up; when it is done it
hands the lead to the first of those. Each change still gets its own result (a version) or
its own error, so a batch behaves exactly like the changes applied one after another.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

__all__ = ("GroupCommit", "Pending", "fail")

C = TypeVar("C")


@dataclass
class Pending(Generic[C]):
    """One change waiting for, or in, a batch; the batch sets ``version`` or ``error``."""

    change: C
    version: int | None = None
    error: BaseException | None = None
    lead: bool = False
    wake: threading.Event = field(default_factory=threading.Event)


def fail(batch: Sequence[Pending[C]], error: BaseException) -> None:
    for pending in batch:
        pending.version = None
        pending.error = error


@dataclass
class _Queue(Generic[C]):
    items: list[Pending[C]] = field(default_factory=list)
    leading: bool = False


class GroupCommit(Generic[C]):
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queues: dict[str, _Queue[C]] = {}

    def submit(self, key: str, change: C, apply: Callable[[Sequence[Pending[C]]], None]) -> int:
        """Apply ``change`` to ``key``, batched with concurrent ones; its version."""
        mine: Pending[C] = Pending(change)
        with self._lock:
            queue = self._queues.setdefault(key, _Queue())
            queue.items.append(mine)
            mine.lead = not queue.leading
            queue.leading = True
        if not mine.lead:
            mine.wake.wait()  # set when our batch is done, or when we are to lead
        if mine.lead:
            with self._lock:
                batch, queue.items = queue.items, []
            try:
                apply(batch)
            except BaseException as exc:
                for pending in batch:
                    if pending.version is None and pending.error is None:
                        pending.error = exc
            finally:
                with self._lock:
                    if queue.items:  # hand over to the first writer that queued meanwhile
                        queue.items[0].lead = True
                        queue.items[0].wake.set()
                    else:
                        queue.leading = False
                        if self._queues.get(key) is queue:
                            del self._queues[key]
                for pending in batch:
                    pending.wake.set()
        if mine.error is not None:
            raise mine.error
        if mine.version is None:
            raise RuntimeError("group commit finished a change without a result")
        return mine.version
