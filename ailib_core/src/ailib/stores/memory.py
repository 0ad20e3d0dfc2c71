"""`memory://`: sessions in this process's memory.

``memory://`` is private to the store object; ``memory://name`` is shared by every store
opened with that name in the process. Thread-safe; nothing survives the process.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import Any, ClassVar

from ailib.document import DocumentStore, check_count, check_expected, live_page, touch
from ailib.errors import ConflictError, SessionNotFound
from ailib.messages import copy_json
from ailib.records import Change, CheckpointRecord, SessionRecord
from ailib.url import StoreURL, make_url

__all__ = ("MemoryStore",)


class _Space:
    """One named memory: records by (namespace, session id), behind one lock."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.records: dict[tuple[str, str], SessionRecord] = {}


_SHARED: dict[str, _Space] = {}
_SHARED_LOCK = threading.Lock()


class MemoryStore(DocumentStore):
    async_twin: ClassVar[str | None] = "ailib.stores.memory_async:AsyncMemoryStore"

    def __init__(self, *, name: str = "", **options: Any) -> None:
        super().__init__(**options)
        self.name = name
        if name:
            with _SHARED_LOCK:
                self._space = _SHARED.setdefault(name, _Space())
        else:
            self._space = _Space()

    @classmethod
    def from_url(cls, url: str | StoreURL, **options: Any) -> MemoryStore:
        parsed = make_url(url)
        name = (parsed.host or "") + parsed.path.strip("/")
        store = cls(name=name, **options)
        store._url = parsed
        return store

    def _key(self, session_id: str) -> tuple[str, str]:
        return (self.namespace, session_id)

    def _read(self, session_id: str) -> SessionRecord | None:
        with self._space.lock:
            record = self._space.records.get(self._key(session_id))
            return None if record is None else _private(record)

    def _write(self, record: SessionRecord, expected_version: int | None) -> None:
        key = self._key(record.session_id)
        with self._space.lock:
            current = self._space.records.get(key)
            if (current.version if current else None) != expected_version:
                raise ConflictError(
                    f"session {record.session_id!r} changed concurrently in {self.url}"
                )
            stored = _private(record)
            stored.message_count = len(stored.messages)
            self._space.records[key] = stored

    def _remove(self, session_id: str) -> bool:
        with self._space.lock:
            return self._space.records.pop(self._key(session_id), None) is not None

    def _scan(self) -> Iterable[SessionRecord]:
        with self._space.lock:
            return [
                _header(r) for (ns, _), r in self._space.records.items() if ns == self.namespace
            ]

    # Fast paths: work on the record in place under the lock, copying only what moves.

    def _fetch(self, session_id: str, last: int | None) -> SessionRecord | None:
        if last is None:
            return self._read(session_id)
        with self._space.lock:
            record = self._space.records.get(self._key(session_id))
            if record is None:
                return None
            check_count(record, self.url)
            tail = copy.copy(record)
            tail.checkpoints = []
            tail.ops = {}
            tail.messages = copy_json(record.messages[-last:] if last else [])
            return tail

    def _list(
        self, user_id: str | None, limit: int, after: tuple[float, str] | None, now: float
    ) -> Sequence[SessionRecord]:
        with self._space.lock:
            mine = [r for (ns, _), r in self._space.records.items() if ns == self.namespace]
            return [_header(r) for r in live_page(mine, user_id, limit, after, now)]

    def _purge(self, now: float) -> int:
        # Tested on the stored records and dropped in the same hold of the lock: nothing is
        # copied, and a session written again between a test and its removal cannot be lost.
        # A record without an expiry is passed over without a call.
        namespace = self.namespace
        with self._space.lock:
            records = self._space.records
            gone = [
                key
                for key, r in records.items()
                if r.expires_at is not None and key[0] == namespace and r.expired(now)
            ]
            for key in gone:
                del records[key]
            return len(gone)

    def _apply(self, session_id: str, change: Change, now: float) -> int:
        with self._space.lock:
            record = self._space.records.get((self.namespace, session_id))
            if record is None or record.expired(now):
                raise SessionNotFound(session_id, self.url)
            if change.op_id in record.ops:
                return record.ops[change.op_id]
            # Checked here first: the checks name the store, whose URL costs a call.
            if record.message_count != len(record.messages):
                check_count(record, self.url)
            if change.expected_version is not None:
                check_expected(record, change.expected_version, self.url)
            # The change's messages are copies made for this write; hooks may have put
            # shared objects in them.
            record.messages.extend(copy.deepcopy(change.append) if self.hooks else change.append)
            record.message_count = len(record.messages)
            record.metadata = change.apply_metadata(record.metadata)
            touch(record, now, change.ttl)
            record.version += 1
            record.remember(change.op_id, record.version)
            return record.version


def _private(record: SessionRecord) -> SessionRecord:
    """A copy of ``record`` that shares nothing with the stored one."""
    return replace(
        record,
        messages=copy_json(record.messages),
        metadata=copy_json(record.metadata),
        checkpoints=[
            CheckpointRecord(
                c.number,
                c.created_at,
                c.message_count,
                copy_json(c.metadata),
                c.label,
                None if c.messages is None else copy_json(c.messages),
            )
            for c in record.checkpoints
        ],
        ops=dict(record.ops),
    )


def _header(record: SessionRecord) -> SessionRecord:
    """A copy of ``record`` for listing: no messages, nothing shared with the stored one."""
    header = copy.copy(record)
    header.messages = []
    header.message_count = len(record.messages)
    header.metadata = copy_json(record.metadata)
    header.checkpoints = []
    header.ops = {}
    return header
