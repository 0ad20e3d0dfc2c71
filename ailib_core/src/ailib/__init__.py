"""ailib: conversation sessions for LLM applications, kept in any backend named by URL."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ailib.async_base import AsyncBaseStore
from ailib.async_session import AsyncSession
from ailib.base import BaseStore
from ailib.document import DocumentStore
from ailib.errors import (
    AilibError,
    CheckpointNotFound,
    ConfigurationError,
    ConflictError,
    CorruptSessionError,
    InvalidMessage,
    InvalidMetadata,
    InvalidSessionId,
    SessionNotFound,
    StoreUnavailable,
    UnknownStoreError,
)
from ailib.hooks import hookimpl
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

if TYPE_CHECKING:
    from ailib.client import AsyncOpenAIClient, OpenAIClient

__version__ = "0.1.0"

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
    "available_stores",
    "hookimpl",
    "make_url",
    "open_async_store",
    "open_store",
    "register_store",
)


def __getattr__(name: str) -> Any:
    # The LLM clients import openai, which costs ~0.3 s; only pay for it when used.
    if name in ("OpenAIClient", "AsyncOpenAIClient"):
        from ailib import client

        return getattr(client, name)
    raise AttributeError(f"module 'ailib' has no attribute {name!r}")
