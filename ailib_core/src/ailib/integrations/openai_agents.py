"""ailib as the session memory of the OpenAI Agents SDK.

    from agents import Agent, Runner
    from ailib.integrations.openai_agents import AilibSession

    session = AilibSession("conversation-42", "redis://localhost:6379/0?ttl=7d")
    await Runner.run(agent, "Hello", session=session)

Items (Responses-API input items) are kept in an ``items`` session, stored and returned
exactly as given. The same session id from any process, thread or event loop sees the same
history. Install with ``pip install "ailib-core[agents]"``.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from agents.memory import SessionSettings
from agents.memory.session_settings import coerce_session_settings, resolve_session_limit

from ailib.async_base import AsyncBaseStore
from ailib.base import BaseStore
from ailib.errors import (
    ConfigurationError,
    ConflictError,
    InvalidArgument,
    InvalidArgumentType,
    SessionNotFound,
)
from ailib.ids import check_session_id
from ailib.messages import ITEMS
from ailib.records import CheckpointInfo, Page
from ailib.registry import open_async_store
from ailib.url import StoreURL, make_url

if TYPE_CHECKING:
    from agents.items import TResponseInputItem

__all__ = ("AilibSession",)


class AilibSession:
    """The Agents SDK ``Session`` protocol over any ailib store.

    ``store`` is a URL (an async store is opened per event loop, so the object may be used
    from any loop), an open :class:`AsyncBaseStore` (used on the loop it belongs to), or a
    sync :class:`BaseStore` (its calls run in worker threads). ``user_id`` and ``ttl`` apply
    when the session is first stored.
    """

    def __init__(
        self,
        session_id: str,
        store: str | StoreURL | AsyncBaseStore | BaseStore | None = None,
        session_settings: SessionSettings | Mapping[str, Any] | None = None,
        *,
        user_id: str | None = None,
        ttl: float | str | None = None,
    ) -> None:
        self.session_id = check_session_id(session_id)
        # Typed as the SDK's Session protocol declares it, so type checkers accept an
        # AilibSession wherever the SDK takes a Session.
        self.session_settings: SessionSettings | None = _settings(session_settings)
        self.user_id = user_id
        self.ttl = ttl
        self._given = store
        self._per_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, AsyncBaseStore] = (
            weakref.WeakKeyDictionary()
        )

    def __repr__(self) -> str:
        return f"<AilibSession {self.session_id} store={self._describe()}>"

    def _describe(self) -> str:
        if isinstance(self._given, BaseStore | AsyncBaseStore):
            return self._given.url
        return make_url(self._given or "memory://").render()

    async def _call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """Call ``method`` of the store (awaited, or in a thread for a sync store)."""
        if isinstance(self._given, BaseStore):
            return await asyncio.to_thread(getattr(self._given, method), *args, **kwargs)
        if isinstance(self._given, AsyncBaseStore):
            store = self._given
        else:
            loop = asyncio.get_running_loop()
            store = self._per_loop.get(loop) or self._per_loop.setdefault(
                loop, open_async_store(self._given)
            )
        return await getattr(store, method)(*args, **kwargs)

    # -- the Agents SDK Session protocol --------------------------------------------------

    async def get_items(self, limit: int | None = None) -> list[TResponseInputItem]:
        """The latest ``limit`` items (``session_settings.limit`` when None; all when both
        are None), oldest first."""
        effective = resolve_session_limit(limit, self.session_settings)
        if effective is not None and effective <= 0:
            return []
        session = await self._call("get", self.session_id) if effective is None else None
        if effective is not None:
            try:
                session = await self._call("load", self.session_id, effective)
            except SessionNotFound:
                return []
        return [] if session is None else list(session.messages)

    async def add_items(self, items: list[TResponseInputItem]) -> None:
        if not items:
            return
        stored = [dict(item) for item in items]
        try:
            await self._call("append", self.session_id, *stored)
        except SessionNotFound:
            metadata = {"user_id": self.user_id} if self.user_id else None
            try:
                await self._call(
                    "create",
                    metadata,
                    self.ttl,
                    session_id=self.session_id,
                    kind=ITEMS,
                    messages=stored,
                )
            except ConflictError:
                await self._call("append", self.session_id, *stored)

    async def pop_item(self) -> TResponseInputItem | None:
        try:
            popped = await self._call("pop", self.session_id)
        except SessionNotFound:
            return None
        return popped[0] if popped else None

    async def clear_session(self) -> None:
        try:
            await self._call("clear", self.session_id)
        except SessionNotFound:
            return

    # -- what the SDK's own sessions lack -------------------------------------------------

    async def checkpoint(self, label: str | None = None) -> int:
        return int(await self._call("checkpoint", self.session_id, label))

    async def checkpoints(self) -> list[CheckpointInfo]:
        return list(await self._call("checkpoints", self.session_id))

    async def restore(self, version: int) -> None:
        await self._call("restore", self.session_id, version)

    async def fork(self, version: int | None = None) -> AilibSession:
        """A new session (new id, same store) from the current state or a checkpoint."""
        forked = await self._call("fork", self.session_id, version)
        return AilibSession(
            forked.session_id,
            self._given,
            self.session_settings,
            user_id=self.user_id,
            ttl=self.ttl,
        )

    async def list_user_sessions(self, limit: int = 50, cursor: str | None = None) -> Page:
        """This session's user's sessions, most recently updated first."""
        if self.user_id is None:
            raise ConfigurationError(
                "this AilibSession was made without a user_id; pass user_id= to list its "
                "user's sessions"
            )
        return await self._call("list", self.user_id, limit, cursor)  # type: ignore[no-any-return]

    async def aclose(self) -> None:
        """Close the store this object opened on the running loop (never a store it was
        given)."""
        store = self._per_loop.pop(asyncio.get_running_loop(), None)
        if store is not None:
            await store.aclose()


def _settings(value: SessionSettings | Mapping[str, Any] | None) -> SessionSettings:
    """``value`` as the SDK's own sessions read it: unknown keys raise
    ``TypeError("Unknown session settings: ...")`` there, InvalidArgumentType (a TypeError)
    here, with the same message."""
    if value is None:
        return SessionSettings()
    try:
        return coerce_session_settings(dict(value) if isinstance(value, Mapping) else value)
    except TypeError as exc:
        raise InvalidArgumentType(str(exc)) from None
    except ValueError as exc:  # pydantic's ValidationError of a value of the wrong type
        raise InvalidArgument(f"invalid session_settings: {exc}") from None
