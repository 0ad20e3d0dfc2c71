"""`SessionStore`: the protocol every backend implements (usually by subclassing BaseStore)."""

from __future__ import annotations

import builtins
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any, Protocol, Self, runtime_checkable

from ailib.messages import Message
from ailib.records import CheckpointInfo, Page
from ailib.session import Session
from ailib.user_memory import UserMemory

__all__ = ("SessionStore",)


@runtime_checkable
class SessionStore(Protocol):
    """Where sessions live. Every method is atomic on its own; see docs/stores.md."""

    def create(
        self,
        metadata: Mapping[str, Any] | None = None,
        ttl: float | str | None = None,
        *,
        session_id: str | None = None,
        kind: str = "chat",
        messages: Sequence[Message] = (),
    ) -> Session:
        """A new session, stored and bound (its writes go through to the store)."""
        ...

    def session(self, session_id: str, *, create: bool = False, kind: str = "chat") -> Session:
        """The stored session, bound; with ``create=True`` a new one is made if missing."""
        ...

    def load(self, session_id: str, last: int | None = None) -> Session:
        """The stored session, detached; ``last=N`` reads only the tail. Raises SessionNotFound."""
        ...

    def get(self, session_id: str) -> Session | None: ...

    def save(self, session: Session, ttl: float | str | None = None) -> int:
        """Store the whole session (upsert); ConflictError if it changed since it was read."""
        ...

    def append(
        self,
        session_id: str,
        *messages: Message,
        expected_version: int | None = None,
        idempotency_key: str | None = None,
    ) -> int:
        """Append atomically and return the new version; a call repeated with the same
        ``idempotency_key`` is applied once and returns the version it first produced."""
        ...

    def update_metadata(
        self,
        session_id: str,
        values: Mapping[str, Any] | None = None,
        *,
        unset: Sequence[str] = (),
        expected_version: int | None = None,
        idempotency_key: str | None = None,
    ) -> int: ...

    def pop(self, session_id: str, count: int = 1) -> builtins.list[Message]: ...

    def clear(self, session_id: str) -> int: ...

    def export_session(self, session_id: str) -> dict[str, Any]: ...

    def import_session(self, data: Mapping[str, Any]) -> Session: ...

    def delete(self, session_id: str) -> bool: ...

    def memory(self, user_id: str, ttl: float | str | None = None) -> UserMemory: ...

    def forget_user(self, user_id: str) -> int: ...

    def exists(self, session_id: str) -> bool: ...

    def list(
        self,
        user_id: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
        *,
        kind: str | None = None,
    ) -> Page: ...

    def purge_expired(self) -> int: ...

    def checkpoint(self, session_id: str, label: str | None = None) -> int: ...

    def checkpoints(self, session_id: str) -> builtins.list[CheckpointInfo]: ...

    def restore(self, session_id: str, version: int) -> int: ...

    def fork(self, session_id: str, version: int | None = None) -> Session: ...

    def close(self) -> None: ...

    def __enter__(self) -> Self: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...
