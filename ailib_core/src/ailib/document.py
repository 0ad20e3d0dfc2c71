"""`DocumentStore`: every store operation from four compare-and-set document primitives.

A plugin that keeps each session as one document (a file, a key, a row) subclasses this and
implements ``_read``, ``_write``, ``_remove`` and ``_scan``; ``_write`` must be atomic and
refuse to write when the stored version is not the expected one. Every write rewrites the
whole document, so this suits small sessions; first-party stores implement the operations of
:class:`ailib.base.BaseStore` directly instead.
"""

from __future__ import annotations

import random
import time
from abc import abstractmethod
from collections.abc import Callable, Iterable, Sequence

from ailib.base import BaseStore, CheckpointState
from ailib.checkpoints import common_prefix, materialize
from ailib.errors import (
    CheckpointNotFound,
    ConflictError,
    CorruptSessionError,
    SessionNotFound,
)
from ailib.records import Change, CheckpointRecord, SessionRecord

__all__ = (
    "DocumentStore",
    "add_checkpoint",
    "apply_change",
    "check_count",
    "check_expected",
    "checkpoint_state",
    "live_page",
    "replace_messages",
    "restore_checkpoint",
    "stage_edit",
    "touch",
)

_ATTEMPTS = 200


class DocumentStore(BaseStore):
    @abstractmethod
    def _read(self, session_id: str) -> SessionRecord | None:
        """The stored document, or None."""

    @abstractmethod
    def _write(self, record: SessionRecord, expected_version: int | None) -> None:
        """Store ``record`` if the stored version is ``expected_version`` (None: if there is no
        document); raise ConflictError otherwise."""

    @abstractmethod
    def _remove(self, session_id: str) -> bool:
        """Delete the document; True if it existed."""

    @abstractmethod
    def _scan(self) -> Iterable[SessionRecord]:
        """Every document of this store's namespace (messages may be left out)."""

    # -- the operations, derived ----------------------------------------------------------

    def _update(
        self,
        session_id: str,
        now: float,
        edit: Callable[[SessionRecord], bool | None],
        op_id: str | None = None,
    ) -> SessionRecord:
        """Read-edit-write with retries when another writer got in first; each attempt is
        staged by :func:`stage_edit`. ``edit`` raises to refuse (a stale expected version,
        say); it is then not retried. A write whose ``op_id`` the document already applied is
        not applied again: the stored record comes back with the version that write
        produced."""
        for attempt in range(_ATTEMPTS):
            current = self._read(session_id)
            if current is None or current.expired(now):
                raise SessionNotFound(session_id, self.url)
            seen = stage_edit(current, edit, op_id, self.url)
            if seen is None:
                return current
            try:
                self._write(current, seen)
                return current
            except ConflictError:
                time.sleep(random.uniform(0, min(0.05, 0.001 * 2**attempt)))
                now = time.time()
        raise ConflictError(
            f"session {session_id!r} in {self.url} kept changing during {_ATTEMPTS} attempts"
        )

    def _create(self, record: SessionRecord) -> None:
        current = self._read(record.session_id)
        if current is not None and not current.expired(record.updated_at):
            raise ConflictError(
                f"session {record.session_id!r} already exists in {self.url}; "
                "load it, or create one with another id"
            )
        record.message_count = len(record.messages)
        self._write(record, None if current is None else current.version)

    def _fetch(self, session_id: str, last: int | None) -> SessionRecord | None:
        record = self._read(session_id)
        if record is not None and last is not None:
            check_count(record, self.url)
            record.message_count = len(record.messages)
            record.messages = record.messages[-last:] if last else []
        return record

    def _apply(self, session_id: str, change: Change, now: float) -> int:
        def edit(record: SessionRecord) -> None:
            apply_change(record, change, now, self.url)

        return self._update(session_id, now, edit, change.op_id).version

    def _replace(self, record: SessionRecord, expected_version: int, now: float) -> int:
        def edit(current: SessionRecord) -> None:
            replace_messages(current, record, expected_version, now, self.url)

        return self._update(record.session_id, now, edit).version

    def _delete(self, session_id: str) -> bool:
        return self._remove(session_id)

    def _list(
        self, user_id: str | None, limit: int, after: tuple[float, str] | None, now: float
    ) -> Sequence[SessionRecord]:
        return live_page(self._scan(), user_id, limit, after, now)

    def _purge(self, now: float) -> int:
        return sum(1 for r in list(self._scan()) if r.expired(now) and self._remove(r.session_id))

    def _checkpoint(self, session_id: str, label: str | None, now: float) -> int:
        def edit(record: SessionRecord) -> None:
            add_checkpoint(record, label, now)

        return self._update(session_id, now, edit).checkpoints[-1].number

    def _checkpoints(self, session_id: str, now: float) -> Sequence[CheckpointRecord] | None:
        record = self._read(session_id)
        return None if record is None or record.expired(now) else record.checkpoints

    def _checkpoint_state(self, session_id: str, number: int, now: float) -> CheckpointState:
        record = self._read(session_id)
        if record is None or record.expired(now):
            raise SessionNotFound(session_id, self.url)
        return checkpoint_state(record, number)

    def _restore(self, session_id: str, number: int, now: float) -> int:
        def edit(record: SessionRecord) -> None:
            restore_checkpoint(record, number, now)

        return self._update(session_id, now, edit).version


