"""What goes into the Lua scripts and what comes back, free of any I/O.

The sync store here and an async twin build the same ``ARGV`` lists and decode the same
replies with these functions; only how the bytes travel differs.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ailib.errors import (
    AilibError,
    CheckpointNotFound,
    ConflictError,
    CorruptSessionError,
    SessionNotFound,
)
from ailib.spi import Change, CheckpointRecord, Message, SessionRecord, dumps, loads

__all__ = (
    "IndexUpdate",
    "append_args",
    "appends_only",
    "apply_args",
    "checkpoint_args",
    "create_args",
    "decode_checkpoint",
    "decode_messages",
    "decode_record",
    "num",
    "op_id",
    "page_rows",
    "pop_args",
    "pop_result",
    "read_args",
    "refusal",
    "replace_args",
    "restore_args",
    "write_result",
)


def op_id() -> str:
    """A fresh id for one write, resent unchanged when redis-py retries the call."""
    return os.urandom(12).hex()


def num(value: float) -> str:
    """A time or duration as exact decimal text (Lua's own formatting keeps 14 digits)."""
    return repr(float(value))


def _ttl(ttl: float | None) -> str:
    return "" if ttl is None else num(ttl)


def _counted_fields(values: Mapping[str, Any]) -> list[str]:
    """``values`` as script arguments: how many follow, then each key and its JSON."""
    out = [str(2 * len(values))]
    for key, value in values.items():
        out += (key, dumps(value))
    return out


def _checkpoint_info(checkpoint: CheckpointRecord) -> str:
    flat = [part for k, v in checkpoint.metadata.items() for part in (k, dumps(v))]
    return f"[{num(checkpoint.created_at)},{dumps(checkpoint.label)},{dumps(flat)}]"


# -- ARGV of each script (see scripts.py) ------------------------------------------------------


def create_args(record: SessionRecord, prefix: str) -> list[str]:
    checkpoints: list[str] = []
    snapshot: list[str] = []
    for cp in record.checkpoints:
        pointer = str(cp.message_count)
        if cp.messages is not None:
            pointer += f"@{len(snapshot)}@{len(cp.messages)}"
            snapshot += (dumps(m) for m in cp.messages)
        checkpoints += (str(cp.number), pointer, _checkpoint_info(cp))
    return [
        prefix,
        op_id(),
        num(record.updated_at),
        record.session_id,
        record.kind,
        num(record.created_at),
        _ttl(record.ttl),
        str(max((cp.number for cp in record.checkpoints), default=0)),
        *_counted_fields(record.metadata),
        str(len(record.checkpoints)),
        *checkpoints,
        str(len(snapshot)),
        *snapshot,
        *(dumps(m) for m in record.messages),
    ]


#: ``ailib.codec.dumps`` with one encoder made once (``json.dumps`` with options builds a new
#: one per call): the same text, for the append hot path.
_encode_message = json.JSONEncoder(
    ensure_ascii=False, separators=(",", ":"), allow_nan=False
).encode


def appends_only(change: Change) -> bool:
    """Whether ``change`` only appends messages (the ``APPEND`` script's hot path)."""
    return bool(change.append) and not (
        change.set_metadata
        or change.unset_metadata
        or change.replace_metadata
        or change.ttl is not None
    )


def append_args(change: Change, now: float, prefix: str) -> list[bytes]:
    """``APPEND``'s ARGV, as bytes: the client sends bytes without encoding them again (the
    hot path's packing costs about half as much)."""
    expected = change.expected_version
    return [
        prefix.encode(),
        (change.op_id or op_id()).encode(),
        repr(now).encode(),
        b"" if expected is None else b"%d" % expected,
        *(_encode_message(m).encode() for m in change.append),
    ]


def apply_args(session_id: str, change: Change, now: float, prefix: str) -> list[str]:
    return [
        prefix,
        change.op_id or op_id(),
        num(now),
        session_id,
        "" if change.expected_version is None else str(change.expected_version),
        "1" if change.replace_metadata else "0",
        _ttl(change.ttl),
        *_counted_fields(change.set_metadata),
        str(len(change.unset_metadata)),
        *change.unset_metadata,
        *(dumps(m) for m in change.append),
    ]


def replace_args(
    record: SessionRecord, expected_version: int, now: float, prefix: str
) -> list[str]:
    return [
        prefix,
        op_id(),
        num(now),
        record.session_id,
        str(expected_version),
        _ttl(record.ttl),
        *_counted_fields(record.metadata),
        *(dumps(m) for m in record.messages),
    ]


def checkpoint_args(session_id: str, label: str | None, now: float, prefix: str) -> list[str]:
    return [prefix, op_id(), num(now), session_id, dumps(label)]


def pop_args(session_id: str, count: int, now: float, prefix: str) -> list[str]:
    return [prefix, op_id(), num(now), session_id, str(count)]


def restore_args(session_id: str, number: int, now: float, prefix: str) -> list[str]:
    label = dumps(f"before restore to {number}")
    return [prefix, op_id(), num(now), session_id, str(number), label]


def read_args(session_id: str, now: float, *extra: str, prefix: str = "") -> list[str]:
    """ARGV of the scripts that take no op id (delete, purge, checkpoint state)."""
    return [prefix, "", num(now), session_id, *extra]


# -- replies ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class IndexUpdate:
    """What a cluster write leaves for the index script: the session's user and expiry."""

    user: bytes
    expires: bytes


def write_result(
    reply: Any, session_id: str, where: str, number: int = 0
) -> tuple[int, IndexUpdate | None]:
    """The result of a write script, and the index update a cluster still owes."""
    if isinstance(reply, int):
        return reply, None
    if isinstance(reply, list) and reply and reply[0] == b"ok":
        update = IndexUpdate(reply[2], reply[3]) if len(reply) > 3 else None
        return int(reply[1]), update
    raise refusal(reply, session_id, where, number)


def pop_result(reply: Any, session_id: str, where: str) -> tuple[list[Message], IndexUpdate]:
    """The messages a pop removed, and the index update a cluster still owes."""
    if not (isinstance(reply, list) and reply and reply[0] == b"popped"):
        raise refusal(reply, session_id, where)
    removed = loads(reply[1], f"messages popped from session {session_id!r} in {where}")
    if not isinstance(removed, list):
        raise CorruptSessionError(f"messages popped from session {session_id!r} are not a list")
    return removed, IndexUpdate(reply[2], reply[3])


def refusal(reply: Any, session_id: str, where: str, number: int = 0) -> AilibError:
    """The error a script's refusal stands for (``number``: the checkpoint asked for)."""
    status = reply[0] if isinstance(reply, list) and reply else reply
    if status == b"missing":
        return SessionNotFound(session_id, where)
    if status == b"nocp":
        return CheckpointNotFound(session_id, number)
    if status == b"corrupt":
        return miscounted(session_id, where, int(reply[1]), int(reply[2]))
    if status == b"conflict":
        stored = f"is at version {reply[1]}" if len(reply) > 1 else "already exists"
        return ConflictError(
            f"session {session_id!r} in {where} {stored}: someone else changed or created it; "
            "reload it (or use another id) and try again"
        )
    return CorruptSessionError(
        f"unexpected reply {reply!r} from {where} for session {session_id!r}"
    )


def miscounted(session_id: str, where: str, stored: int, found: int) -> CorruptSessionError:
    return CorruptSessionError(
        f"session {session_id!r} in {where} is corrupt: its record counts {stored} messages "
        f"but its log holds {found} (messages were removed or added behind the store's back)"
    )


def decode_messages(raw: Sequence[bytes], what: str) -> list[Message]:
    """Stored messages, parsed in one call (one JSON array) rather than one call each; each
    must be one JSON document (the core checks that each is an object, on every read)."""
    if not raw:
        return []
    try:
        parsed = json.loads(b"[" + b",".join(raw) + b"]")
    except ValueError:
        parsed = None
    if not isinstance(parsed, list) or len(parsed) != len(raw):
        raise CorruptSessionError(f"{what}: {_first_bad(raw)}")
    messages: list[Message] = parsed
    return messages


def _first_bad(raw: Sequence[bytes]) -> str:
    """Which stored message is not one JSON object (the slow path, after a failure)."""
    for n, item in enumerate(raw):
        try:
            message = json.loads(item)
        except ValueError as exc:
            return f"message {n} of those read is not valid JSON ({exc})"
        if not isinstance(message, dict):
            return f"message {n} of those read is a JSON {type(message).__name__}, not an object"
    return "the stored messages are not one JSON document each"


def decode_record(
    session_id: str,
    meta: Mapping[bytes, bytes],
    raw: Sequence[bytes],
    count: int | None,
    where: str,
) -> SessionRecord:
    """The record of a session's stored hash and (all or the last of) its messages;
    ``count`` is the log's length when ``raw`` holds only a tail. The stored message count,
    where kept, must match the log."""
    stored = meta.get(b"l")
    if stored is not None:
        found = len(raw) if count is None else count
        try:
            expected = int(stored)
        except ValueError:
            raise CorruptSessionError(
                f"session {session_id!r} in {where} is corrupt: its message count {stored!r} "
                "is not a number"
            ) from None
        if expected != found:
            raise miscounted(session_id, where, expected, found)
    try:
        return SessionRecord(
            session_id=session_id,
            kind=meta[b"k"].decode(),
            messages=decode_messages(raw, f"messages of session {session_id!r} in {where}"),
            metadata=_metadata(session_id, meta),
            version=int(meta[b"v"]),
            created_at=float(meta[b"c"]),
            updated_at=float(meta[b"u"]),
            ttl=float(meta[b"t"]) if b"t" in meta else None,
            expires_at=float(meta[b"e"]) if b"e" in meta else None,
            message_count=count,
        )
    except (KeyError, ValueError, UnicodeDecodeError) as exc:
        raise CorruptSessionError(
            f"session {session_id!r} in {where} is corrupt: {_field_error(exc)}"
        ) from exc


def _metadata(session_id: str, meta: Mapping[bytes, bytes]) -> dict[str, Any]:
    """The metadata fields (``m:<key>``) of a session's hash, each value parsed; a value that
    is not JSON raises CorruptSessionError naming the key (formatted only then: a page of
    the listing decodes every listed session's metadata)."""
    metadata: dict[str, Any] = {}
    for field_name, value in meta.items():
        if field_name.startswith(b"m:"):
            key = field_name[2:].decode()
            try:
                metadata[key] = json.loads(value)
            except ValueError as exc:
                raise CorruptSessionError(
                    f"metadata {_name(field_name)!r} of session {session_id!r} is not valid "
                    f"JSON: {exc}"
                ) from exc
    return metadata


def page_rows(reply: bytes) -> list[tuple[str, float, Mapping[bytes, bytes], int]] | None:
    """The rows of a ``LIST_PAGE`` reply (see ``scripts.py``), or None if it cannot be
    parsed as a whole (a stored value that is not UTF-8 makes the page's JSON invalid)."""
    try:
        page = json.loads(reply)
        return [
            (
                session_id,
                float(score),
                {flat[i].encode(): flat[i + 1].encode() for i in range(0, len(flat), 2)}
                if flat
                else {},
                int(count),
            )
            for session_id, score, flat, count in page
        ]
    except (TypeError, ValueError, IndexError, AttributeError):
        return None


def decode_checkpoint(
    session_id: str, number: int, info: bytes, count: int, where: str
) -> CheckpointRecord:
    """A checkpoint from its stored ``[created_at, label, [key, value json, ...]]``."""
    what = f"checkpoint {number} of session {session_id!r} in {where}"
    try:
        created_at, label, flat = loads(info, what)
        if not isinstance(flat, list) or len(flat) % 2:
            raise ValueError("metadata is not a flat list of pairs")
        metadata = {str(flat[i]): loads(flat[i + 1], what) for i in range(0, len(flat), 2)}
        return CheckpointRecord(number, float(created_at), count, metadata, label)
    except (TypeError, ValueError) as exc:
        raise CorruptSessionError(f"{what} is malformed: {exc}") from exc


def _field_error(exc: Exception) -> str:
    if isinstance(exc, KeyError):
        return f"its record lacks the field {exc.args[0]!r}"
    return str(exc)


def _name(field: bytes) -> str:
    return field[2:].decode(errors="replace")
