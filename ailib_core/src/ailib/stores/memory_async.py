"""The memory store for asyncio, in a module of its own so that the sync memory store does
not import asyncio."""

from __future__ import annotations

from ailib.async_adapter import InlineAsyncStore
from ailib.stores.memory import MemoryStore

__all__ = ("AsyncMemoryStore",)


class AsyncMemoryStore(InlineAsyncStore):
    """The memory store for asyncio: its operations never wait, so they run inline."""

    sync_class = MemoryStore
    options = MemoryStore.options
