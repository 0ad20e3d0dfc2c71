"""Session ids: generated unguessable, checked so that every backend can hold them safely."""

from __future__ import annotations

import re
import secrets
from typing import Final

from ailib.errors import InvalidSessionId

__all__ = ("check_session_id", "new_session_id")

_VALID: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}")


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
