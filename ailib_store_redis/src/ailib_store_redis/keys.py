"""Key names: where a session and a namespace's listing index live in Redis.

Every key of one session carries the hash tag ``{namespace:session_id}``, so a session sits in
one cluster slot and every script over it is a single-slot call. The listing index is tagged
``{namespace}``: one slot per namespace. Namespaces never contain ``:`` (BaseStore checks), so
an index tag never equals a session tag. Sync and async stores share this module.
"""

from __future__ import annotations

from typing import Final, NamedTuple

from ailib.spi import dumps

__all__ = (
    "PREFIX",
    "IndexKeys",
    "SessionKeys",
    "index_keys",
    "session_keys",
    "session_prefix",
)

PREFIX: Final = "ailib"


class SessionKeys(NamedTuple):
    """The keys of one session, in the order the Lua scripts take them as ``KEYS``."""

    meta: str  # hash: v version, k kind, c created, u updated, t ttl, e expires, n last cp, m:<key>
    log: str  # list: the append-only messages, one JSON document each
    cp: str  # hash: checkpoint number -> [created_at, label, [key, value-json, ...]]
    cpp: str  # hash: checkpoint number -> "count" (pointer) or "count@offset@length" (copied)
    snap: str  # list: messages copied out of the log before a rewrite broke a pointer
    ops: str  # hash: recent op id -> its result, for idempotent retries
    opq: str  # list: those op ids, oldest first, to keep the hash bounded


class IndexKeys(NamedTuple):
    """The listing index of one namespace (all in one slot)."""

    prefix: str  # the scripts build per-user key names from it
    updated: str  # zset: session id by updated_at
    expires: str  # zset: session id by expires_at (sessions with a TTL only)

    def user(self, user_id: str) -> str:
        """Zset of the sessions whose ``user_id`` metadata is ``user_id``, by updated_at."""
        return f"{self.prefix}user:{dumps(user_id)}"


def session_prefix(namespace: str) -> str:
    """The start of every session key of ``namespace`` (the scripts complete it)."""
    return f"{PREFIX}:{{{namespace}:"


def session_keys(namespace: str, session_id: str) -> SessionKeys:
    base = f"{session_prefix(namespace)}{session_id}}}:"
    return SessionKeys(*(base + name for name in SessionKeys._fields))


def index_keys(namespace: str) -> IndexKeys:
    prefix = f"{PREFIX}:{{{namespace}}}:"
    return IndexKeys(prefix, prefix + "idx", prefix + "exp")