# -- the edits, on a document read: shared by every store that keeps sessions as documents --


def apply_change(record: SessionRecord, change: Change, now: float, where: str) -> None:
    """Apply ``change`` to ``record`` (ConflictError if it expects another version)."""
    check_expected(record, change.expected_version, where)
    record.messages.extend(change.append)
    record.metadata = change.apply_metadata(record.metadata)
    touch(record, now, change.ttl)


def replace_messages(
    current: SessionRecord, record: SessionRecord, expected_version: int, now: float, where: str
) -> None:
    """Make ``current`` hold the messages and metadata of ``record``; checkpoints whose
    messages the rewrite breaks keep a copy of them."""
    check_expected(current, expected_version, where)
    keep = common_prefix(current.messages, record.messages)
    materialize(current.checkpoints, current.messages, keep)
    current.messages = list(record.messages)
    current.metadata = dict(record.metadata)
    touch(current, now, record.ttl)


def live_page(
    records: Iterable[SessionRecord],
    user_id: str | None,
    limit: int,
    after: tuple[float, str] | None,
    now: float,
) -> list[SessionRecord]:
    """One page of the live ``records`` (of ``user_id`` if given), newest first, after the
    (updated_at, session_id) cursor ``after``."""
    live = [
        r
        for r in records
        if not r.expired(now)
        and (user_id is None or _user_of(r) == user_id)
        and (after is None or (r.updated_at, r.session_id) < after)
    ]
    live.sort(key=lambda r: (r.updated_at, r.session_id), reverse=True)
    return live[:limit]


def add_checkpoint(record: SessionRecord, label: str | None, now: float) -> None:
    """A checkpoint of ``record`` as it stands: a pointer to its messages, numbered next."""
    number = max((c.number for c in record.checkpoints), default=0) + 1
    record.checkpoints.append(
        CheckpointRecord(number, now, len(record.messages), dict(record.metadata), label)
    )


def checkpoint_state(record: SessionRecord, number: int) -> CheckpointState:
    """The messages and metadata checkpoint ``number`` of ``record`` holds."""
    found = _find(record, number)
    messages = found.messages
    if messages is None:
        messages = record.messages[: found.message_count]
    return list(messages), dict(found.metadata)


def restore_checkpoint(record: SessionRecord, number: int, now: float) -> None:
    """Bring ``record`` back to checkpoint ``number``, after a checkpoint of where it was."""
    target = _find(record, number)
    add_checkpoint(record, f"before restore to {number}", now)
    if target.messages is None:
        keep = target.message_count
        messages = record.messages[:keep]
    else:
        messages = list(target.messages)
        keep = common_prefix(record.messages, messages)
    materialize(record.checkpoints, record.messages, keep)
    record.messages = messages
    record.metadata = dict(target.metadata)
    touch(record, now, None)


def stage_edit(
    record: SessionRecord,
    edit: Callable[[SessionRecord], bool | None],
    op_id: str | None,
    where: str,
) -> int | None:
    """One attempt of a read-edit-write, on ``record`` as just read: the version a write of
    it must expect, or None when there is nothing to write.

    CorruptSessionError if its stored message count disagrees with its messages. If it
    already applied ``op_id``, it takes the version that write produced and there is nothing
    to write. Otherwise ``edit`` changes it (raising to refuse; returning False to write
    nothing) and it takes the next version, its message count and ``op_id``."""
    check_count(record, where)
    seen = record.version
    if op_id is not None and op_id in record.ops:
        record.version = record.ops[op_id]
        return None
    if edit(record) is False:
        return None
    record.version = seen + 1
    record.message_count = len(record.messages)
    record.remember(op_id, record.version)
    return seen


def check_count(record: SessionRecord, where: str) -> None:
    """CorruptSessionError if the document's stored message count disagrees with the
    messages it holds (a message lost, or the count damaged)."""
    count = record.message_count
    if count is not None and count != len(record.messages):
        raise CorruptSessionError(
            f"session {record.session_id!r} in {where}: its stored message count is {count!r} "
            f"but {len(record.messages)} messages are stored; messages are missing or the count "
            "is wrong"
        )


def _user_of(record: SessionRecord) -> object:
    metadata = record.metadata
    return metadata.get("user_id") if isinstance(metadata, dict) else None


def check_expected(record: SessionRecord, expected: int | None, where: str) -> None:
    if expected is not None and record.version != expected:
        raise ConflictError(
            f"session {record.session_id!r} in {where} is at version {record.version}, "
            f"not {expected}: someone else changed it; reload and try again"
        )


def touch(record: SessionRecord, now: float, ttl: float | None) -> None:
    if ttl is not None:
        record.ttl = ttl
    record.updated_at = now
    record.expires_at = None if record.ttl is None else now + record.ttl


def _find(record: SessionRecord, number: int) -> CheckpointRecord:
    for checkpoint in record.checkpoints:
        if checkpoint.number == number:
            return checkpoint
    raise CheckpointNotFound(record.session_id, number)
