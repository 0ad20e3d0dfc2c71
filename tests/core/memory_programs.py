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
from typing import Final, TypeAlias, TypeVar

from ailib.checkpoints import materialize as copy_broken_checkpoints
from ailib.document import (
    add_checkpoint,
    apply_change,
    check_count,
    live_page,
    replace_messages,
    restore_checkpoint,
    stage_edit,
    touch,
)
from ailib.document import (
    checkpoint_state as state_of,
)
from ailib.errors import ConflictError, SessionNotFound
from ailib.spi import (
    Change,
    CheckpointRecord,
    CheckpointState,
    Message,
    Program,
    SessionRecord,
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
        seen = stage_edit(current, edit, op_id, c.where)
        if seen is None:
            return current
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
        apply_change(record, change, now, c.where)

    return (yield from _update(c, session_id, now, edit, change.op_id)).version


def replace(c: Context, record: SessionRecord, expected_version: int, now: float) -> Op[int]:
    def edit(current: SessionRecord) -> None:
        replace_messages(current, record, expected_version, now, c.where)

    return (yield from _update(c, record.session_id, now, edit)).version


def delete(c: Context, session_id: str) -> Op[bool]:
    removed: bool = yield Remove(session_id)
    return removed


def list_page(
    c: Context, user_id: str | None, limit: int, after: tuple[float, str] | None, now: float
) -> Op[Sequence[SessionRecord]]:
    records: list[SessionRecord] = yield Scan()
    return live_page(records, user_id, limit, after, now)


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
        add_checkpoint(record, label, now)

    return (yield from _update(c, session_id, now, edit)).checkpoints[-1].number


def checkpoints(c: Context, session_id: str, now: float) -> Op[Sequence[CheckpointRecord] | None]:
    record: SessionRecord | None = yield Read(session_id)
    return None if record is None or record.expired(now) else record.checkpoints


def checkpoint_state(c: Context, session_id: str, number: int, now: float) -> Op[CheckpointState]:
    record: SessionRecord | None = yield Read(session_id)
    if record is None or record.expired(now):
        raise SessionNotFound(session_id, c.where)
    return state_of(record, number)


def restore(c: Context, session_id: str, number: int, now: float) -> Op[int]:
    def edit(record: SessionRecord) -> None:
        restore_checkpoint(record, number, now)

    return (yield from _update(c, session_id, now, edit)).version
