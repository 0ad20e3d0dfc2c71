"""The store bases: the public store API over a small set of backend operations.

``AsyncBaseStore`` (``ailib.async_base``) is the source of both twins; ``BaseStore``
(``ailib.base``) is generated from it by ``scripts/generate_sync.py``, which drops ``async``
and ``await`` and renames the async names to the sync ones (see ``docs/architecture.md``).

The public methods validate input, apply the TTL policy and the write hooks, and turn records
into sessions (the I/O-free steps live in :class:`ailib.storecore.StoreCore`); a backend
implements only the underscore operations below, each of which must be atomic.
:class:`ailib.document.DocumentStore` derives every operation from four compare-and-set
document primitives, for plugins that want to be small rather than fast.
"""

from __future__ import annotations

import builtins
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any, Self

from ailib.arguments import check_count, check_kind, check_label
from ailib.async_session import AsyncSession, bound
from ailib.errors import ConflictError, SessionNotFound
from ailib.ids import check_session_id
from ailib.messages import CHAT, Message
from ailib.records import (
    Change,
    CheckpointInfo,
    CheckpointRecord,
    Page,
    SessionRecord,
    SessionSummary,
)
from ailib.session import Session
from ailib.storecore import CheckpointState, StoreCore
from ailib.user_memory import AsyncUserMemories

__all__ = ("EVERY_MESSAGE", "POP_ATTEMPTS", "AsyncBaseStore", "CheckpointState")

#: How often a default ``_pop`` re-reads and retries when another writer got in first.
POP_ATTEMPTS = 50
#: The count ``clear`` pops: more than any session holds, and still exact as a 64-bit
#: integer and as a double (a Lua number in Redis scripts).
EVERY_MESSAGE = 2**62


