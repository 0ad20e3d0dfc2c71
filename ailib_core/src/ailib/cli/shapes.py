"""The JSON objects that ``--json`` prints: one function per kind of record, so that each
shape is defined once and documented (docs/cli.md, "JSON output"). Fields are only ever
added, never renamed or removed; times are ISO 8601 with their UTC offset, absent values
``null``."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ailib.records import CheckpointInfo, SessionSummary
    from ailib.registry import StoreInfo

__all__ = ("checkpoint_json", "store_json", "summary_json")


def _time(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def summary_json(item: SessionSummary) -> dict[str, Any]:
    """One session of ``ailib sessions ls --json``."""
    return {
        "session_id": item.session_id,
        "kind": item.kind,
        "user_id": item.user_id,
        "message_count": item.message_count,
        "version": item.version,
        "created_at": _time(item.created_at),
        "updated_at": _time(item.updated_at),
        "expires_at": _time(item.expires_at),
        "metadata": item.metadata,
    }


def checkpoint_json(info: CheckpointInfo) -> dict[str, Any]:
    """One checkpoint of ``ailib sessions checkpoints ID --json``."""
    return {
        "number": info.number,
        "label": info.label,
        "message_count": info.message_count,
        "created_at": _time(info.created_at),
    }


def store_json(info: StoreInfo) -> dict[str, Any]:
    """One installed scheme of ``ailib stores --json``."""
    return {
        "scheme": info.scheme,
        "distribution": info.distribution,
        "version": info.version,
        "class": info.target,
    }
