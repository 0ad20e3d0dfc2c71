"""`Context`: what an operation's program knows of its store, and what the store's
operations share: the manifest cache and the group commit.

The cache holds the manifests this store wrote or read last. Writes base themselves on it
and are checked by ``If-Match``, so a stale entry costs one retry, never a wrong write. Its
lock is held only between steps, so the async store's tasks share it as threads do.

Group commit: concurrent changes to one session from this store share one write. The first
writer to arrive leads: it takes every change queued for the key so far and applies them
with one conditional write, while later arrivals queue up; when it is done it hands the lead
to the first of those. Each change still gets its own result (a version) or its own error,
so a batch behaves exactly like the changes applied one after another. It is written once
as a program: a writer waits with a :class:`~ailib_store_s3.objects.Wait` step on an event
of the store's kind (a ``threading.Event`` for the sync store's threads, an
``asyncio.Event`` for the async store's tasks). Its lock is only ever held between steps,
never across a wait.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, NamedTuple, TypeVar

from ailib.errors import AilibError, ConflictError, StoreUnavailable
from ailib.spi import Change
from ailib_store_s3.client import translate
from ailib_store_s3.manifest import Layout, Manifest, new_token
from ailib_store_s3.objects import Event, Program, Wait, unwrap

__all__ = (
    "Context",
    "GroupCommit",
    "ManifestCache",
    "Op",
    "Pending",
    "fail",
)


_CACHE_SIZE = 128


class Op(NamedTuple):
    """A change to apply, with the op id that makes applying it again a no-op."""

    op_id: str
    change: Change


class ManifestCache:
    """The last ``size`` manifests read or written, with their ETags (thread-safe)."""

    def __init__(self, size: int = _CACHE_SIZE) -> None:
        self._size = size
        self._items: OrderedDict[str, tuple[str, Manifest]] = OrderedDict()
        self._lock = threading.Lock()

    def remember(self, session_id: str, etag: str, manifest: Manifest) -> None:
        with self._lock:
            known = self._items.get(session_id)
            if known and known[1].gen == manifest.gen and known[1].version > manifest.version:
                return  # a slow read finishing after a newer write: keep the newer one
            self._items[session_id] = (etag, manifest)
            self._items.move_to_end(session_id)
            while len(self._items) > self._size:
                self._items.popitem(last=False)

    def forget(self, session_id: str) -> None:
        with self._lock:
            self._items.pop(session_id, None)

    def get(self, session_id: str) -> tuple[Manifest, str] | None:
        with self._lock:
            found = self._items.get(session_id)
        return None if found is None else (found[1], found[0])


@dataclass
class Context:
    """What the programs know of their store: its keys, manifest cache and group commit,
    and where it is, as messages name it (its masked URL, bucket and endpoint)."""

    layout: Layout
    group: GroupCommit[Op]
    url: str
    bucket: str
    endpoint: str
    cache: ManifestCache = field(default_factory=ManifestCache)
    #: Whether the expiry index is known to be complete (see ``reads.purge``).
    expiry_indexed: bool = False
    #: This store's name in a manifest's write turn (``writes.TURN``).
    writer: str = field(default_factory=new_token)

    def error(self, exc: BaseException, action: str) -> AilibError:
        return translate(exc, bucket=self.bucket, endpoint=self.endpoint, action=action)


C = TypeVar("C")


@dataclass(eq=False)  # compared by identity: two writers may queue equal changes
class Pending(Generic[C]):
    """One change waiting for, or in, a batch; the batch sets ``version`` or ``error``."""

    change: C
    wake: Event
    version: int | None = None
    error: BaseException | None = None
    lead: bool = False


def fail(batch: Sequence[Pending[C]], error: BaseException) -> None:
    for pending in batch:
        pending.version = None
        pending.error = error


@dataclass
class _Queue(Generic[C]):
    items: list[Pending[C]] = field(default_factory=list)
    leading: bool = False


class GroupCommit(Generic[C]):
    def __init__(self, event: Callable[[], Event]) -> None:
        self._event = event
        self._lock = threading.Lock()
        self._queues: dict[str, _Queue[C]] = {}

    def submit(
        self, key: str, change: C, apply: Callable[[Sequence[Pending[C]]], Program[None]]
    ) -> Program[int]:
        """Apply ``change`` to ``key``, batched with concurrent ones; its version."""
        mine: Pending[C] = Pending(change, self._event())
        with self._lock:
            queue = self._queues.setdefault(key, _Queue())
            queue.items.append(mine)
            mine.lead = not queue.leading
            queue.leading = True
        if not mine.lead:
            try:
                unwrap(
                    (yield Wait(mine.wake))
                )  # set when our batch is done, or when we are to lead
            except BaseException:  # a cancelled task: leave the queue, pass on any lead
                self._leave(key, queue, mine)
                raise
        if mine.lead:
            with self._lock:
                batch, queue.items = queue.items, []
            try:
                yield from apply(batch)
            except BaseException as exc:
                # No change of a failed batch is acknowledged: each gets the error (``apply``
                # sets versions only once the batch is stored). A cancelled leader leaves the
                # others' changes in an unknown state.
                error: AilibError
                own: BaseException
                if isinstance(exc, Exception):
                    error = own = _as_ailib(exc, key)
                else:
                    error, own = _abandoned(key), exc
                for pending in batch:
                    if pending.error is None:
                        pending.version = None
                        pending.error = own if pending is mine else error
            finally:
                self._hand_over(key, queue, batch)
        if mine.error is not None:
            raise mine.error
        if mine.version is None:
            raise RuntimeError("group commit finished a change without a result")
        return mine.version

    def _hand_over(self, key: str, queue: _Queue[C], batch: Sequence[Pending[C]]) -> None:
        with self._lock:
            self._pass_lead(key, queue)
        for pending in batch:
            pending.wake.set()

    def _leave(self, key: str, queue: _Queue[C], mine: Pending[C]) -> None:
        """A waiting writer gives up: if no batch has taken its change yet, it is dropped,
        and a lead handed to it goes to the next writer."""
        with self._lock:
            if mine in queue.items:
                queue.items.remove(mine)
                if mine.lead:
                    self._pass_lead(key, queue)

    def _pass_lead(self, key: str, queue: _Queue[C]) -> None:
        if queue.items:  # the lead goes to the first writer that queued meanwhile
            queue.items[0].lead = True
            queue.items[0].wake.set()
        else:
            queue.leading = False
            if self._queues.get(key) is queue:
                del self._queues[key]


def _as_ailib(exc: Exception, key: str) -> AilibError:
    """``exc`` if it is an ailib error, else an ailib error wrapping it."""
    if isinstance(exc, AilibError):
        return exc
    wrapped = StoreUnavailable(
        f"writing to session {key!r} failed: {type(exc).__name__}: {exc}; the change was not "
        "acknowledged"
    )
    wrapped.__cause__ = exc
    return wrapped


def _abandoned(key: str) -> ConflictError:
    return ConflictError(
        f"the write carrying this change to session {key!r} was cancelled; it may or may "
        "not have been applied: reload the session"
    )
