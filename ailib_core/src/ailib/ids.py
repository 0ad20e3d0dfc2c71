"""Session ids: generated unguessable, checked so that every backend can hold them safely."""

from __future__ import annotations

import re
import secrets
from typing import Final

from ailib.errors import InvalidSessionId

__all__ = ("MEMORY_PREFIX", "check_id_of_kind", "check_session_id", "new_session_id")

_VALID: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}")
#: The ids of users' memory sessions (``store.memory(user_id)``) start with this, and only
#: theirs do: an append to such an id is refused before any I/O, since a memory session
#: holds no messages.
MEMORY_PREFIX: Final = "mem."


def new_session_id() -> str:
    """128 random bits from the OS, as 32 hex characters."""
    return secrets.token_hex(16)


def check_session_id(session_id: object) -> str:
    if not isinstance(session_id, str) or not _VALID.fullmatch(session_id):
        raise InvalidSessionId(
            f"invalid session id {session_id!r}: use 1-128 characters from letters, digits "
            "and . _ : @ - , starting with a letter or digit"
        )
    return session_id


def check_id_of_kind(session_id: str, kind: str, memory_kind: str) -> None:
    """Refuse a session whose id and kind disagree on being a user's memory."""
    if session_id.startswith(MEMORY_PREFIX) != (kind == memory_kind):
        raise InvalidSessionId(
            f"invalid session id {session_id!r} for a session of kind {kind!r}: ids starting "
            f"with {MEMORY_PREFIX!r} are kept for users' memory (store.memory(user_id)), "
            "which alone makes sessions of kind 'memory'"
        )
