"""`BlockingStore`: an async store driven from sync code, so that the conformance suite's
cases run unchanged against async stores.

The async store lives on an event loop in a thread of its own; each call is submitted there
and waited for. Concurrent callers interleave on that loop, as tasks of a server would.
"""

from __future__ import annotations

import asyncio
import builtins
import threading
from collections.abc import Coroutine, Mapping, Sequence
from types import TracebackType
from typing import Any, Self, TypeVar

from ailib.async_base import AsyncBaseStore
from ailib.async_session import AsyncSession
from ailib.messages import CHAT, Message
from ailib.records import CheckpointInfo, Page
from ailib.session import Session
from ailib.user_memory import UserMemory, forget_user

__all__ = ("BlockingStore", "LoopThread")

T = TypeVar("T")


class LoopThread:
    """An event loop running in a daemon thread until ``stop``."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result()

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join()
        self.loop.close()


class BlockingStore:
    """The sync store API over ``store``; sessions it returns write through to it."""

    def __init__(self, store: AsyncBaseStore, loop: LoopThread) -> None:
        self.store = store
        self._loop = loop

    @property
    def namespace(self) -> str:
        return self.store.namespace

    @property
    def url(self) -> str:
        return self.store.url

    def _bound(self, session: AsyncSession) -> Session:
        return session.detached.bind(self)

    def create(
        self,
        metadata: Mapping[str, Any] | None = None,
        ttl: float | str | None = None,
        *,
        session_id: str | None = None,
        kind: str = CHAT,
        messages: Sequence[Message] = (),
    ) -> Session:
        made = self._loop.run(
            self.store.create(metadata, ttl, session_id=session_id, kind=kind, messages=messages)
        )
        return self._bound(made)

    def session(self, session_id: str, *, create: bool = False, kind: str = CHAT) -> Session:
        return self._bound(self._loop.run(self.store.session(session_id, create=create, kind=kind)))

    def load(self, session_id: str, last: int | None = None) -> Session:
        return self._loop.run(self.store.load(session_id, last))

    def get(self, session_id: str) -> Session | None:
        return self._loop.run(self.store.get(session_id))

    def exists(self, session_id: str) -> bool:
        return self._loop.run(self.store.exists(session_id))

    def save(self, session: Session, ttl: float | str | None = None) -> int:
        return self._loop.run(self.store.save(session, ttl))

    def append(
        self,
        session_id: str,
        *messages: Message,
        expected_version: int | None = None,
        idempotency_key: str | None = None,
    ) -> int:
        return self._loop.run(
            self.store.append(
                session_id,
                *messages,
                expected_version=expected_version,
                idempotency_key=idempotency_key,
            )
        )

    def update_metadata(
        self,
        session_id: str,
        values: Mapping[str, Any] | None = None,
        *,
        unset: Sequence[str] = (),
        expected_version: int | None = None,
        idempotency_key: str | None = None,
    ) -> int:
        return self._loop.run(
            self.store.update_metadata(
                session_id,
                values,
                unset=unset,
                expected_version=expected_version,
                idempotency_key=idempotency_key,
            )
        )

    def pop(self, session_id: str, count: int = 1) -> list[Message]:
        return self._loop.run(self.store.pop(session_id, count))

    def clear(self, session_id: str) -> int:
        return self._loop.run(self.store.clear(session_id))

    def delete(self, session_id: str) -> bool:
        return self._loop.run(self.store.delete(session_id))

    def list(
        self,
        user_id: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
        *,
        kind: str | None = None,
    ) -> Page:
        return self._loop.run(self.store.list(user_id, limit, cursor, kind=kind))

    def purge_expired(self) -> int:
        return self._loop.run(self.store.purge_expired())

    def checkpoint(self, session_id: str, label: str | None = None) -> int:
        return self._loop.run(self.store.checkpoint(session_id, label))

    def checkpoints(self, session_id: str) -> builtins.list[CheckpointInfo]:
        return self._loop.run(self.store.checkpoints(session_id))

    def restore(self, session_id: str, version: int) -> int:
        return self._loop.run(self.store.restore(session_id, version))

    def fork(self, session_id: str, version: int | None = None) -> Session:
        return self._bound(self._loop.run(self.store.fork(session_id, version)))

    def memory(self, user_id: str, ttl: float | str | None = None) -> UserMemory:
        return UserMemory(self, user_id, ttl)

    def forget_user(self, user_id: str) -> int:
        return forget_user(self, user_id)

    def export_session(self, session_id: str) -> dict[str, Any]:
        return self._loop.run(self.store.export_session(session_id))

    def import_session(self, data: Mapping[str, Any]) -> Session:
        return self._loop.run(self.store.import_session(data))

    def close(self) -> None:
        self._loop.run(self.store.aclose())

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<BlockingStore {self.store!r}>"
