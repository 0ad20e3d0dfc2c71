"""`RedisStore`: every BaseStore operation as one atomic call on the session's hash slot.

Writes are Lua scripts (one EVALSHA each); reads are MULTI/EXEC pipelines (one round trip;
read-only scripts on a cluster). On a single server the scripts also update the namespace's
listing index; on a cluster the index sits in another slot, so writes that move a session in
the listing make a second call (see ``docs/stores/redis.md``). What each operation does is
written once, in ``operations``; ``AsyncRedisStore`` (``aio``) runs the same programs.
"""

from __future__ import annotations

import time
from typing import Any

from ailib.spi import ProgramStore, StoreURL
from ailib_store_redis import operations as ops
from ailib_store_redis.connection import Client, ConnectionSettings, connect, translate_errors
from ailib_store_redis.core import RedisStoreCore
from ailib_store_redis.evalsha import Scripts
from ailib_store_redis.resend import REDIS_ERRORS, Resending

__all__ = ("RedisStore",)


class RedisStore(RedisStoreCore[Client], ProgramStore[ops.Context, ops.Step]):
    """Sessions in Redis, Redis Cluster or fakeredis; see ``docs/stores/redis.md``."""

    async_twin = "ailib_store_redis.aio:AsyncRedisStore"
    _programs = ops

    _scripts_on = staticmethod(Scripts)

    @classmethod
    def _connect(cls, url: StoreURL, settings: ConnectionSettings) -> Client:
        return connect(url, settings)

    def close(self) -> None:
        with translate_errors(self._where):
            self._client.close()

    def _perform(self, step: ops.Step) -> Any:
        resending: Resending | None = None
        while True:
            try:
                return step.send(self._client, self._scripts)
            except REDIS_ERRORS as exc:
                resending = self._resending(resending, step, exc)
            time.sleep(resending.pause())
