"""``stage_edit``: one attempt of the read-edit-write that the document store and the
program-written store share."""

from __future__ import annotations

import pytest

from ailib.document import stage_edit
from ailib.errors import AilibError, ConflictError, CorruptSessionError
from ailib.records import SessionRecord


def _record(version: int = 3, messages: int = 2) -> SessionRecord:
    return SessionRecord(
        session_id="s",
        kind="chat",
        messages=[{"role": "user", "content": str(i)} for i in range(messages)],
        metadata={},
        version=version,
        created_at=1.0,
        updated_at=1.0,
        message_count=messages,
        ops={"op-old": 2},
    )


def _append(record: SessionRecord) -> None:
    record.messages.append({"role": "assistant", "content": "new"})


def test_an_edit_is_staged_as_the_next_version_to_write_over_the_one_read() -> None:
    record = _record()
    assert stage_edit(record, _append, "op-new", "memory://") == 3
    assert (record.version, record.message_count, len(record.messages)) == (4, 3, 3)
    assert record.ops == {"op-old": 2, "op-new": 4}


def test_an_edit_without_op_id_remembers_none() -> None:
    record = _record()
    assert stage_edit(record, _append, None, "memory://") == 3
    assert record.ops == {"op-old": 2}


def test_an_op_id_already_applied_stages_nothing_and_reports_its_version() -> None:
    record = _record()
    edits: list[SessionRecord] = []
    assert stage_edit(record, edits.append, "op-old", "memory://") is None
    assert edits == []
    assert (record.version, record.message_count, len(record.messages)) == (2, 2, 2)


def test_an_edit_that_returns_false_stages_nothing() -> None:
    record = _record()
    assert stage_edit(record, lambda r: False, "op-new", "memory://") is None
    assert (record.version, record.ops) == (3, {"op-old": 2})


def test_a_count_that_disagrees_with_the_messages_is_corruption_before_any_edit() -> None:
    record = _record()
    record.message_count = 5
    edits: list[SessionRecord] = []
    with pytest.raises(CorruptSessionError, match="memory://x") as raised:
        stage_edit(record, edits.append, None, "memory://x")
    assert isinstance(raised.value, AilibError)
    assert edits == []


def test_an_edit_that_refuses_leaves_version_and_ops_alone() -> None:
    record = _record()

    def refuse(r: SessionRecord) -> None:
        raise ConflictError("stale")

    with pytest.raises(ConflictError):
        stage_edit(record, refuse, "op-new", "memory://")
    assert (record.version, record.ops) == (3, {"op-old": 2})
