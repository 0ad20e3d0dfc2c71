"""Every store operation as a program over four steps on a dict of documents.

What a store built on ``ailib.spi.ProgramStore`` writes: this module is its ``Programs``
(mypy checks it where the store names it), and ``program_memory_store`` performs the steps.
The operations are those of ``DocumentStore``: a read-edit-write that retries when another
writer got in first, checkpoints as pointers copied before a rewrite breaks them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final, TypeAlias, TypeVar

from ailib.checkpoints import materialize as copy_broken_checkpoints
from ailib.document import check_count, check_expected, touch
from ailib.errors import CheckpointNotFound, ConflictError, SessionNotFound
from ailib.spi import (
    Change,
    CheckpointRecord,
    CheckpointState,
    Message,
    Program,
    SessionRecord,
    common_prefix,
)

T = TypeVar("T")

ATTEMPTS: Final = 200


@dataclass(frozen=True)
class Read:
    """The stored document (a copy), or None."""

    session_id: str


@dataclass(frozen=True)
class Write:
    """Store ``record`` if the stored version is ``expected_version`` (None: no document);
    True if it was written."""

    record: SessionRecord
    expected_version: int | None


@dataclass(frozen=True)
class Remove:
    """Delete the document; True if it existed."""

    session_id: str


@dataclass(frozen=True)
class Scan:
    """Every document of the namespace (copies, messages left out)."""


Step: TypeAlias = Read | Write | Remove | Scan
Op: TypeAlias = Program[Step, T]


@dataclass(frozen=True)
class Context:
    """What the programs know of their store: where it is, for errors."""

    where: str


def _update(
    c: Context,
    session_id: str,
    now: float,
    edit: Callable[[SessionRecord], bool | None],
    op_id: str | None = None,
) -> Op[SessionRecord]:
    """Read, ``edit``, write; again while another writer gets in first. ``edit`` returns
    False to write nothing; a change whose ``op_id`` was applied is not applied again."""
    for _ in range(ATTEMPTS):
        current: SessionRecord | None = yield Read(session_id)
        if current is None or current.expired(now):
            raise SessionNotFound(session_id, c.where)
        check_count(current, c.where)
        seen = current.version
        if op_id is not None and op_id in current.ops:
            current.version = current.ops[op_id]
            return current
        if edit(current) is False:
            return current
        current.version = seen + 1
        current.message_count = len(current.messages)
        current.remember(op_id, current.version)
        if (yield Write(current, seen)):
            return current
        now = time.time()
    raise ConflictError(f"session {session_id!r} in {c.where} kept changing; try again")


def create(c: Context, record: SessionRecord) -> Op[None]:
    current: SessionRecord | None = yield Read(record.session_id)
    record.message_count = len(record.messages)
    live = current is not None and not current.expired(record.updated_at)
    if live or not (yield Write(record, None if current is None else current.version)):
        raise ConflictError(f"session {record.session_id!r} already exists in {c.where}")


def fetch(c: Context, session_id: str, last: int | None) -> Op[SessionRecord | None]:
    record: SessionRecord | None = yield Read(session_id)
    if record is not None and last is not None:
        check_count(record, c.where)
        record.message_count = len(record.messages)
        record.messages = record.messages[-last:] if last else []
    return record


def apply(c: Context, session_id: str, change: Change, now: float) -> Op[int]:
    def edit(record: SessionRecord) -> None:
        check_expected(record, change.expected_version, c.where)
        record.messages.extend(change.append)
        record.metadata = change.apply_metadata(record.metadata)
        touch(record, now, change.ttl)

    return (yield from _update(c, session_id, now, edit, change.op_id)).version


def replace(c: Context, record: SessionRecord, expected_version: int, now: float) -> Op[int]:
    def edit(current: SessionRecord) -> None:
        check_expected(current, expected_version, c.where)
        keep = common_prefix(current.messages, record.messages)
        copy_broken_checkpoints(current.checkpoints, current.messages, keep)
        current.messages = list(record.messages)
        current.metadata = dict(record.metadata)
        touch(current, now, record.ttl)

    return (yield from _update(c, record.session_id, now, edit)).version


def delete(c: Context, session_id: str) -> Op[bool]:
    removed: bool = yield Remove(session_id)
    return removed


def list_page(
    c: Context, user_id: str | None, limit: int, after: tuple[float, str] | None, now: float
) -> Op[Sequence[SessionRecord]]:
    records: list[SessionRecord] = yield Scan()
    live = [
        r
        for r in records
        if not r.expired(now)
        and (user_id is None or _user_of(r) == user_id)
        and (after is None or (r.updated_at, r.session_id) < after)
    ]
    live.sort(key=lambda r: (r.updated_at, r.session_id), reverse=True)
    return live[:limit]


def purge(c: Context, now: float) -> Op[int]:
    records: list[SessionRecord] = yield Scan()
    purged = 0
    for record in records:
        if record.expired(now) and (yield Remove(record.session_id)):
            purged += 1
    return purged


def pop(c: Context, session_id: str, count: int, now: float) -> Op[list[Message]]:
    removed: list[Message] = []

    def edit(record: SessionRecord) -> bool:
        keep = max(0, len(record.messages) - count)
        removed[:] = record.messages[keep:]
        copy_broken_checkpoints(record.checkpoints, record.messages, keep)
        record.messages = record.messages[:keep]
        touch(record, now, None)
        return bool(removed)

    yield from _update(c, session_id, now, edit)
    return removed


def checkpoint(c: Context, session_id: str, label: str | None, now: float) -> Op[int]:
    def edit(record: SessionRecord) -> None:
        record.checkpoints.append(_pointer(record, label, now))

    return (yield from _update(c, session_id, now, edit)).checkpoints[-1].number


def checkpoints(c: Context, session_id: str, now: float) -> Op[Sequence[CheckpointRecord] | None]:
    record: SessionRecord | None = yield Read(session_id)
    return None if record is None or record.expired(now) else record.checkpoints


def checkpoint_state(c: Context, session_id: str, number: int, now: float) -> Op[CheckpointState]:
    record: SessionRecord | None = yield Read(session_id)
    if record is None or record.expired(now):
        raise SessionNotFound(session_id, c.where)
    found = _find(record, number)
    messages = found.messages
    if messages is None:
        messages = record.messages[: found.message_count]
    return list(messages), dict(found.metadata)


def restore(c: Context, session_id: str, number: int, now: float) -> Op[int]:
    def edit(record: SessionRecord) -> None:
        target = _find(record, number)
        record.checkpoints.append(_pointer(record, f"before restore to {number}", now))
        if target.messages is None:
            keep = target.message_count
            messages = record.messages[:keep]
        else:
            messages = list(target.messages)
            keep = common_prefix(record.messages, messages)
        copy_broken_checkpoints(record.checkpoints, record.messages, keep)
        record.messages = messages
        record.metadata = dict(target.metadata)
        touch(record, now, None)

    return (yield from _update(c, session_id, now, edit)).version


def _user_of(record: SessionRecord) -> Any:
    return record.metadata.get("user_id") if isinstance(record.metadata, dict) else None


def _pointer(record: SessionRecord, label: str | None, now: float) -> CheckpointRecord:
    number = max((c.number for c in record.checkpoints), default=0) + 1
    return CheckpointRecord(number, now, len(record.messages), dict(record.metadata), label)


def _find(record: SessionRecord, number: int) -> CheckpointRecord:
    for found in record.checkpoints:
        if found.number == number:
            return found
    raise CheckpointNotFound(record.session_id, number)
