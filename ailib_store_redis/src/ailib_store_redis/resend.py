"""Learning the outcome of a write whose reply was lost.

Every write script carries an op id and remembers its result, so sending the very same call
again is safe: it applies the write if the first call never landed, and otherwise returns
what the first call produced. When the connection drops or times out after a write was sent,
the stores keep resending it, with redis-py's exponential backoff, until the server answers
or ``resend_for`` seconds have passed; only then do they give up, saying the outcome is
unknown. Sync and async stores share this bookkeeping; each waits its own way.
"""

from __future__ import annotations

import time
from typing import Final

import redis
from redis.backoff import ExponentialBackoff

from ailib.errors import StoreUnavailable
from ailib.spi import StoreURL
from ailib_store_redis.connection import lost_reply, outcome_unknown, unavailable

__all__ = ("REDIS_ERRORS", "Resending")

#: What redis-py raises; the stores translate each into an ailib error.
REDIS_ERRORS: Final = (redis.exceptions.RedisError, redis.exceptions.RedisClusterException)


class Resending:
    """The resends of one write: how long to pause before the next, and when to stop."""

    def __init__(self, limit: float) -> None:
        self._limit = limit
        self._start = time.monotonic()
        self._failures = 0
        self._backoff = ExponentialBackoff(cap=1.0, base=0.05)

    @classmethod
    def after(
        cls,
        current: Resending | None,
        exc: BaseException,
        resendable: bool,
        limit: float,
        url: StoreURL,
    ) -> Resending:
        """The resending to go on with after ``exc``, or the error to raise: ``exc``
        translated when the call cannot be resent or nothing was lost, the outcome unknown
        when ``limit`` seconds have passed."""
        if not (resendable and lost_reply(exc)):
            raise unavailable(url, exc) from None
        resending = current or cls(limit)
        resending._failures += 1
        if resending.waited() >= limit:
            raise resending.unknown(url, exc)
        return resending

    def waited(self) -> float:
        return time.monotonic() - self._start

    def pause(self) -> float:
        """Seconds to wait before the next resend (never past the limit)."""
        left = self._limit - self.waited()
        return max(0.0, min(self._backoff.compute(self._failures), left))

    def unknown(self, url: StoreURL, exc: BaseException) -> StoreUnavailable:
        return outcome_unknown(url, exc, self.waited())
