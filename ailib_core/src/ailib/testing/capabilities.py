"""What a store under the conformance suite may lack, and the damage it may be asked to do."""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum

from ailib.store import SessionStore

__all__ = ("Capability", "Damage", "MakeStore")

MakeStore = Callable[..., SessionStore]


class Capability(StrEnum):
    """What a store may declare it lacks in ``StoreConformance.lacks``."""

    TTL = "ttl"
    CHECKPOINTS = "checkpoints"
    CONCURRENCY = "concurrency"
    LARGE_VALUES = "large_values"
    #: Two stores opened on the same URL see the same sessions (not so for ``sqlite://``,
    #: an in-memory database per store object).
    SHARED = "shared"
    #: The test class can damage stored data behind the store's back
    #: (``StoreConformance.corrupt_session``).
    CORRUPTION = "corruption"


class Damage(StrEnum):
    """What ``StoreConformance.corrupt_session`` does to a stored session.

    The session damaged holds four messages and metadata with a ``user_id``; message 1 is the
    second of the four, so a load of the last three covers it."""

    #: Garbage in the stored session's record / row / header metadata, the user id included.
    METADATA = "metadata"
    #: Stored message 1 replaced by garbage bytes.
    MESSAGE = "message"
    #: Stored message 1 removed behind the store's back.
    MISSING_MESSAGE = "missing_message"
    #: The stored message count made wrong.
    COUNT = "count"
