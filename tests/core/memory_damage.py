"""Damage what a memory store keeps, for the conformance suite's corruption cases."""

from __future__ import annotations

from typing import Any

from ailib.records import SessionRecord
from ailib.stores.memory import MemoryStore
from ailib.testing import Damage
from ailib.testing.blocking import BlockingStore


def damage_memory(store: Any, session_id: str, damage: Damage) -> None:
    """Damage the record the memory store behind ``store`` (sync, async or threaded) keeps."""
    sync = store
    if isinstance(sync, BlockingStore):
        sync = sync.store.sync  # type: ignore[attr-defined]
    assert isinstance(sync, MemoryStore)
    with sync._space.lock:
        damage_record(sync._space.records[(sync.namespace, session_id)], damage)


def damage_record(record: SessionRecord, damage: Damage) -> None:
    """Damage one stored record in place, as ``damage`` says."""
    if damage is Damage.METADATA:
        record.metadata = "\x00\xff garbage"  # type: ignore[assignment]
    elif damage is Damage.MESSAGE:
        record.messages[1] = b"\x00\xfe\xff"  # type: ignore[call-overload]
    elif damage is Damage.MISSING_MESSAGE:
        del record.messages[1]
    else:
        record.message_count = (record.message_count or 0) + 3
