"""`Session`: one conversation's messages and metadata.

A session made with ``Session()`` lives in memory; one from ``store.create()`` or
``store.session(id)`` is *bound*: ``add_message`` and ``set_metadata`` write through to the
store in one atomic operation each, so another process sees every turn at once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

from ailib.arguments import check_kind, check_mapping
from ailib.codec import decode_metadata, encode_entry, encode_metadata
from ailib.errors import AilibError, CorruptSessionError, InvalidArgumentType, InvalidSessionId
from ailib.ids import check_session_id, new_session_id
from ailib.messages import CHAT, Message, check_message, make_message
from ailib.stats import SessionStats, compute_stats
from ailib.window import TokenCounter, approximate_tokens, window

if TYPE_CHECKING:
    from ailib.store import SessionStore

__all__ = ("FORMAT", "FORMAT_VERSION", "Session", "bound")

FORMAT: Final = "ailib.session"
FORMAT_VERSION: Final = 1


class Session:
    """A conversation: an ordered list of messages plus a metadata dict.

    ``messages`` and ``metadata`` are plain attributes that subclasses may read and assign.
    """

    def __init__(
        self,
        session_id: str | None = None,
        *,
        messages: Iterable[Message] = (),
        metadata: Mapping[str, Any] | None = None,
        kind: str = CHAT,
    ) -> None:
        self.session_id: str = (
            new_session_id() if session_id is None else check_session_id(session_id)
        )
        self.kind: str = check_kind(kind)
        if type(messages) not in (list, tuple) and (
            isinstance(messages, str | bytes | Mapping) or not isinstance(messages, Iterable)
        ):
            raise InvalidArgumentType(
                f"messages must be a list of message dicts, got {type(messages).__name__}"
            )
        self.messages: list[Message] = [check_message(m, kind) for m in messages]
        self.metadata: dict[str, Any] = {}
        for key, value in check_mapping(metadata, "metadata").items():
            encode_entry(key, value)
            self.metadata[key] = value
        now = datetime.now(UTC)
        self.created_at: datetime = now
        self.updated_at: datetime = now
        self.expires_at: datetime | None = None
        self.version: int = 0
        self._store: SessionStore | None = None

    # -- messages -------------------------------------------------------------------------

    def add_message(self, role: str, content: Any = None, **fields: Any) -> Message:
        """Append a message (``role``, ``content`` and any other Chat Completions fields such as
        ``tool_calls`` or ``tool_call_id``) and return it. A bound session stores it first."""
        return self.add(make_message(role, content, fields))

    def add(self, message: Message) -> Message:
        """Append a whole message dict (or an item, in an ``items`` session)."""
        check_message(message, self.kind)
        if self._store is not None:
            self.version = self._store.append(self.session_id, message)
        self.messages.append(message)
        self.updated_at = datetime.now(UTC)
        return message

    def get_messages(self) -> list[Message]:
        """The session's own message dicts, in order, ready for the Chat Completions API."""
        return list(self.messages)

    def window(
        self,
        max_messages: int | None = None,
        max_tokens: int | None = None,
        *,
        token_counter: TokenCounter = approximate_tokens,
    ) -> list[Message]:
        """The system prompt plus the newest messages within both limits, never splitting an
        assistant tool call from its results."""
        return window(
            self.messages,
            max_messages=max_messages,
            max_tokens=max_tokens,
            token_counter=token_counter,
        )

    def stats(self) -> SessionStats:
        return compute_stats(self.messages, self.created_at, self.updated_at)

    def __len__(self) -> int:
        return len(self.messages)

    # -- metadata -------------------------------------------------------------------------

    def set_metadata(self, key: str, value: Any) -> None:
        """Set one metadata value; refused at once if it would not round-trip exactly."""
        encoded = encode_metadata({key: value})
        if self._store is not None:
            self.version = self._store.update_metadata(self.session_id, decode_metadata(encoded))
        self.metadata[key] = value
        self.updated_at = datetime.now(UTC)

    def get_metadata(self, key: str, default: Any = None) -> Any:
        return self.metadata.get(key, default)

    def get_all_metadata(self) -> dict[str, Any]:
        return dict(self.metadata)

    # -- binding --------------------------------------------------------------------------

    @property
    def store(self) -> SessionStore | None:
        """The store this session writes through to, or None for a detached session."""
        return self._store

    def bind(self, store: SessionStore | None) -> Session:
        """Make writes go through ``store`` (None detaches). Returns the session."""
        self._store = store
        return self

    def save(self) -> int:
        """Store the whole session in its bound store (see ``SessionStore.save``)."""
        if self._store is None:
            raise NotBound("this session is not bound to a store; use store.save(session)")
        return self._store.save(self)

    # -- serialisation --------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict carrying the format version; ``Session.from_dict`` reads it back."""
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "session_id": self.session_id,
            "kind": self.kind,
            "messages": [dict(m) for m in self.messages],
            "metadata": encode_metadata(self.metadata),
            "created_at": _iso(self.created_at),
            "updated_at": _iso(self.updated_at),
            "expires_at": _iso(self.expires_at) if self.expires_at else None,
            "version": self.version,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Session:
        """Read what ``to_dict`` wrote; CorruptSessionError names the session and the field
        that is wrong."""
        if not isinstance(data, Mapping) or data.get("format", FORMAT) != FORMAT:
            raise CorruptSessionError("not an ailib session dict (missing format 'ailib.session')")
        version = data.get("format_version", FORMAT_VERSION)
        if version != FORMAT_VERSION:
            raise CorruptSessionError(
                f"session format version {version!r} is not supported by this ailib "
                f"(it reads version {FORMAT_VERSION}); upgrade ailib"
            )
        session_id = data.get("session_id")
        if not isinstance(session_id, str):
            raise CorruptSessionError(
                f"session dict has no session id (its 'session_id' is {session_id!r})"
            )
        try:
            check_session_id(session_id)
        except InvalidSessionId as exc:
            raise CorruptSessionError(f"session dict is malformed: {exc}") from None
        name = f"session {session_id!r}"
        messages = data.get("messages")
        if not isinstance(messages, list):
            raise CorruptSessionError(
                f"{name}: its messages are a {type(messages).__name__}, not a list"
            )
        field = "the messages"
        try:
            session = cls.__new__(cls)
            Session.__init__(
                session, session_id, messages=messages, kind=str(data.get("kind", CHAT))
            )
            field = "the metadata"
            session.metadata = decode_metadata(data.get("metadata", {}))
            for key in ("created_at", "updated_at", "expires_at"):
                field = f"the {key!r} time"
                if data.get(key):
                    setattr(session, key, datetime.fromisoformat(data[key]))
            field = "the version"
            session.version = int(data.get("version", 0))
        except (AilibError, TypeError, ValueError) as exc:
            if isinstance(exc, CorruptSessionError) and session_id in str(exc):
                raise
            raise CorruptSessionError(f"{name}: {field} cannot be read ({exc})") from exc
        return session

    def __repr__(self) -> str:
        where = f", store={self._store!r}" if self._store is not None else ""
        return (
            f"<{type(self).__name__} {self.session_id} kind={self.kind} "
            f"messages={len(self.messages)} version={self.version}{where}>"
        )


def bound(session: Session, store: SessionStore) -> Session:
    """``session`` bound to ``store`` (:meth:`Session.bind`); a function so that the store
    base generated from the async one can call it as that one calls
    :func:`ailib.async_session.bound`."""
    return session.bind(store)


class NotBound(AilibError, RuntimeError):
    """``session.save()`` of a session that belongs to no store."""


def _iso(value: datetime) -> str:
    return value.isoformat()
