"""Object keys: where each piece of a session lives in the bucket.

Pure functions of the store's prefix and namespace, shared by the sync store and any async
twin. Everything of one session lives under ``{root}s/{id}/``; listing indexes live under
``{root}idx/`` (every session) and ``{root}u/{user}/`` (sessions of one user), as empty
marker objects whose keys encode an inverted update time, so that S3's ascending key order
is newest-first.

    {root}s/{id}/manifest                      the session (header line + tail line)
    {root}s/{id}/g/{gen}/c/{start}-{token}     a sealed chunk of the message log
    {root}s/{id}/g/{gen}/cp/{number}-{token}   a checkpoint
    {root}idx/{inverted updated}/{id}/{expires}
    {root}u/{user}/{inverted updated}/{id}/{expires}

``gen`` changes when a session is created (again), so the objects of a deleted or expired
predecessor can be removed by prefix without touching the new one's.

Marker times are rounded down to ``resolution`` seconds (1 s by default): a session's marker
changes only when its update time enters a new interval, so a burst of appends rewrites the
manifest alone. Listing therefore reads every marker of an interval and orders them by the
exact times in the manifests. The expiry in a marker key is the interval start plus the TTL:
never later than the real expiry, so purge can pick candidates from keys alone.
"""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass

__all__ = ("Layout", "Marker", "micros", "new_token")

_TIME_DIGITS = 16
_TIME_MAX = 10**_TIME_DIGITS - 1


def micros(timestamp: float) -> int:
    """A POSIX timestamp as whole microseconds: the resolution of index keys."""
    return round(timestamp * 1_000_000)


def new_token() -> str:
    """A short random token that makes an object key unique to one writer's attempt."""
    return secrets.token_hex(6)


def _user_segment(user_id: str) -> str:
    return base64.urlsafe_b64encode(user_id.encode()).decode().rstrip("=") or "_"


@dataclass(frozen=True)
class Marker:
    """A parsed index marker key."""

    key: str
    session_id: str
    #: The start of the interval holding the session's update time, in microseconds.
    updated_us: int
    expires_us: int | None


@dataclass(frozen=True)
class Layout:
    """The keys of one store: ``prefix`` (from the URL path) and ``namespace``."""

    prefix: str
    namespace: str
    resolution: float = 1.0

    @property
    def root(self) -> str:
        prefix = self.prefix.strip("/")
        return f"{prefix}/{self.namespace}/" if prefix else f"{self.namespace}/"

    def session_prefix(self, session_id: str) -> str:
        return f"{self.root}s/{session_id}/"

    def manifest(self, session_id: str) -> str:
        return f"{self.session_prefix(session_id)}manifest"

    def generation_prefix(self, session_id: str, gen: str) -> str:
        return f"{self.session_prefix(session_id)}g/{gen}/"

    def chunk(self, session_id: str, gen: str, start: int) -> str:
        return f"{self.generation_prefix(session_id, gen)}c/{start:012d}-{new_token()}"

    def checkpoint(self, session_id: str, gen: str, number: int) -> str:
        return f"{self.generation_prefix(session_id, gen)}cp/{number:010d}-{new_token()}"

    # -- listing indexes ------------------------------------------------------------------

    @property
    def index_prefix(self) -> str:
        return f"{self.root}idx/"

    @property
    def users_prefix(self) -> str:
        return f"{self.root}u/"

    def user_prefix(self, user_id: str) -> str:
        return f"{self.users_prefix}{_user_segment(user_id)}/"

    def interval(self, timestamp: float) -> int:
        """The start of the index interval holding ``timestamp``, in microseconds."""
        step = max(1, micros(self.resolution))
        return micros(timestamp) // step * step

    def _inverted(self, timestamp: float) -> str:
        return f"{_TIME_MAX - self.interval(timestamp):0{_TIME_DIGITS}d}"

    def markers(
        self, session_id: str, user_id: object, updated_at: float, ttl: float | None
    ) -> list[str]:
        """The index keys of a session in the state described by the arguments."""
        tail = f"{self._inverted(updated_at)}/{session_id}/"
        tail += "-" if ttl is None else str(self.interval(updated_at) + micros(ttl))
        keys = [self.index_prefix + tail]
        if isinstance(user_id, str):
            keys.append(self.user_prefix(user_id) + tail)
        return keys

    def start_after(self, base: str, updated_at: float) -> str:
        """A ListObjectsV2 ``StartAfter`` so the listing begins at the interval holding
        ``updated_at`` (all of it, for the caller to filter by exact time and id)."""
        return base + self._inverted(updated_at)

    @staticmethod
    def parse_marker(base: str, key: str) -> Marker | None:
        """The marker under ``base`` named by ``key``; None for a key that is not one."""
        parts = key[len(base) :].split("/")
        if not key.startswith(base) or len(parts) != 3 or not parts[0].isdigit():
            return None
        inverted, session_id, expires = parts
        expires_us = None if expires == "-" else int(expires) if expires.isdigit() else -1
        if expires_us == -1:
            return None
        return Marker(key, session_id, _TIME_MAX - int(inverted), expires_us)
