"""`BaseStore`: the public store API over a small set of backend operations.

The public methods validate input, apply the TTL policy and the write hooks, and turn records
into sessions; a backend implements only the underscore operations below, each of which must
be atomic. :class:`ailib.document.DocumentStore` derives every operation from four
compare-and-set document primitives, for plugins that want to be small rather than fast.
"""

from __future__ import annotations

import builtins
import copy
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any, ClassVar, Self

from ailib.codec import decode_metadata, encode_metadata
from ailib.durations import parse_duration
from ailib.errors import (
    ConfigurationError,
    CorruptSessionError,
    InvalidMessage,
    SessionNotFound,
)
from ailib.hooks import StoreHooks
from ailib.ids import check_session_id
from ailib.messages import CHAT, KINDS, Message, check_message
from ailib.records import (
    Change,
    CheckpointInfo,
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

__all__ = ("BaseStore", "CheckpointState")

CheckpointState = tuple[list[Message], dict[str, Any]]


class BaseStore(ABC):
    """Implements :class:`ailib.SessionStore` on top of the abstract ``_`` operations.

    Subclasses name the URL options they accept in ``options`` and read them in ``from_url``.
    ``namespace`` and ``ttl`` are common to every store.
    """

    options: ClassVar[frozenset[str]] = frozenset()
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

    # -- backend operations: each one atomic ----------------------------------------------

    @abstractmethod
    def _create(self, record: SessionRecord) -> None:
        """Insert a new session (an expired one with the id may be replaced); ConflictError if
        a live one has the id. ``record.checkpoints`` (imports carry them, each with its
        messages) are stored too, keeping their numbers, labels and times."""

    @abstractmethod
    def _fetch(self, session_id: str, last: int | None) -> SessionRecord | None:
        """The session with all its messages, or (``last``) at least its last ``last``;
        ``message_count`` tells the total. None if absent; may return an expired record."""

    @abstractmethod
    def _apply(self, session_id: str, change: Change, now: float) -> int:
        """Append and/or change metadata; return the new version. SessionNotFound if absent
        or expired, ConflictError if ``change.expected_version`` is stale."""

    @abstractmethod
    def _replace(self, record: SessionRecord, expected_version: int, now: float) -> int:
        """Make the stored session equal ``record`` (messages, metadata, ttl) if its version is
        ``expected_version``; copy the messages of checkpoints the rewrite breaks first."""

    @abstractmethod
    def _delete(self, session_id: str) -> bool:
        """Delete the session with its checkpoints; True if it existed."""

    @abstractmethod
    def _list(
        self, user_id: str | None, limit: int, after: tuple[float, str] | None, now: float
    ) -> Sequence[SessionRecord]:
        """Up to ``limit`` live sessions (messages may be empty; ``message_count`` set), newest
        ``updated_at`` first, ties by id descending, starting after the ``after`` key."""

    @abstractmethod
    def _purge(self, now: float) -> int:
        """Delete every session expired at ``now``; return how many."""

    @abstractmethod
    def _checkpoint(self, session_id: str, label: str | None, now: float) -> int:
        """Record the current state as the next checkpoint; return its number."""

    @abstractmethod
    def _checkpoints(self, session_id: str, now: float) -> Sequence[CheckpointRecord] | None:
        """The session's checkpoints (messages not needed), oldest first; None if absent."""

    @abstractmethod
    def _checkpoint_state(self, session_id: str, number: int, now: float) -> CheckpointState:
        """Messages and encoded metadata of checkpoint ``number``; CheckpointNotFound if none."""

    @abstractmethod
    def _restore(self, session_id: str, number: int, now: float) -> int:
        """Checkpoint the current state, then make checkpoint ``number`` current."""

    def close(self) -> None:  # noqa: B027 - stores without connections need nothing here
        """Release connections. The store must not be used afterwards."""

    # -- public API -----------------------------------------------------------------------

    def create(
        self,
        metadata: Mapping[str, Any] | None = None,
        ttl: float | str | None = None,
        *,
        session_id: str | None = None,
        kind: str = CHAT,
        messages: Sequence[Message] = (),
    ) -> Session:
        session = Session(session_id, messages=messages, metadata=metadata, kind=kind)
        self._insert(session, self._ttl(ttl))
        return session.bind(self)

    def session(self, session_id: str, *, create: bool = False, kind: str = CHAT) -> Session:
        found = self.get(session_id)
        if found is None:
            if not create:
                raise SessionNotFound(session_id, self.url)
            return self.create(session_id=session_id, kind=kind)
        return found.bind(self)

    def load(self, session_id: str, last: int | None = None) -> Session:
        check_session_id(session_id)
        if last is not None and last < 0:
            raise ValueError("last must be >= 0")
        record = self._fetch_live(session_id, last)
        if record is None:
            raise SessionNotFound(session_id, self.url)
        return self._to_session(record)

    def get(self, session_id: str) -> Session | None:
        check_session_id(session_id)
        record = self._fetch_live(session_id, None)
        return None if record is None else self._to_session(record)

    def exists(self, session_id: str) -> bool:
        check_session_id(session_id)
        return self._fetch_live(session_id, 0) is not None

    def save(self, session: Session, ttl: float | str | None = None) -> int:
        for message in session.messages:
            check_message(message, session.kind)
        effective_ttl = self._ttl(ttl)
        if session.version == 0:
            self._insert(session, effective_ttl)
            return session.version
        record = self._record_of(session, effective_ttl, time.time())
        self.hooks.before_write(self, record.session_id, record.messages, record.metadata)
        session.version = self._replace(record, session.version, record.updated_at)
        session.updated_at = to_datetime(record.updated_at) or session.updated_at
        return session.version

    def append(
        self, session_id: str, *messages: Message, expected_version: int | None = None
    ) -> int:
        check_session_id(session_id)
        if not messages:
            raise InvalidMessage("append needs at least one message")
        for message in messages:
            if not isinstance(message, dict):
                raise InvalidMessage(f"a message must be a dict, got {type(message).__name__}")
        stored = [copy.deepcopy(m) if self.hooks else dict(m) for m in messages]
        metadata: dict[str, Any] = {}
        self.hooks.before_write(self, session_id, stored, metadata)
        change = Change(
            append=tuple(stored), set_metadata=metadata, expected_version=expected_version
        )
        return self._apply(session_id, change, time.time())

    def update_metadata(
        self,
        session_id: str,
        values: Mapping[str, Any] | None = None,
        *,
        unset: Sequence[str] = (),
        expected_version: int | None = None,
    ) -> int:
        check_session_id(session_id)
        encoded = encode_metadata(values or {})
        self.hooks.before_write(self, session_id, [], encoded)
        change = Change(
            set_metadata=encoded, unset_metadata=tuple(unset), expected_version=expected_version
        )
        return self._apply(session_id, change, time.time())

    def delete(self, session_id: str) -> bool:
        check_session_id(session_id)
        return self._delete(session_id)

    def list(self, user_id: str | None = None, limit: int = 50, cursor: str | None = None) -> Page:
        if limit < 1:
            raise ValueError("limit must be >= 1")
        after = decode_cursor(cursor) if cursor else None
        now = time.time()
        records = [r for r in self._list(user_id, limit + 1, after, now) if not r.expired(now)]
        more = len(records) > limit
        records = records[:limit]
        next_cursor = (
            encode_cursor(records[-1].updated_at, records[-1].session_id) if more else None
        )
        return Page([r.summary() for r in records], next_cursor)

    def purge_expired(self) -> int:
        return self._purge(time.time())

    def checkpoint(self, session_id: str, label: str | None = None) -> int:
        check_session_id(session_id)
        return self._checkpoint(session_id, label, time.time())

    def checkpoints(self, session_id: str) -> builtins.list[CheckpointInfo]:
        check_session_id(session_id)
        found = self._checkpoints(session_id, time.time())
        if found is None:
            raise SessionNotFound(session_id, self.url)
        return [c.info() for c in found]

    def restore(self, session_id: str, version: int) -> int:
        check_session_id(session_id)
        return self._restore(session_id, int(version), time.time())

    def fork(self, session_id: str, version: int | None = None) -> Session:
        source = self.load(session_id)
        if version is None:
            messages, metadata = source.messages, source.metadata
        else:
            raw_messages, raw_metadata = self._checkpoint_state(session_id, version, time.time())
            messages, metadata = raw_messages, decode_metadata(raw_metadata)
        return self.create(metadata, kind=source.kind, messages=messages)

    def export_session(self, session_id: str) -> dict[str, Any]:
        """The session and its checkpoints as one JSON-ready dict (``Session.to_dict`` plus
        ``ttl`` and ``checkpoints``), the same for every backend; ``import_session`` reads it."""
        record = self._fetch_live(check_session_id(session_id), None)
        found = self._checkpoints(session_id, time.time())
        if record is None or found is None:
            raise SessionNotFound(session_id, self.url)
        data = self._to_session(record).to_dict()
        data["ttl"] = record.ttl
        data["checkpoints"] = []
        for checkpoint in found:
            messages, metadata = self._checkpoint_state(session_id, checkpoint.number, time.time())
            data["checkpoints"].append(
                {**checkpoint.to_json(), "messages": messages, "metadata": metadata}
            )
        return data

    def import_session(self, data: Mapping[str, Any]) -> Session:
        """Store a session exported by ``export_session`` (from any store) under its own id,
        with its checkpoints; ConflictError if a live session has that id."""
        session = Session.from_dict(data)
        for message in session.messages:
            check_message(message, session.kind)
        now = time.time()
        ttl = parse_duration(data.get("ttl"))
        record = self._record_of(session, ttl, now)
        record.created_at = session.created_at.timestamp()
        record.version = 1
        try:
            record.checkpoints = [
                CheckpointRecord.from_json(c) for c in data.get("checkpoints", ())
            ]
        except AttributeError as exc:
            raise CorruptSessionError(f"checkpoints of {session.session_id!r} malformed") from exc
        if any(c.messages is None for c in record.checkpoints):
            raise CorruptSessionError("imported checkpoints must carry their messages")
        self.hooks.before_write(self, record.session_id, record.messages, record.metadata)
        self._create(record)
        return self._to_session(record)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- helpers shared by the public methods ---------------------------------------------

    def _ttl(self, ttl: float | str | None) -> float | None:
        return self.default_ttl if ttl is None else parse_duration(ttl)

    def _insert(self, session: Session, ttl: float | None) -> None:
        record = self._record_of(session, ttl, time.time())
        record.created_at = record.updated_at
        record.version = 1
        self.hooks.before_write(self, record.session_id, record.messages, record.metadata)
        self._create(record)
        session.version = 1
        session.created_at = session.updated_at = (
            to_datetime(record.updated_at) or session.created_at
        )
        session.expires_at = to_datetime(record.expires_at)

    def _record_of(self, session: Session, ttl: float | None, now: float) -> SessionRecord:
        if session.kind not in KINDS:
            raise ConfigurationError(f"unknown session kind {session.kind!r}")
        return SessionRecord(
            session_id=check_session_id(session.session_id),
            kind=session.kind,
            messages=[copy.deepcopy(m) if self.hooks else dict(m) for m in session.messages],
            metadata=encode_metadata(session.metadata),
            version=session.version,
            created_at=session.created_at.timestamp(),
            updated_at=now,
            ttl=ttl,
            expires_at=None if ttl is None else now + ttl,
        )

    def _fetch_live(self, session_id: str, last: int | None) -> SessionRecord | None:
        """Fetch, treating expired as absent and widening a tail that would orphan tool
        results until it includes the assistant message that made the calls."""
        record = self._fetch(session_id, last)
        if record is None or record.expired(time.time()):
            return None
        if last is not None and record.kind == CHAT:
            while (
                record.messages
                and record.messages[0].get("role") == "tool"
                and len(record.messages) < record.count
            ):
                wider = self._fetch(session_id, min(record.count, 2 * len(record.messages) + 8))
                if wider is None:
                    return None
                record = wider
            start = safe_tail_start(record.messages, len(record.messages) - last)
            record.messages = record.messages[start:]
        return record

    def _to_session(self, record: SessionRecord) -> Session:
        if record.kind not in KINDS or not all(isinstance(m, dict) for m in record.messages):
            raise CorruptSessionError(
                f"session {record.session_id!r} in {self.url} holds data that is not messages"
            )
        session = Session(record.session_id, kind=record.kind)
        session.messages = record.messages
        session.metadata = decode_metadata(record.metadata)
        session.version = record.version
        session.created_at = to_datetime(record.created_at) or session.created_at
        session.updated_at = to_datetime(record.updated_at) or session.updated_at
        session.expires_at = to_datetime(record.expires_at)
        return session


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
