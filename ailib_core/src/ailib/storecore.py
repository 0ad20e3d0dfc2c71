"""What the sync and async store bases share: configuration, and every step of the public
methods that does no I/O (validation, TTL, hooks, records to sessions, pages, tails).

:class:`ailib.base.BaseStore` and :class:`ailib.async_base.AsyncBaseStore` only wire these
steps around their backend operations, so the two cannot drift apart.
"""

from __future__ import annotations

import copy
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any, ClassVar, Self

from ailib.codec import decode_metadata, encode_metadata
from ailib.durations import parse_duration
from ailib.errors import ConfigurationError, CorruptSessionError, InvalidMessage
from ailib.hooks import StoreHooks
from ailib.ids import check_session_id
from ailib.messages import CHAT, KINDS, Message, check_message
from ailib.records import (
    Change,
    CheckpointRecord,
    Page,
    SessionRecord,
    decode_cursor,
    encode_cursor,
    to_datetime,
)
from ailib.session import Session
from ailib.url import StoreURL, make_url
from ailib.window import safe_tail_start

__all__ = ("CheckpointState", "StoreCore")

CheckpointState = tuple[list[Message], dict[str, Any]]
Counts = dict[str, Counter[str]]

#: The key of a message or metadata value that is stored encrypted.
SEALED = "$sealed"


