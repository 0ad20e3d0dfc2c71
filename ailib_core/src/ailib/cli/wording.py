"""ailib's errors, said in the command line's terms.

The library's messages speak to Python programmers ("create it with store.create()"); at the
CLI boundary those that name a Python call are reworded to name the command that helps.
"""

from __future__ import annotations

from ailib.cli.output import one_line
from ailib.errors import CheckpointNotFound, ConfigurationError, SessionNotFound

__all__ = ("NoSuchStore", "for_cli")


class NoSuchStore(ConfigurationError):
    """A command that reads found nothing at the store's URL (and created nothing there)."""


def for_cli(exc: BaseException, *, store: str | None = None, in_chat: bool = False) -> str:
    """``exc`` as one line for a user of the ``ailib`` command: ``store`` is the URL of the
    store the command opened (shown masked); ``in_chat``: inside ``ailib chat``, where the
    slash commands are what helps."""
    if isinstance(exc, SessionNotFound):
        where = f" in {store}" if store else ""
        return (
            f"no session {exc.session_id!r}{where} (never created, deleted, or expired); "
            "`ailib sessions ls` lists the live ones"
        )
    if isinstance(exc, CheckpointNotFound):
        where = (
            "/checkpoints lists them"
            if in_chat
            else f"`ailib sessions checkpoints {exc.session_id}` lists them"
        )
        return f"session {exc.session_id!r} has no checkpoint {exc.version}; {where}"
    return one_line(exc)
