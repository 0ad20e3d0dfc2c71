"""ailib: conversation sessions for LLM applications, kept in any backend named by URL.

``import ailib`` loads only the error classes. Every other public name is imported the first
time it is used (a module ``__getattr__``), so a program, or the ``ailib`` command, pays only
for what it touches: ``import ailib`` imports neither asyncio, nor the ``openai`` package, nor
Rich or Typer. ``from ailib import open_store`` and ``ailib.open_store`` work as usual, and type
checkers see every name through the ``TYPE_CHECKING`` imports below.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, Final

from ailib.errors import (
    AilibError,
    CheckpointNotFound,
    ConfigurationError,
    ConflictError,
    CorruptSessionError,
    InvalidArgument,
    InvalidArgumentType,
    InvalidMessage,
    InvalidMetadata,
    InvalidSessionId,
    SessionNotFound,
    StoreUnavailable,
    UnknownStoreError,
)

if TYPE_CHECKING:
    from ailib.async_base import AsyncBaseStore
    from ailib.async_session import AsyncSession
    from ailib.base import BaseStore
    from ailib.client import AsyncOpenAIClient, OpenAIClient
    from ailib.document import DocumentStore
    from ailib.hookspecs import hookimpl
    from ailib.records import CheckpointInfo, Page, SessionSummary
    from ailib.registry import (
        StoreInfo,
        available_stores,
        open_async_store,
        open_store,
        register_store,
    )
    from ailib.session import Session
    from ailib.stats import SessionStats
    from ailib.store import SessionStore
    from ailib.templates import SessionTemplate
    from ailib.url import StoreURL, make_url

    __version__: str

#: Where each lazily imported name lives.
_LAZY: Final[dict[str, str]] = {
    "AsyncBaseStore": "ailib.async_base",
    "AsyncOpenAIClient": "ailib.client",
    "AsyncSession": "ailib.async_session",
    "BaseStore": "ailib.base",
    "CheckpointInfo": "ailib.records",
    "DocumentStore": "ailib.document",
    "OpenAIClient": "ailib.client",
    "Page": "ailib.records",
    "Session": "ailib.session",
    "SessionStats": "ailib.stats",
    "SessionStore": "ailib.store",
    "SessionSummary": "ailib.records",
    "SessionTemplate": "ailib.templates",
    "StoreInfo": "ailib.registry",
    "StoreURL": "ailib.url",
    "available_stores": "ailib.registry",
    "hookimpl": "ailib.hookspecs",
    "make_url": "ailib.url",
    "open_async_store": "ailib.registry",
    "open_store": "ailib.registry",
    "register_store": "ailib.registry",
}

#: The distribution whose version ``ailib.__version__`` reports.
DISTRIBUTION: Final = "ailib-core"

__all__ = (
    "AilibError",
    "AsyncBaseStore",
    "AsyncOpenAIClient",
    "AsyncSession",
    "BaseStore",
    "CheckpointInfo",
    "CheckpointNotFound",
    "ConfigurationError",
    "ConflictError",
    "CorruptSessionError",
    "DocumentStore",
    "InvalidArgument",
    "InvalidArgumentType",
    "InvalidMessage",
    "InvalidMetadata",
    "InvalidSessionId",
    "OpenAIClient",
    "Page",
    "Session",
    "SessionNotFound",
    "SessionStats",
    "SessionStore",
    "SessionSummary",
    "SessionTemplate",
    "StoreInfo",
    "StoreURL",
    "StoreUnavailable",
    "UnknownStoreError",
    "__version__",
    "available_stores",
    "hookimpl",
    "make_url",
    "open_async_store",
    "open_store",
    "register_store",
)


if not TYPE_CHECKING:  # type checkers see the imports above, and no catch-all attribute

    def __getattr__(name: str) -> Any:
        if name == "__version__":
            value: Any = installed_version()
        elif name in _LAZY:
            value = getattr(importlib.import_module(_LAZY[name]), name)
        else:
            raise AttributeError(f"module 'ailib' has no attribute {name!r}")
        globals()[name] = value  # the next access is a plain module attribute
        return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


def installed_version() -> str:
    """The installed version of ailib-core, read from its distribution's metadata."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(DISTRIBUTION)
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "0+unknown"
