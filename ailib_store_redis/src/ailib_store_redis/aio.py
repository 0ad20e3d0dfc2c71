"""`AsyncRedisStore`: the native asyncio twin of :class:`ailib_store_redis.store.RedisStore`.

Same URLs, options, keys, Lua scripts, replies and errors: it runs the very programs of
``operations`` that the sync store runs, sending each step with ``redis.asyncio`` (or
``redis.asyncio.cluster.RedisCluster``, or ``fakeredis.FakeAsyncRedis``) instead of blocking.
``ailib.open_async_store`` returns it for every scheme the sync store serves.

Building the store does no I/O (``open_async_store`` may be called on a running loop): an
unreachable server, cluster seeds included, raises ``StoreUnavailable`` on the first
operation. Connections belong to the event loop that first used them; use the store on one
loop and ``await store.aclose()`` on it.
"""

from __future__ import annotations

import asyncio
from typing import Any

from ailib.spi import AsyncProgramStore, StoreURL
from ailib_store_redis import operations as ops
from ailib_store_redis.connection import (
    AsyncClient,
    ConnectionSettings,
    connect_async,
    translate_errors,
)
from ailib_store_redis.core import RedisStoreCore
from ailib_store_redis.evalsha import AsyncScripts
from ailib_store_redis.resend import REDIS_ERRORS, Resending

__all__ = ("AsyncRedisStore",)


class AsyncRedisStore(RedisStoreCore[AsyncClient], AsyncProgramStore[ops.Context, ops.Step]):
    """``RedisStore``'s behaviour, awaited; see ``docs/stores/redis.md``."""

    _programs = ops

    _scripts_on = staticmethod(AsyncScripts)

    @classmethod
    def _connect(cls, url: StoreURL, settings: ConnectionSettings) -> AsyncClient:
        return connect_async(url, settings)

    async def aclose(self) -> None:
        with translate_errors(self._where):
            await self._client.aclose()

    async def _perform(self, step: ops.Step) -> Any:
        resending: Resending | None = None
        while True:
            try:
                return await self._send_once(step)
            except REDIS_ERRORS as exc:
                resending = self._resending(resending, step, exc)
            await asyncio.sleep(resending.pause())

    async def _send_once(self, step: ops.Step) -> Any:
        if self._context.cluster:
            # redis-py's asyncio cluster client reads the slot map lazily inside its
            # first commands; when several tasks send their first commands together,
            # that setup can disconnect connections another task is handshaking on
            # ("Connection closed by server", "'NoneType' object has no attribute
            # 'writelines'"). Setting it up here first avoids that: redis-py runs
            # initialize() under its own lock, redoes it after a failure, and returns
            # at once when it is done.
            await self._client.initialize()
        return await step.send(self._client, self._scripts)
