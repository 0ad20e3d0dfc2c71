"""Per-user long-term memory: what the tutorial's MemoryBot keeps "in a database".

``store.memory(user_id)`` is a typed key-value memory shared by all of that user's sessions.
It is kept as a metadata-only session of kind ``memory`` (never listed), so it lives in the
same backend, under the same TTL, redaction and encryption as the user's sessions, and every
update is one atomic metadata write. ``store.forget_user(user_id)`` erases everything.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Final

from ailib.arguments import check_mapping
from ailib.errors import ConflictError, InvalidArgument, InvalidArgumentType, SessionNotFound
from ailib.ids import MEMORY_PREFIX
from ailib.messages import MEMORY

if TYPE_CHECKING:
    from ailib.store import SessionStore

__all__ = ("AsyncUserMemories", "UserMemories", "UserMemory", "forget_user", "memory_session_id")

USER_ID: Final = "user_id"
_ATTEMPTS: Final = 100


def memory_session_id(user_id: str) -> str:
    """The id of ``user_id``'s memory session (a hash: user ids may hold any character)."""
    return MEMORY_PREFIX + hashlib.sha256(user_id.encode()).hexdigest()[:40]


class UserMemory:
    """One user's memory: ``get``/``set``/``update``/``delete`` values (JSON types and
    datetimes), and atomic read-modify-write through ``modify`` (what ``add_fact``,
    ``set_preference`` and ``add_topic`` use, so concurrent sessions lose nothing)."""

    def __init__(self, store: SessionStore, user_id: str, ttl: float | str | None = None) -> None:
        check_user_id(user_id)
        self.store = store
        self.user_id = user_id
        self.ttl = ttl
        self.session_id = memory_session_id(user_id)

    def __repr__(self) -> str:
        return f"<UserMemory {self.session_id} store={self.store!r}>"

    def _create(self, values: Mapping[str, Any]) -> bool:
        """Store the memory with ``values``; False if another writer created it first."""
        try:
            self.store.create(
                {USER_ID: self.user_id, **values}, self.ttl, session_id=self.session_id, kind=MEMORY
            )
        except ConflictError:
            return False
        return True

    def all(self) -> dict[str, Any]:
        found = self.store.get(self.session_id)
        if found is None:
            return {}
        values = found.get_all_metadata()
        values.pop(USER_ID, None)
        return values

    def get(self, key: str, default: Any = None) -> Any:
        return self.all().get(key, default)

    def update(self, values: Mapping[str, Any]) -> None:
        if USER_ID in check_mapping(values, "values"):
            raise InvalidArgument(f"{USER_ID!r} names the memory's owner and cannot be set")
        try:
            self.store.update_metadata(self.session_id, values)
        except SessionNotFound:
            if not self._create(values):
                self.store.update_metadata(self.session_id, values)

    def set(self, key: str, value: Any) -> None:
        self.update({key: value})

    def delete(self, *keys: str) -> None:
        try:
            self.store.update_metadata(self.session_id, unset=keys)
        except SessionNotFound:
            return

    def clear(self) -> None:
        self.store.delete(self.session_id)

    def modify(self, key: str, change: Callable[[Any], Any], default: Any = None) -> Any:
        """Set ``key`` to ``change(current value)`` atomically (retrying when another
        writer got in first); returns the new value."""
        for _ in range(_ATTEMPTS):
            try:
                current = self.store.load(self.session_id)
            except SessionNotFound:
                self._create({})
                continue
            value = change(current.get_metadata(key, default))
            try:
                self.store.update_metadata(
                    self.session_id, {key: value}, expected_version=current.version
                )
                return value
            except ConflictError:
                continue
        raise ConflictError(f"memory of {self.session_id} kept changing; try again")

    # -- the shapes the tutorial's MemoryBot keeps ----------------------------------------

    @property
    def preferences(self) -> dict[str, Any]:
        return dict(self.get("preferences") or {})

    def set_preference(self, name: str, value: Any) -> None:
        self.modify("preferences", lambda prefs: {**(prefs or {}), name: value})

    @property
    def facts(self) -> list[Any]:
        return list(self.get("facts") or [])

    def add_fact(self, fact: Any) -> None:
        self.modify("facts", lambda facts: [*(facts or []), fact])

    @property
    def topics(self) -> list[Any]:
        return list(self.get("topics") or [])

    def add_topic(self, topic: Any) -> None:
        self.modify("topics", lambda topics: list(dict.fromkeys([*(topics or []), topic])))


def check_user_id(user_id: object) -> str:
    if not isinstance(user_id, str):
        raise InvalidArgumentType(f"user_id must be a str, got {type(user_id).__name__}")
    if not user_id:
        raise InvalidArgument("user_id must not be empty")
    return user_id


def forget_user(store: SessionStore, user_id: str) -> int:
    """Delete every session of ``user_id`` (checkpoints with them) and their memory; return
    how many sessions went (the memory counts as one)."""
    check_user_id(user_id)
    deleted = 0
    while True:
        page = store.list(user_id=user_id, limit=200)
        if not page.items:
            break
        deleted += sum(1 for s in page if store.delete(s.session_id))
    if store.delete(memory_session_id(user_id)):
        deleted += 1
    return deleted


class UserMemories:
    """``memory`` and ``forget_user``: what a sync store (``BaseStore``) gives for users'
    long-term memory."""

    def memory(self: SessionStore, user_id: str, ttl: float | str | None = None) -> UserMemory:
        """``user_id``'s long-term memory, shared by all of their sessions."""
        return UserMemory(self, user_id, ttl)

    def forget_user(self: SessionStore, user_id: str) -> int:
        """Erase ``user_id``: their sessions, checkpoints and memory. Returns sessions deleted."""
        return forget_user(self, user_id)


class AsyncUserMemories:
    """The async twin of :class:`UserMemories`, which ``AsyncBaseStore`` inherits: an async
    store does not serve users' memory yet (open the sync store for ``store.memory``)."""
