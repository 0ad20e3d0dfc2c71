"""ailib as LangChain's chat message history: ``AilibChatMessageHistory``.

Each LangChain message is stored as one item of an ``items`` session, in LangChain's own
serialized form (``message_to_dict``: ``{"type": "ai", "data": {...}}``), so every field
(tool calls, invalid tool calls, usage metadata, additional kwargs, response metadata, ids,
names, artifacts, chunks) comes back exactly. Install with ``pip install "ailib-core[langchain]"``.
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import Mapping, Sequence
from typing import Any

try:
    from langchain_core.chat_history import BaseChatMessageHistory
    from langchain_core.messages import BaseMessage, message_to_dict, messages_from_dict
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        'ailib.integrations.langchain needs langchain-core: pip install "ailib-core[langchain]"'
    ) from exc

from ailib.async_base import AsyncBaseStore
from ailib.base import BaseStore
from ailib.errors import (
    ConflictError,
    CorruptSessionError,
    InvalidArgument,
    InvalidArgumentType,
    SessionNotFound,
)
from ailib.ids import check_session_id
from ailib.messages import ITEMS, Message
from ailib.registry import open_async_store, open_store
from ailib.url import StoreURL, make_url

__all__ = ("AilibChatMessageHistory", "from_items", "to_items")


def to_items(messages: Sequence[BaseMessage]) -> list[Message]:
    """LangChain messages as the items stored for them."""
    items = []
    for index, message in enumerate(messages):
        if not isinstance(message, BaseMessage):
            raise InvalidArgumentType(
                f"message {index} is a {type(message).__name__}, not a LangChain BaseMessage"
            )
        items.append(message_to_dict(message))
    return items


def from_items(session_id: str, items: Sequence[Message]) -> list[BaseMessage]:
    """The LangChain messages stored as ``items``; CorruptSessionError naming the session and
    the item if one is not a serialized LangChain message."""
    messages = []
    for index, item in enumerate(items):
        try:
            (message,) = messages_from_dict([item])
        except (KeyError, TypeError, ValueError) as exc:
            raise CorruptSessionError(
                f"session {session_id!r}: item {index} is not a LangChain message "
                f"({type(exc).__name__}: {exc}); it holds keys {sorted(map(str, item))}"
            ) from exc
        messages.append(message)
    return messages


class AilibChatMessageHistory(BaseChatMessageHistory):
    """A LangChain chat history kept in an ailib session.

    ``url_or_store`` is a store URL (``"redis://localhost:6379/0"``), a store from
    ``ailib.open_store`` or one from ``ailib.open_async_store``. With a URL the history opens
    the stores itself, lazily: a sync one for ``messages``/``add_messages``/``clear`` and,
    for ``aget_messages``/``aadd_messages``/``aclear``, an async one per event loop (so the
    object may be used from any loop); ``close``/``aclose`` (or ``with``/``async with``)
    release them. With an async store only the async methods work;
    with a sync store the async methods run in a worker thread. Across processes, one
    session id is one conversation.

    ``metadata`` and ``ttl`` apply when the first message creates the session; ``last`` reads
    only the newest ``last`` messages (a window over a long conversation).
    """

    def __init__(
        self,
        session_id: str,
        url_or_store: str | StoreURL | BaseStore | AsyncBaseStore = "memory://",
        *,
        metadata: Mapping[str, Any] | None = None,
        ttl: float | str | None = None,
        last: int | None = None,
    ) -> None:
        super().__init__()
        self.session_id = check_session_id(session_id)
        if last is not None and (not isinstance(last, int) or last < 0):
            raise InvalidArgument(f"last must be a whole number >= 0 or None, got {last!r}")
        self.metadata = dict(metadata or {})
        self.ttl = ttl
        self.last = last
        self._url: StoreURL | None = None
        self._sync: BaseStore | None = None
        self._async: AsyncBaseStore | None = None
        self._per_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, AsyncBaseStore] = (
            weakref.WeakKeyDictionary()
        )
        self._owned = False
        self._lock = threading.Lock()
        if isinstance(url_or_store, BaseStore):
            self._sync = url_or_store
        elif isinstance(url_or_store, AsyncBaseStore):
            self._async = url_or_store
        elif isinstance(url_or_store, str | StoreURL):
            self._url = make_url(url_or_store)
            self._owned = True
        else:
            raise InvalidArgumentType(
                "url_or_store must be a store URL or a store from ailib.open_store / "
                f"ailib.open_async_store, got {type(url_or_store).__name__}"
            )

    def __repr__(self) -> str:
        where = self._url.render() if self._url else repr(self._sync or self._async)
        return f"<AilibChatMessageHistory {self.session_id!r} in {where}>"

    # -- the stores ------------------------------------------------------------------------

    @property
    def store(self) -> BaseStore:
        """The sync store (opened from the URL on first use)."""
        if self._sync is None:
            if self._url is None:
                raise InvalidArgument(
                    "this history was given an async store: use aget_messages, aadd_messages "
                    "and aclear, or give it a URL or a store from ailib.open_store"
                )
            with self._lock:
                if self._sync is None:
                    self._sync = open_store(self._url)
        return self._sync

    @property
    def async_store(self) -> AsyncBaseStore | None:
        """The async store for the running event loop, or None when async calls go to the
        sync store: given a sync store, or a ``memory://`` URL (whose sessions belong to the
        one store object)."""
        if self._async is not None:
            return self._async
        if self._url is None or self._url.base_scheme == "memory":
            return None
        loop = asyncio.get_running_loop()
        store = self._per_loop.get(loop)
        if store is None:
            store = self._per_loop[loop] = open_async_store(self._url)
        return store

    def close(self) -> None:
        """Close the sync store this history opened from its URL (a store given is left open)."""
        if self._owned and self._sync is not None:
            self._sync.close()
            self._sync = None

    async def aclose(self) -> None:
        """Close the stores this history opened from its URL for the running loop, and the
        sync one."""
        store = self._per_loop.pop(asyncio.get_running_loop(), None)
        if store is not None:
            await store.aclose()
        self.close()

    def __enter__(self) -> AilibChatMessageHistory:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> AilibChatMessageHistory:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- sync ------------------------------------------------------------------------------

    @property
    def messages(self) -> list[BaseMessage]:  # type: ignore[override]
        """The conversation, oldest first ([] before the first message)."""
        store = self.store
        if self.last is None:
            found = store.get(self.session_id)
        else:
            try:
                found = store.load(self.session_id, last=self.last)
            except SessionNotFound:
                found = None
        return [] if found is None else self._decoded(found.kind, found.messages)

    def add_messages(self, messages: Sequence[BaseMessage]) -> None:
        """Append ``messages`` in one atomic write (creating the session on the first)."""
        items = to_items(messages)
        if not items:
            return
        store = self.store
        try:
            store.append(self.session_id, *items)
        except SessionNotFound:
            try:
                store.create(
                    self.metadata, self.ttl, session_id=self.session_id, kind=ITEMS, messages=items
                )
            except ConflictError:  # created by another writer in between
                store.append(self.session_id, *items)

    def clear(self) -> None:
        """Remove every message (the session, its metadata and checkpoints stay)."""
        try:
            self.store.clear(self.session_id)
        except SessionNotFound:
            return

    # -- async -----------------------------------------------------------------------------

    async def aget_messages(self) -> list[BaseMessage]:
        store = self.async_store
        if store is None:
            found_sync: list[BaseMessage] = await self._sync_in_thread(lambda: self.messages)
            return found_sync
        if self.last is None:
            found = await store.get(self.session_id)
        else:
            try:
                found = await store.load(self.session_id, last=self.last)
            except SessionNotFound:
                found = None
        return [] if found is None else self._decoded(found.kind, found.messages)

    async def aadd_messages(self, messages: Sequence[BaseMessage]) -> None:
        store = self.async_store
        if store is None:
            await self._sync_in_thread(lambda: self.add_messages(messages))
            return
        items = to_items(messages)
        if not items:
            return
        try:
            await store.append(self.session_id, *items)
        except SessionNotFound:
            try:
                await store.create(
                    self.metadata, self.ttl, session_id=self.session_id, kind=ITEMS, messages=items
                )
            except ConflictError:
                await store.append(self.session_id, *items)

    async def aclear(self) -> None:
        store = self.async_store
        if store is None:
            await self._sync_in_thread(self.clear)
            return
        try:
            await store.clear(self.session_id)
        except SessionNotFound:
            return

    # -- helpers ---------------------------------------------------------------------------

    async def _sync_in_thread(self, call: Any) -> Any:
        """``call`` on the sync store: inline for memory (it never waits), else in a thread."""
        if self._url is not None and self._url.base_scheme == "memory":
            return call()
        return await asyncio.to_thread(call)

    def _decoded(self, kind: str, items: list[Message]) -> list[BaseMessage]:
        if kind != ITEMS:
            raise InvalidArgument(
                f"session {self.session_id!r} is a {kind!r} session, not one this history "
                "wrote; give the history another session id"
            )
        return from_items(self.session_id, items)