class AsyncBaseStore(StoreCore, AsyncUserMemories, ABC):
    """Implements :class:`ailib.SessionStore` (each method awaited, on the async twin) on top
    of the abstract ``_`` operations."""

    # -- backend operations: each one atomic ----------------------------------------------

    @abstractmethod
    async def _create(self, record: SessionRecord) -> None:
        """Insert a new session (an expired one with the id may be replaced); ConflictError if
        a live one has the id. ``record.checkpoints`` (imports carry them, each with its
        messages) are stored too, keeping their numbers, labels and times."""

    @abstractmethod
    async def _fetch(self, session_id: str, last: int | None) -> SessionRecord | None:
        """The session with all its messages, or (``last``) at least its last ``last``;
        ``message_count`` tells the total. None if absent; may return an expired record."""

    @abstractmethod
    async def _apply(self, session_id: str, change: Change, now: float) -> int:
        """Append and/or change metadata; return the new version. SessionNotFound if absent
        or expired, ConflictError if ``change.expected_version`` is stale."""

    @abstractmethod
    async def _replace(self, record: SessionRecord, expected_version: int, now: float) -> int:
        """Make the stored session equal ``record`` (messages, metadata, ttl) if its version is
        ``expected_version``; copy the messages of checkpoints the rewrite breaks first."""

    @abstractmethod
    async def _delete(self, session_id: str) -> bool:
        """Delete the session with its checkpoints; True if it existed."""

    @abstractmethod
    async def _list(
        self, user_id: str | None, limit: int, after: tuple[float, str] | None, now: float
    ) -> Sequence[SessionRecord]:
        """Up to ``limit`` live sessions (messages may be empty; ``message_count`` set), newest
        ``updated_at`` first, ties by id descending, starting after the ``after`` key."""

    @abstractmethod
    async def _purge(self, now: float) -> int:
        """Delete every session expired at ``now``; return how many."""

    @abstractmethod
    async def _checkpoint(self, session_id: str, label: str | None, now: float) -> int:
        """Record the current state as the next checkpoint; return its number."""

    @abstractmethod
    async def _checkpoints(self, session_id: str, now: float) -> Sequence[CheckpointRecord] | None:
        """The session's checkpoints (messages not needed), oldest first; None if absent."""

    @abstractmethod
    async def _checkpoint_state(self, session_id: str, number: int, now: float) -> CheckpointState:
        """Messages and encoded metadata of checkpoint ``number``; CheckpointNotFound if none."""

    @abstractmethod
    async def _restore(self, session_id: str, number: int, now: float) -> int:
        """Checkpoint the current state, then make checkpoint ``number`` current."""

    async def _pop(self, session_id: str, count: int, now: float) -> list[Message]:
        """Remove and return the last ``count`` messages, oldest first (all of them when the
        session holds fewer; ``clear`` passes :data:`EVERY_MESSAGE`). The default reads the
        session and rewrites it with ``_replace``; stores override it with something cheaper."""
        for _ in range(POP_ATTEMPTS):
            record = self._live(await self._fetch(session_id, None), None)
            if record is None:
                raise SessionNotFound(session_id, self.url)
            if not record.messages:
                return []
            shorter, removed = self._popped(record, count)
            try:
                await self._replace(shorter, shorter.version, now)
            except ConflictError:
                now = time.time()
                continue
            return removed
        raise ConflictError(f"session {session_id!r} in {self.url} kept changing; try again")

    async def aclose(self) -> None:
        """Release connections. The store must not be used afterwards."""

    # -- public API -----------------------------------------------------------------------

    async def create(
        self,
        metadata: Mapping[str, Any] | None = None,
        ttl: float | str | None = None,
        *,
        session_id: str | None = None,
        kind: str = CHAT,
        messages: Sequence[Message] = (),
    ) -> AsyncSession:
        session = Session(session_id, messages=messages, metadata=metadata, kind=kind)
        record = self._new_record(session, ttl)
        await self._create(record)
        self._stamp(session, record)
        return bound(session, self)

    async def session(
        self, session_id: str, *, create: bool = False, kind: str = CHAT
    ) -> AsyncSession:
        check_kind(kind)
        found = await self.get(session_id)
        if found is None:
            if not create:
                raise SessionNotFound(session_id, self.url)
            return await self.create(session_id=session_id, kind=kind)
        return bound(found, self)

    async def load(self, session_id: str, last: int | None = None) -> Session:
        record = await self._fetch_live(session_id, last)
        if record is None:
            raise SessionNotFound(session_id, self.url)
        return self._to_session(record)

    async def get(self, session_id: str) -> Session | None:
        record = await self._fetch_live(session_id, None)
        return None if record is None else self._to_session(record)

    async def exists(self, session_id: str) -> bool:
        return await self._fetch_live(session_id, 0) is not None

    async def save(self, session: Session, ttl: float | str | None = None) -> int:
        self._check_session(session)
        if session.version == 0:
            record = self._new_record(session, ttl)
            await self._create(record)
        else:
            record = self._replacement(session, ttl)
            record.version = await self._replace(record, session.version, record.updated_at)
        self._stamp(session, record)
        return session.version

    async def append(
        self,
        session_id: str,
        *messages: Message,
        expected_version: int | None = None,
        idempotency_key: str | None = None,
    ) -> int:
        change, counts, items_only = self._append_change(
            session_id, messages, expected_version, idempotency_key
        )
        if counts or items_only:
            header = await self._fetch(session_id, 0)
            if items_only:
                self._check_kind_of(session_id, items_only, header)
            if counts:
                change = self._with_totals(change, counts, header)
        return await self._apply(session_id, change, time.time())

    async def update_metadata(
        self,
        session_id: str,
        values: Mapping[str, Any] | None = None,
        *,
        unset: Sequence[str] = (),
        expected_version: int | None = None,
        idempotency_key: str | None = None,
    ) -> int:
        change = self._metadata_change(session_id, values, unset, expected_version, idempotency_key)
        return await self._apply(session_id, change, time.time())

    async def pop(self, session_id: str, count: int = 1) -> builtins.list[Message]:
        """Remove and return the last ``count`` messages, oldest first (fewer if the session
        is shorter). A rewrite: checkpoints that need the messages keep a copy."""
        check_session_id(session_id)
        check_count(count, "count", 1)
        return await self._pop(session_id, count, time.time())

    async def clear(self, session_id: str) -> int:
        """Remove every message (metadata and checkpoints stay); returns how many."""
        check_session_id(session_id)
        return len(await self._pop(session_id, EVERY_MESSAGE, time.time()))

    async def delete(self, session_id: str) -> bool:
        check_session_id(session_id)
        return await self._delete(session_id)

    async def list(
        self,
        user_id: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
        *,
        kind: str | None = None,
    ) -> Page:
        """Sessions newest first; ``kind`` picks one kind (memory sessions only when asked)."""
        after, now = self._list_args(user_id, limit, cursor, kind)
        user_key = self._user_key(user_id)
        listed: builtins.list[tuple[SessionRecord, SessionSummary]] = []
        while True:
            batch = await self._list(user_key, limit + 1, after, now)
            listed += self._listable(batch, kind)
            if len(batch) <= limit or len(listed) > limit:
                return self._page(listed, limit, now)
            after = (batch[-1].updated_at, batch[-1].session_id)

    async def purge_expired(self) -> int:
        return await self._purge(time.time())

    async def checkpoint(self, session_id: str, label: str | None = None) -> int:
        check_session_id(session_id)
        check_label(label)
        return await self._checkpoint(session_id, label, time.time())

    async def checkpoints(self, session_id: str) -> builtins.list[CheckpointInfo]:
        check_session_id(session_id)
        found = await self._checkpoints(session_id, time.time())
        if found is None:
            raise SessionNotFound(session_id, self.url)
        return [c.info() for c in found]

    async def restore(self, session_id: str, version: int) -> int:
        check_session_id(session_id)
        check_count(version, "version", 1)
        return await self._restore(session_id, version, time.time())

    async def fork(self, session_id: str, version: int | None = None) -> AsyncSession:
        if version is not None:
            check_count(version, "version", 1)
        source = await self.load(session_id)
        if version is None:
            return await self.create(source.metadata, kind=source.kind, messages=source.messages)
        state = await self._checkpoint_state(session_id, version, time.time())
        messages, metadata = self._readable_state(session_id, state, source.kind)
        return await self.create(
            self._decoded(session_id, metadata), kind=source.kind, messages=messages
        )

    async def export_session(self, session_id: str) -> dict[str, Any]:
        """The session and its checkpoints as one JSON-ready dict (``Session.to_dict`` plus
        ``ttl`` and ``checkpoints``), the same for every backend; ``import_session`` reads it."""
        record = await self._fetch_live(session_id, None)
        found = await self._checkpoints(session_id, time.time())
        if record is None or found is None:
            raise SessionNotFound(session_id, self.url)
        states = [
            (c, await self._checkpoint_state(session_id, c.number, time.time())) for c in found
        ]
        return self._export(record, states)

    async def import_session(self, data: Mapping[str, Any]) -> Session:
        """Store a session exported by ``export_session`` (from any store) under its own id,
        with its checkpoints; ConflictError if a live session has that id."""
        record = self._imported_record(data)
        await self._create(record)
        return self._to_session(record)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def _fetch_live(self, session_id: str, last: int | None) -> SessionRecord | None:
        check_session_id(session_id)
        self._check_last(last)
        record = await self._fetch(session_id, last)
        while (wider := self._wider_tail(record, last)) is not None:
            record = await self._fetch(session_id, wider)
        return self._live(record, last)
