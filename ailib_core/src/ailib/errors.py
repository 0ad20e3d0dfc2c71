"""The exceptions ailib raises.

Every error is an :class:`AilibError`; catching that one class is enough to handle all of them.
Messages say what was wrong and what to do, and never contain a secret (URLs are masked).

    AilibError
    ├── ConfigurationError        bad URL, option or environment
    │   └── UnknownStoreError     no store is installed for a URL scheme
    ├── InvalidArgument           an argument outside its allowed range (also a ValueError)
    │   └── InvalidArgumentType   an argument of the wrong type (also a TypeError)
    ├── InvalidSessionId          an id a store cannot hold
    ├── InvalidMessage            a message that is not a valid Chat Completions message
    ├── InvalidMetadata           a metadata value that would not round-trip
    ├── SessionNotFound           no such session (or it has expired)
    ├── CheckpointNotFound        no such checkpoint of a session
    ├── ConflictError             someone else changed the session first
    ├── StoreUnavailable          the backend cannot be reached or refused the operation
    └── CorruptSessionError       stored data that does not decode
"""

from __future__ import annotations

__all__ = (
    "AilibError",
    "CheckpointNotFound",
    "ConfigurationError",
    "ConflictError",
    "CorruptSessionError",
    "InvalidArgument",
    "InvalidArgumentType",
    "InvalidMessage",
    "InvalidMetadata",
    "InvalidSessionId",
    "SessionNotFound",
    "StoreUnavailable",
    "UnknownStoreError",
)


class AilibError(Exception):
    """Base class of every error raised by ailib."""


class ConfigurationError(AilibError, ValueError):
    """A store URL, option or environment setting is invalid."""


class UnknownStoreError(ConfigurationError):
    """No installed store handles the URL's scheme."""


class InvalidArgument(AilibError, ValueError):
    """An argument to a store or session method outside what it accepts; the message names
    the argument and the allowed values. Raised before the backend is touched."""


class InvalidArgumentType(InvalidArgument, TypeError):
    """An argument of the wrong type (a str where an int is wanted, say)."""


class InvalidSessionId(AilibError, ValueError):
    """A session id that stores cannot hold safely."""


class InvalidMessage(AilibError, ValueError):
    """A message that does not have the shape the session's kind requires."""


class InvalidMetadata(AilibError, ValueError):
    """A metadata value that would not come back unchanged from a store."""


class SessionNotFound(AilibError, LookupError):
    """The session does not exist, or it has expired."""

    def __init__(self, session_id: str, where: str = "") -> None:
        self.session_id = session_id
        place = f" in {where}" if where else ""
        super().__init__(
            f"session {session_id!r} not found{place} (it was never created, was deleted, "
            "or has expired); create it with store.create() or check the id"
        )


class CheckpointNotFound(AilibError, LookupError):
    """The session has no checkpoint with that version number."""

    def __init__(self, session_id: str, version: int) -> None:
        self.session_id = session_id
        self.version = version
        super().__init__(
            f"session {session_id!r} has no checkpoint {version}; "
            "list them with store.checkpoints(session_id)"
        )


class ConflictError(AilibError):
    """The stored session changed since it was read; reload it and try again."""


class StoreUnavailable(AilibError, ConnectionError):
    """The backend could not be reached or failed the operation."""


class CorruptSessionError(AilibError):
    """Stored data could not be decoded; it is reported, never replaced by a default."""
