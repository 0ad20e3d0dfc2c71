"""The plain data a store reads and writes, independent of any backend.

Timestamps are POSIX seconds (floats) in records, so every process and backend compares them
the same way; the public types convert them to timezone-aware datetimes.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from ailib.codec import decode_metadata, dumps, loads
from ailib.errors import CorruptSessionError, InvalidArgument, InvalidArgumentType
from ailib.messages import Message

__all__ = (
    "MAX_OPS",
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


#: How many op ids (of appends and metadata updates) a session remembers, newest kept.
MAX_OPS = 256


T = TypeVar("T")


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
    def from_json(cls, raw: Mapping[str, Any], session_id: str | None = None) -> CheckpointRecord:
        """Read what ``to_json`` wrote; CorruptSessionError names the session (when given),
        the checkpoint and the field that is wrong."""
        owner = f" of session {session_id!r}" if session_id else ""
        if not isinstance(raw, Mapping):
            raise CorruptSessionError(
                f"a stored checkpoint{owner} is a {type(raw).__name__}, not an object"
            )
        where = f"stored checkpoint {raw.get('number')!r}{owner}"
        messages = raw.get("messages")
        label = raw.get("label")
        if messages is not None and not isinstance(messages, list):
            raise CorruptSessionError(f"{where}: its messages are not a list")
        if label is not None and not isinstance(label, str):
            raise CorruptSessionError(f"{where}: its label is not text")
        return cls(
            number=_field(raw, "number", int, where),
            created_at=_field(raw, "created_at", float, where),
            message_count=_field(raw, "message_count", int, where),
            metadata=_field(raw, "metadata", _object, where),
            label=label,
            messages=None if messages is None else list(messages),
        )

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
    #: The op ids of the latest writes applied (oldest first, at most ``MAX_OPS``), each with
    #: the version it produced: a write carrying one of them is not applied again.
    ops: dict[str, int] = field(default_factory=dict)

    @property
    def count(self) -> int:
        """Messages in the whole session (``messages`` may hold only a tail)."""
        return len(self.messages) if self.message_count is None else self.message_count

    def expired(self, now: float) -> bool:
        return self.expires_at is not None and self.expires_at <= now

    def summary(self, metadata: dict[str, Any] | None = None) -> SessionSummary:
        """What listing shows; ``metadata`` is the decoded metadata if already at hand."""
        return SessionSummary(
            session_id=self.session_id,
            kind=self.kind,
            metadata=decode_metadata(self.metadata) if metadata is None else metadata,
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
            "message_count": len(self.messages),
            "ops": [[op, version] for op, version in self.ops.items()],
        }

    def remember(self, op_id: str | None, version: int) -> None:
        """Record that ``op_id`` produced ``version``, forgetting the oldest past ``MAX_OPS``."""
        if op_id is None:
            return
        self.ops[op_id] = version
        while len(self.ops) > MAX_OPS:
            del self.ops[next(iter(self.ops))]

    def dumps(self) -> str:
        return dumps(self.to_json())

    @classmethod
    def from_json(cls, raw: Any) -> SessionRecord:
        """Read what ``to_json`` wrote; CorruptSessionError names the session and the field
        that is wrong."""
        if not isinstance(raw, dict):
            raise CorruptSessionError(f"stored session is a {type(raw).__name__}, not an object")
        session_id = raw.get("session_id")
        if not isinstance(session_id, str):
            raise CorruptSessionError(f"stored session has no valid id ({session_id!r})")
        where = f"stored session {session_id!r}"
        messages = raw.get("messages")
        if not isinstance(messages, list):
            raise CorruptSessionError(f"{where}: its messages are not a list")
        checkpoints = raw.get("checkpoints", [])
        if not isinstance(checkpoints, list):
            raise CorruptSessionError(f"{where}: its checkpoints are not a list")
        ops = raw.get("ops", [])
        if not isinstance(ops, list) or not all(
            isinstance(o, list) and len(o) == 2 and isinstance(o[0], str) and isinstance(o[1], int)
            for o in ops
        ):
            raise CorruptSessionError(f"{where}: its list of applied op ids is malformed")
        count = raw.get("message_count")
        return cls(
            session_id=session_id,
            kind=_field(raw, "kind", _text, where),
            messages=messages,
            metadata=_field(raw, "metadata", _object, where),
            version=_field(raw, "version", int, where),
            created_at=_field(raw, "created_at", float, where),
            updated_at=_field(raw, "updated_at", float, where),
            ttl=None if raw.get("ttl") is None else _field(raw, "ttl", float, where),
            expires_at=(
                None if raw.get("expires_at") is None else _field(raw, "expires_at", float, where)
            ),
            checkpoints=[CheckpointRecord.from_json(c, session_id) for c in checkpoints],
            message_count=None if count is None else _field(raw, "message_count", int, where),
            ops={op: version for op, version in ops},
        )

    @classmethod
    def loads(cls, text: str | bytes) -> SessionRecord:
        return cls.from_json(loads(text, "stored session"))


@dataclass(frozen=True)
class Change:
    """One atomic write to an existing session: append messages and/or change metadata.

    ``replace_metadata`` makes ``set_metadata`` the whole new metadata; otherwise its keys are
    merged in and ``unset_metadata`` keys removed. ``expected_version`` None means "any".
    The messages of ``append`` are deep copies made for this write, shared with no caller.
    """

    append: tuple[Message, ...] = ()
    set_metadata: Mapping[str, Any] = field(default_factory=dict)
    unset_metadata: tuple[str, ...] = ()
    replace_metadata: bool = False
    expected_version: int | None = None
    ttl: float | None = None
    #: Identifies the write, so that a retry of it is not applied twice: the app's
    #: idempotency key, or a fresh random id per call.
    op_id: str | None = None

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


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{value!r} is not text")
    return value


def _object(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise TypeError(f"a {type(value).__name__} is not an object")
    return value


def _field(raw: Mapping[str, Any], name: str, convert: Callable[[Any], T], where: str) -> T:
    """``convert(raw[name])``; CorruptSessionError saying in words what is wrong."""
    if name not in raw:
        raise CorruptSessionError(f"{where}: its {name!r} field is missing")
    value = raw[name]
    if isinstance(value, bool) or (convert in (int, float) and not isinstance(value, int | float)):
        raise CorruptSessionError(f"{where}: its {name!r} field is {value!r}, not a number")
    try:
        return convert(value)
    except (TypeError, ValueError, OverflowError) as exc:
        raise CorruptSessionError(f"{where}: its {name!r} field is not valid ({exc})") from None


def encode_cursor(updated_at: float, session_id: str) -> str:
    """An opaque cursor: the sort key of the last item on the page."""
    return base64.urlsafe_b64encode(dumps([updated_at, session_id]).encode()).decode()


def decode_cursor(cursor: object) -> tuple[float, str]:
    if not isinstance(cursor, str):
        raise InvalidArgumentType(
            f"cursor must be a str (the next_cursor of a previous page), got {cursor!r}"
        )
    try:
        updated_at, session_id = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        if not isinstance(session_id, str) or not isinstance(updated_at, int | float):
            raise ValueError("not a listing position")
        return float(updated_at), session_id
    except Exception as exc:
        raise InvalidArgument(
            f"invalid listing cursor {cursor!r}; pass the next_cursor of a previous page"
        ) from exc