class StoreCore:
    """Configuration and the I/O-free steps of every public store method.

    Subclasses name the URL options they accept in ``options`` and read them in ``from_url``.
    ``namespace`` and ``ttl`` are common to every store.
    """

    options: ClassVar[frozenset[str]] = frozenset()
    #: ``"module:Class"`` of the native async twin, imported only by ``open_async_store``.
    async_twin: ClassVar[str | None] = None
    common_options: ClassVar[frozenset[str]] = frozenset({"namespace", "ttl"})

    def __init__(self, *, namespace: str = "default", ttl: float | str | None = None) -> None:
        self.namespace = _check_namespace(namespace)
        self.default_ttl = parse_duration(ttl)
        self.hooks = StoreHooks()
        self._url: StoreURL | None = None

    @classmethod
    def from_url(cls, url: str | StoreURL, **options: Any) -> Self:
        """Build a store from its URL; ``options`` (already merged with the URL's query)
        hold only names in ``common_options | options``."""
        store = cls(**options)
        store._url = make_url(url)
        return store

    @property
    def url(self) -> str:
        """The store's URL with any password masked."""
        return self._url.render() if self._url else f"{type(self).__name__}()"

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.url} namespace={self.namespace!r}>"

    # -- steps before a write -------------------------------------------------------------

    def _ttl(self, ttl: float | str | None) -> float | None:
        return self.default_ttl if ttl is None else parse_duration(ttl)

    def _copy(self, messages: Sequence[Message]) -> list[Message]:
        """Messages as the store will keep them; deep copies when hooks may edit them."""
        return [copy.deepcopy(m) if self.hooks else dict(m) for m in messages]

    def _record_of(self, session: Session, ttl: float | None, now: float) -> SessionRecord:
        if session.kind not in KINDS:
            raise ConfigurationError(f"unknown session kind {session.kind!r}")
        for message in session.messages:
            check_message(message, session.kind)
        return SessionRecord(
            session_id=check_session_id(session.session_id),
            kind=session.kind,
            messages=self._copy(session.messages),
            metadata=encode_metadata(session.metadata),
            version=session.version,
            created_at=session.created_at.timestamp(),
            updated_at=now,
            ttl=ttl,
            expires_at=None if ttl is None else now + ttl,
        )

    def _new_record(self, session: Session, ttl: float | str | None) -> SessionRecord:
        """The record that stores ``session`` for the first time, hooks applied."""
        record = self._record_of(session, self._ttl(ttl), time.time())
        record.created_at = record.updated_at
        record.version = 1
        self._run_hooks(record)
        return record

    def _replacement(self, session: Session, ttl: float | str | None) -> SessionRecord:
        record = self._record_of(session, self._ttl(ttl), time.time())
        self._run_hooks(record)
        return record

    def _run_hooks(self, record: SessionRecord) -> None:
        """Hooks on a whole record, whose metadata already holds the running totals."""
        counts = self.hooks.before_write(self, record.session_id, record.messages, record.metadata)
        record.metadata.update(_totals(record.metadata, counts))

    def _append_change(
        self, session_id: str, messages: Sequence[Message], expected_version: int | None
    ) -> tuple[Change, Counts]:
        """The change an append makes, and the running totals hooks asked to add to (the
        caller reads the stored totals and merges them with :meth:`_with_totals`)."""
        check_session_id(session_id)
        if not messages:
            raise InvalidMessage("append needs at least one message")
        for message in messages:
            if not isinstance(message, dict):
                raise InvalidMessage(f"a message must be a dict, got {type(message).__name__}")
        stored = self._copy(messages)
        metadata: dict[str, Any] = {}
        counts = self.hooks.before_write(self, session_id, stored, metadata)
        change = Change(
            append=tuple(stored), set_metadata=metadata, expected_version=expected_version
        )
        return change, counts

    def _metadata_change(
        self,
        session_id: str,
        values: Mapping[str, Any] | None,
        unset: Sequence[str],
        expected_version: int | None,
    ) -> Change:
        check_session_id(session_id)
        encoded = encode_metadata(values or {})
        self.hooks.before_write(self, session_id, [], encoded)
        return Change(
            set_metadata=encoded, unset_metadata=tuple(unset), expected_version=expected_version
        )

    @staticmethod
    def _with_totals(change: Change, counts: Counts, stored: SessionRecord | None) -> Change:
        """``change`` also setting each running total to what is stored plus ``counts``."""
        current = stored.metadata if stored is not None else {}
        return replace(change, set_metadata={**change.set_metadata, **_totals(current, counts)})

    def _imported_record(self, data: Mapping[str, Any]) -> SessionRecord:
        """The record an ``export_session`` dict describes, checkpoints included."""
        session = Session.from_dict(data)
        record = self._record_of(session, parse_duration(data.get("ttl")), time.time())
        record.created_at = session.created_at.timestamp()
        record.version = 1
        raw = data.get("checkpoints", ())
        if not isinstance(raw, list) or not all(isinstance(c, dict) for c in raw):
            raise CorruptSessionError(f"checkpoints of {session.session_id!r} are malformed")
        record.checkpoints = [CheckpointRecord.from_json(c) for c in raw]
        if any(c.messages is None for c in record.checkpoints):
            raise CorruptSessionError("imported checkpoints must carry their messages")
        self._run_hooks(record)
        return record

    # -- steps after a read ---------------------------------------------------------------

    @staticmethod
    def _check_last(last: int | None) -> None:
        if last is not None and last < 0:
            raise ValueError("last must be >= 0")

    @staticmethod
    def _wider_tail(record: SessionRecord | None, last: int | None) -> int | None:
        """How many messages to fetch instead, when the tail opens with tool results whose
        assistant call is further back; None when ``record`` will do."""
        if (
            record is None
            or last is None
            or record.kind != CHAT
            or not record.messages
            or record.messages[0].get("role") != "tool"
            or len(record.messages) >= record.count
        ):
            return None
        return min(record.count, 2 * len(record.messages) + 8)

    @staticmethod
    def _live(record: SessionRecord | None, last: int | None) -> SessionRecord | None:
        """``record`` unless it expired, its tail cut to ``last``: exactly, for items; for chat
        messages, widened so as not to orphan tool results."""
        if record is None or record.expired(time.time()):
            return None
        if last is not None:
            start = len(record.messages) - last
            if record.kind == CHAT:
                start = safe_tail_start(record.messages, start)
            record.messages = record.messages[max(0, start) :]
        return record

    def _readable(self, session_id: str, messages: list[Message], metadata: dict[str, Any]) -> None:
        """Run the read hooks in place; refuse what is still sealed (read without its key)."""
        if not all(isinstance(m, dict) for m in messages) or not isinstance(metadata, dict):
            raise CorruptSessionError(
                f"session {session_id!r} in {self.url} holds data that is not messages"
            )
        self.hooks.after_read(self, session_id, messages, metadata)
        if any(SEALED in m for m in messages) or any(
            isinstance(v, dict) and SEALED in v for v in metadata.values()
        ):
            raise ConfigurationError(
                f"session {session_id!r} in {self.url} is encrypted; open the store with "
                "its key (for example ?encrypt=env:AILIB_KEY) to read it"
            )

    def _to_session(self, record: SessionRecord) -> Session:
        if record.kind not in KINDS:
            raise CorruptSessionError(
                f"session {record.session_id!r} in {self.url} has unknown kind {record.kind!r}"
            )
        self._readable(record.session_id, record.messages, record.metadata)
        session = Session(record.session_id, kind=record.kind)
        session.messages = record.messages
        session.metadata = decode_metadata(record.metadata)
        self._stamp(session, record)
        return session

    @staticmethod
    def _stamp(session: Session, record: SessionRecord) -> None:
        """Copy the stored version and times onto ``session``."""
        session.version = record.version
        session.created_at = to_datetime(record.created_at) or session.created_at
        session.updated_at = to_datetime(record.updated_at) or session.updated_at
        session.expires_at = to_datetime(record.expires_at)

    @staticmethod
    def _list_args(limit: int, cursor: str | None) -> tuple[tuple[float, str] | None, float]:
        if limit < 1:
            raise ValueError("limit must be >= 1")
        return (decode_cursor(cursor) if cursor else None), time.time()

    def _page(self, records: Sequence[SessionRecord], limit: int, now: float) -> Page:
        live = [r for r in records if not r.expired(now)]
        more = len(live) > limit
        live = live[:limit]
        cursor = encode_cursor(live[-1].updated_at, live[-1].session_id) if more else None
        for record in live:
            self._readable(record.session_id, [], record.metadata)
        return Page([r.summary() for r in live], cursor)

    def _user_key(self, user_id: str | None) -> str | None:
        return None if user_id is None else self.hooks.user_key(self, user_id)

    def _readable_state(self, session_id: str, state: CheckpointState) -> CheckpointState:
        messages, metadata = state
        self._readable(session_id, messages, metadata)
        return messages, metadata

    def _export(
        self, record: SessionRecord, checkpoints: Sequence[tuple[CheckpointRecord, CheckpointState]]
    ) -> dict[str, Any]:
        data = self._to_session(record).to_dict()
        data["ttl"] = record.ttl
        data["checkpoints"] = []
        for checkpoint, state in checkpoints:
            messages, metadata = self._readable_state(record.session_id, state)
            data["checkpoints"].append(
                {**checkpoint.to_json(), "messages": messages, "metadata": metadata}
            )
        return data

    @staticmethod
    def _popped(record: SessionRecord, count: int) -> tuple[SessionRecord, list[Message]]:
        """``record`` without its last ``count`` messages, and those messages."""
        keep = max(0, len(record.messages) - count)
        removed = record.messages[keep:]
        record.messages = record.messages[:keep]
        return record, removed


def _totals(metadata: Mapping[str, Any], counts: Counts) -> dict[str, dict[str, int]]:
    totals = {}
    for key, counter in counts.items():
        current = metadata.get(key)
        counted = isinstance(current, dict) and all(isinstance(v, int) for v in current.values())
        merged = Counter(current if counted else {})
        merged.update(counter)
        totals[key] = dict(merged)
    return totals


def _check_namespace(namespace: str) -> str:
    if (
        not isinstance(namespace, str)
        or not namespace
        or not all(c.isalnum() or c in "._-" for c in namespace)
    ):
        raise ConfigurationError(
            f"invalid namespace {namespace!r}; use letters, digits, '.', '_' or '-'"
        )
    return namespace
