"""What the sync and async store bases share: configuration, and every step of the public
methods that does no I/O (validation, TTL, hooks, records to sessions, pages, tails).

:class:`ailib.base.BaseStore` and :class:`ailib.async_base.AsyncBaseStore` only wire these
steps around their backend operations, so the two cannot drift apart.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any, ClassVar, Self

from ailib.arguments import (
    check_count,
    check_expected_version,
    check_idempotency_key,
    check_kind,
    check_limit,
    check_mapping,
    check_unset,
)
from ailib.codec import SEALED, USER_ID, decode_metadata, encode_metadata
from ailib.durations import parse_duration
from ailib.errors import (
    ConfigurationError,
    CorruptSessionError,
    InvalidArgument,
    InvalidArgumentType,
    InvalidMessage,
    InvalidMetadata,
    SessionNotFound,
)
from ailib.hooks import StoreHooks
from ailib.ids import MEMORY_PREFIX, check_id_of_kind, check_session_id
from ailib.messages import (
    CHAT,
    ITEMS,
    KINDS,
    MEMORY,
    Message,
    all_objects,
    check_message,
    check_stored_message,
    is_plain_text,
    json_copy,
    plain_text_prefix,
)
from ailib.records import (
    Change,
    CheckpointRecord,
    Page,
    SessionRecord,
    SessionSummary,
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

logger = logging.getLogger("ailib")


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
        """The store's URL with any password masked (rendered once per URL: errors and
        checks on the hot path name it)."""
        url = self._url
        shown = self.__dict__.get("_shown_url")
        if shown is None or shown[0] is not url:
            shown = (url, url.render() if url else f"{type(self).__name__}()")
            self.__dict__["_shown_url"] = shown
        return shown[1]

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.url} namespace={self.namespace!r}>"

    # -- steps before a write -------------------------------------------------------------

    def _ttl(self, ttl: float | str | None) -> float | None:
        return self.default_ttl if ttl is None else parse_duration(ttl, "ttl", InvalidArgument)

    @staticmethod
    def _check_session(session: object) -> Session:
        if not isinstance(session, Session):
            raise InvalidArgumentType(
                f"save takes a Session (from store.load or Session()), got {type(session).__name__}"
            )
        return session

    def _record_of(self, session: Session, ttl: float | None, now: float) -> SessionRecord:
        check_kind(session.kind)
        check_id_of_kind(check_session_id(session.session_id), session.kind, MEMORY)
        messages = []
        for message in session.messages:
            check_stored_message(message, session.kind)
            messages.append(json_copy(message))
        return SessionRecord(
            session_id=session.session_id,
            kind=session.kind,
            messages=messages,
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
        self,
        session_id: str,
        messages: Sequence[Message],
        expected_version: int | None,
        idempotency_key: str | None = None,
    ) -> tuple[Change, Counts, list[Message]]:
        """The change an append makes, the running totals hooks asked to add to (the caller
        reads the stored totals and merges them with :meth:`_with_totals`), and the messages
        that are valid only in an ``items`` session (the caller checks them against the
        session's kind with :meth:`_check_kind_of`).

        Every message is checked before the hooks see it: a JSON object that comes back
        unchanged, and, unless the session is of kind ``items``, a valid chat message."""
        check_session_id(session_id)
        check_expected_version(expected_version)
        op_id = check_idempotency_key(idempotency_key) or new_op_id()
        if not messages:
            raise InvalidMessage("append needs at least one message")
        if session_id.startswith(MEMORY_PREFIX):
            raise InvalidMessage(
                f"session {session_id!r} is a user's memory, which holds no messages; "
                "use store.memory(user_id) to read and change it"
            )
        items_only = []
        stored = []
        for message in messages:
            stored.append(json_copy(message))
            try:
                check_stored_message(message, CHAT)
            except InvalidMessage:
                items_only.append(message)
        metadata: dict[str, Any] = {}
        counts = self.hooks.before_write(self, session_id, stored, metadata)
        change = Change(
            append=tuple(stored),
            set_metadata=metadata,
            expected_version=expected_version,
            op_id=op_id,
        )
        return change, counts, items_only

    def _check_kind_of(
        self, session_id: str, messages: Sequence[Message], header: SessionRecord | None
    ) -> None:
        """Check ``messages`` against the kind of the session ``header`` describes."""
        if header is None or header.expired(time.time()):
            raise SessionNotFound(session_id, self.url)
        for message in messages:
            check_message(message, header.kind)

    def _metadata_change(
        self,
        session_id: str,
        values: Mapping[str, Any] | None,
        unset: Sequence[str],
        expected_version: int | None,
        idempotency_key: str | None = None,
    ) -> Change:
        check_session_id(session_id)
        check_expected_version(expected_version)
        op_id = check_idempotency_key(idempotency_key) or new_op_id()
        encoded = encode_metadata(check_mapping(values, "values"))
        self.hooks.before_write(self, session_id, [], encoded)
        return Change(
            set_metadata=encoded,
            unset_metadata=check_unset(unset),
            expected_version=expected_version,
            op_id=op_id,
        )

    @staticmethod
    def _with_totals(change: Change, counts: Counts, stored: SessionRecord | None) -> Change:
        """``change`` also setting each running total to what is stored plus ``counts``."""
        current = stored.metadata if stored is not None else {}
        return replace(change, set_metadata={**change.set_metadata, **_totals(current, counts)})

    def _imported_record(self, data: Mapping[str, Any]) -> SessionRecord:
        """The record an ``export_session`` dict describes, checkpoints included."""
        check_mapping(data, "the exported session")
        session = Session.from_dict(data)
        name = f"session {session.session_id!r}"
        try:
            ttl = parse_duration(data.get("ttl"), "ttl", InvalidArgument)
        except InvalidArgument as exc:
            raise CorruptSessionError(f"{name}: {exc}") from None
        record = self._record_of(session, ttl, time.time())
        record.created_at = session.created_at.timestamp()
        record.version = 1
        raw = data.get("checkpoints", ())
        if not isinstance(raw, list) or not all(isinstance(c, dict) for c in raw):
            raise CorruptSessionError(f"the checkpoints of {name} are malformed")
        record.checkpoints = [CheckpointRecord.from_json(c, session.session_id) for c in raw]
        if any(c.messages is None for c in record.checkpoints):
            raise CorruptSessionError(f"the checkpoints of {name} must carry their messages")
        for checkpoint in record.checkpoints:
            assert checkpoint.messages is not None
            try:
                encode_metadata(decode_metadata(checkpoint.metadata))
                for message in checkpoint.messages:
                    check_message(message, session.kind)
            except (InvalidMessage, InvalidMetadata, CorruptSessionError) as exc:
                raise CorruptSessionError(
                    f"checkpoint {checkpoint.number} of {name} is not valid: {exc}"
                ) from None
        self._run_hooks(record)
        return record

    # -- steps after a read ---------------------------------------------------------------

    @staticmethod
    def _check_last(last: int | None) -> None:
        if last is not None:
            check_count(last, "last")

    @staticmethod
    def _wider_tail(record: SessionRecord | None, last: int | None) -> int | None:
        """How many messages to fetch instead, when the tail opens with tool results whose
        assistant call is further back; None when ``record`` will do."""
        if (
            record is None
            or last is None
            or record.kind != CHAT
            or not record.messages
            or not isinstance(record.messages[0], dict)
            or record.messages[0].get("role") != "tool"
            or len(record.messages) >= record.count
        ):
            return None
        return min(record.count, 2 * len(record.messages) + 8)

    def _live(self, record: SessionRecord | None, last: int | None) -> SessionRecord | None:
        """``record`` unless it expired, checked to hold as many messages as its count says,
        its tail cut to ``last``: exactly, for items; for chat messages, widened so as not to
        orphan tool results."""
        if record is None or record.expired(time.time()):
            return None
        self._check_count(record, last)
        if last is not None:
            start = len(record.messages) - last
            if record.kind == CHAT:
                start = safe_tail_start(record.messages, start)
            record.messages = record.messages[max(0, start) :]
        return record

    def _check_count(self, record: SessionRecord, last: int | None) -> None:
        """What the core can check of a fetched record: its message count is a count, a
        whole load returned exactly that many messages, a tail no more and not fewer than
        asked for."""
        count, got = record.message_count, len(record.messages)
        if not isinstance(record.messages, list):
            raise CorruptSessionError(
                f"{self._named(record.session_id)}: its messages are not a list"
            )
        if not all_objects(record.messages):
            index, message = next(
                (n, m) for n, m in enumerate(record.messages) if not isinstance(m, dict)
            )
            raise CorruptSessionError(
                f"{self._named(record.session_id)}: a stored message (number {index} of those "
                f"read) is a {type(message).__name__}, not an object"
            )
        if count is None:
            return
        if not isinstance(count, int) or isinstance(count, bool) or count < 0:
            raise CorruptSessionError(
                f"{self._named(record.session_id)}: its stored message count {count!r} is invalid"
            )
        if last is None and got != count:
            raise CorruptSessionError(
                f"{self._named(record.session_id)}: its stored message count is {count} but "
                f"{got} messages are stored; messages are missing or the count is wrong"
            )
        if last is not None and not min(last, count) <= got <= count:
            raise CorruptSessionError(
                f"{self._named(record.session_id)}: the last {last} of its {count} messages "
                f"were asked for and {got} came back; messages are missing or the stored count "
                "is wrong"
            )

    def _named(self, session_id: str) -> str:
        """How errors name a session: its id and the store's URL (password masked)."""
        return f"session {session_id!r} in {self.url}"

    def _readable(self, session_id: str, messages: list[Message], metadata: dict[str, Any]) -> int:
        """Run the read hooks in place; refuse what is still sealed (read without its key).
        Answers how many messages, from the first, are plain text (:func:`plain_text_prefix`):
        none of those is sealed, and nothing more of them needs checking."""
        plain = plain_text_prefix(messages)
        if not all_objects(messages[plain:]) or not isinstance(metadata, dict):
            raise CorruptSessionError(
                f"session {session_id!r} in {self.url} holds data that is not messages"
            )
        if self.hooks:
            self.hooks.after_read(self, session_id, messages, metadata)
            plain = plain_text_prefix(messages)
        if any(SEALED in m for m in messages[plain:]) or any(
            isinstance(v, dict) and SEALED in v for v in metadata.values()
        ):
            raise ConfigurationError(
                f"session {session_id!r} in {self.url} is encrypted; open the store with "
                "its key (for example ?encrypt=env:AILIB_KEY) to read it"
            )
        return plain

    def _to_session(self, record: SessionRecord) -> Session:
        if record.kind not in KINDS:
            raise CorruptSessionError(
                f"{self._named(record.session_id)} has unknown kind {record.kind!r}"
            )
        plain = self._readable(record.session_id, record.messages, record.metadata)
        chat = record.kind == CHAT
        for index in range(plain if chat else 0, len(record.messages)):
            message = record.messages[index]
            if chat and is_plain_text(message):
                continue
            try:
                check_stored_message(message, record.kind)
            except InvalidMessage as exc:
                raise CorruptSessionError(
                    f"{self._named(record.session_id)}: stored message {index} is not valid: {exc}"
                ) from None
        session = Session(record.session_id, kind=record.kind)
        session.messages = record.messages
        session.metadata = self._decoded_metadata(record)
        self._stamp(session, record)
        return session

    def _decoded_metadata(self, record: SessionRecord) -> dict[str, Any]:
        return self._decoded(record.session_id, record.metadata)

    def _decoded(self, session_id: str, raw: Any) -> dict[str, Any]:
        """Stored metadata decoded; CorruptSessionError naming the session if it does not
        decode or its ``user_id`` is not a str."""
        try:
            metadata = decode_metadata(raw)
        except CorruptSessionError as exc:
            raise CorruptSessionError(
                f"{self._named(session_id)}: its metadata cannot be read: {exc}"
            ) from None
        user_id = metadata.get(USER_ID, "")
        if not isinstance(user_id, str):
            raise CorruptSessionError(
                f"{self._named(session_id)}: its stored {USER_ID!r} is a "
                f"{type(user_id).__name__}, not a str"
            )
        return metadata

    @staticmethod
    def _stamp(session: Session, record: SessionRecord) -> None:
        """Copy the stored version and times onto ``session``."""
        session.version = record.version
        session.created_at = to_datetime(record.created_at) or session.created_at
        session.updated_at = to_datetime(record.updated_at) or session.updated_at
        session.expires_at = to_datetime(record.expires_at)

    @staticmethod
    def _list_args(
        user_id: str | None, limit: int, cursor: str | None, kind: str | None
    ) -> tuple[tuple[float, str] | None, float]:
        if user_id is not None and not isinstance(user_id, str):
            raise InvalidArgumentType(f"user_id must be a str or None, got {user_id!r}")
        check_limit(limit)
        if kind is not None:
            check_kind(kind)
        return (decode_cursor(cursor) if cursor is not None else None), time.time()

    def _listable(
        self, batch: Sequence[SessionRecord], kind: str | None
    ) -> list[tuple[SessionRecord, SessionSummary]]:
        """The records of ``batch`` of the listed kind, with their summaries. A record whose
        header does not decode is left out and logged as a warning naming it, so that one
        damaged session does not hide every other."""
        listed = []
        for record in batch:
            try:
                if record.kind not in KINDS:
                    raise CorruptSessionError(f"unknown kind {record.kind!r}")
                if not (record.kind == kind if kind else record.kind != MEMORY):
                    continue
                self._readable(record.session_id, [], record.metadata)
                summary = record.summary(self._decoded_metadata(record))
                if not isinstance(summary.message_count, int) or summary.message_count < 0:
                    raise CorruptSessionError(f"message count {summary.message_count!r}")
            except (CorruptSessionError, TypeError, ValueError, AttributeError) as exc:
                if isinstance(exc, ConfigurationError):
                    raise
                logger.warning(
                    "left session %r in %s out of the listing: its stored header is corrupt (%s)",
                    record.session_id,
                    self.url,
                    exc,
                )
                continue
            listed.append((record, summary))
        return listed

    def _page(
        self, listed: Sequence[tuple[SessionRecord, SessionSummary]], limit: int, now: float
    ) -> Page:
        live = [(r, s) for r, s in listed if not r.expired(now)]
        more = len(live) > limit
        live = live[:limit]
        last = live[-1][0] if live else None
        cursor = encode_cursor(last.updated_at, last.session_id) if more and last else None
        return Page([s for _, s in live], cursor)

    def _user_key(self, user_id: str | None) -> str | None:
        return None if user_id is None else self.hooks.user_key(self, user_id)

    def _readable_state(
        self, session_id: str, state: CheckpointState, kind: str = ITEMS
    ) -> CheckpointState:
        messages, metadata = state
        self._readable(session_id, messages, metadata)
        for index, message in enumerate(messages):
            try:
                check_stored_message(message, kind)
            except InvalidMessage as exc:
                raise CorruptSessionError(
                    f"session {session_id!r} in {self.url}: message {index} of a checkpoint "
                    f"is not valid: {exc}"
                ) from None
        return messages, metadata

    def _export(
        self, record: SessionRecord, checkpoints: Sequence[tuple[CheckpointRecord, CheckpointState]]
    ) -> dict[str, Any]:
        data = self._to_session(record).to_dict()
        data["ttl"] = record.ttl
        data["checkpoints"] = []
        for checkpoint, state in checkpoints:
            messages, metadata = self._readable_state(record.session_id, state, record.kind)
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


def new_op_id() -> str:
    """A fresh random op id for a write the app gave no idempotency key."""
    return secrets.token_hex(16)


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
