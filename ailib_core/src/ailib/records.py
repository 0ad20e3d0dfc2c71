"""The plain data a store reads and writes, independent of any backend.

Timestamps are POSIX seconds (floats) in records, so every process and backend compares them
the same way; the public types convert them to timezone-aware datetimes.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ailib.codec import decode_metadata, dumps, loads
from ailib.errors import ConfigurationError, CorruptSessionError
from ailib.messages import Message

__all__ = (
    "Change",
    "CheckpointInfo",
    "CheckpointRecord",
    "Page",
    "SessionRecord",
    "SessionSummary",
    "decode_cursor",
    "encode_cursor",
    "to_datetime",
)


def to_datetime(timestamp: float | None) -> datetime | None:
    return None if timestamp is None else datetime.fromtimestamp(timestamp, UTC)


@dataclass
class CheckpointRecord:
    """A saved version of a session.

    ``messages`` is None while the checkpoint is a pointer: its messages are the first
    ``message_count`` of the session's log. A store copies them in only when that prefix is
    about to be rewritten, so checkpoints cost O(metadata), not O(history).
    """

    number: int
    created_at: float
    message_count: int
    metadata: dict[str, Any]
    label: str | None = None
    messages: list[Message] | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "label": self.label,
            "created_at": self.created_at,
            "message_count": self.message_count,
            "metadata": self.metadata,
            "messages": self.messages,
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> CheckpointRecord:
        try:
            return cls(
                number=int(raw["number"]),
                created_at=float(raw["created_at"]),
                message_count=int(raw["message_count"]),
                metadata=dict(raw["metadata"]),
                label=raw.get("label"),
                messages=None if raw.get("messages") is None else list(raw["messages"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise CorruptSessionError(f"stored checkpoint is malformed: {exc!r}") from exc

    def info(self) -> CheckpointInfo:
        return CheckpointInfo(
            self.number,
            self.label,
            to_datetime(self.created_at) or datetime.now(UTC),
            self.message_count,
        )


@dataclass
class SessionRecord:
    """Everything stored for one session; ``metadata`` is in its encoded (JSON) form."""

    session_id: str
    kind: str
    messages: list[Message]
    metadata: dict[str, Any]
    version: int
    created_at: float
    updated_at: float
    ttl: float | None = None
    expires_at: float | None = None
    checkpoints: list[CheckpointRecord] = field(default_factory=list)
    message_count: int | None = None

    @property
    def count(self) -> int:
        """Messages in the whole session (``messages`` may hold only a tail)."""
        return len(self.messages) if self.message_count is None else self.message_count

    def expired(self, now: float) -> bool:
        return self.expires_at is not None and self.expires_at <= now

    def summary(self) -> SessionSummary:
        return SessionSummary(
            session_id=self.session_id,
            kind=self.kind,
            metadata=decode_metadata(self.metadata),
            message_count=self.count,
            version=self.version,
            created_at=to_datetime(self.created_at) or datetime.now(UTC),
            updated_at=to_datetime(self.updated_at) or datetime.now(UTC),
            expires_at=to_datetime(self.expires_at),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "session_id": self.session_id,
            "kind": self.kind,
            "messages": self.messages,
            "metadata": self.metadata,
            "version": self.version,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "ttl": self.ttl,
            "expires_at": self.expires_at,
            "checkpoints": [c.to_json() for c in self.checkpoints],
        }

    def dumps(self) -> str:
        return dumps(self.to_json())

    @classmethod
    def from_json(cls, raw: Any) -> SessionRecord:
        if not isinstance(raw, dict):
            raise CorruptSessionError(f"stored session is a {type(raw).__name__}, not an object")
        try:
            return cls(
                session_id=str(raw["session_id"]),
                kind=str(raw["kind"]),
                messages=list(raw["messages"]),
                metadata=dict(raw["metadata"]),
                version=int(raw["version"]),
                created_at=float(raw["created_at"]),
                updated_at=float(raw["updated_at"]),
                ttl=None if raw.get("ttl") is None else float(raw["ttl"]),
                expires_at=None if raw.get("expires_at") is None else float(raw["expires_at"]),
                checkpoints=[CheckpointRecord.from_json(c) for c in raw.get("checkpoints", [])],
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise CorruptSessionError(f"stored session is malformed: {exc!r}") from exc

    @classmethod
    def loads(cls, text: str | bytes) -> SessionRecord:
        return cls.from_json(loads(text, "stored session"))


@dataclass(frozen=True)
class Change:
    """One atomic write to an existing session: append messages and/or change metadata.

    ``replace_metadata`` makes ``set_metadata`` the whole new metadata; otherwise its keys are
    merged in and ``unset_metadata`` keys removed. ``expected_version`` None means "any".
    """

    append: tuple[Message, ...] = ()
    set_metadata: Mapping[str, Any] = field(default_factory=dict)
    unset_metadata: tuple[str, ...] = ()
    replace_metadata: bool = False
    expected_version: int | None = None
    ttl: float | None = None

    def apply_metadata(self, current: dict[str, Any]) -> dict[str, Any]:
        if self.replace_metadata:
            return dict(self.set_metadata)
        merged = {k: v for k, v in current.items() if k not in self.unset_metadata}
        merged.update(self.set_metadata)
        return merged


@dataclass(frozen=True)
class SessionSummary:
    """What listing returns for one session."""

    session_id: str
    kind: str
    metadata: dict[str, Any]
    message_count: int
    version: int
    created_at: datetime
    updated_at: datetime
    expires_at: datetime | None

    @property
    def user_id(self) -> Any:
        return self.metadata.get("user_id")


@dataclass(frozen=True)
class CheckpointInfo:
    number: int
    label: str | None
    created_at: datetime
    message_count: int

    @property
    def version(self) -> int:
        """The checkpoint's version number, as ``store.restore`` takes it."""
        return self.number


@dataclass(frozen=True)
class Page:
    """One page of a listing; pass ``next_cursor`` back to ``list`` for the next one."""

    items: list[SessionSummary]
    next_cursor: str | None = None

    def __iter__(self) -> Iterator[SessionSummary]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)


def encode_cursor(updated_at: float, session_id: str) -> str:
    """An opaque cursor: the sort key of the last item on the page."""
    return base64.urlsafe_b64encode(dumps([updated_at, session_id]).encode()).decode()


def decode_cursor(cursor: str) -> tuple[float, str]:
    try:
        updated_at, session_id = loads(base64.urlsafe_b64decode(cursor.encode()))
        return float(updated_at), str(session_id)
    except Exception as exc:
        raise ConfigurationError(
            f"invalid listing cursor {cursor!r}; pass the next_cursor of a previous page"
        ) from exc
