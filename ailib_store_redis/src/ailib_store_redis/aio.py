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
from collections.abc import Sequence
from typing import Any, ParamSpec, TypeVar

from ailib.spi import (
    AsyncBaseStore,
    Change,
    CheckpointRecord,
    CheckpointState,
    Message,
    SessionRecord,
    StoreURL,
    drive_async,
)
from ailib_store_redis import operations as ops
from ailib_store_redis.connection import (
    AsyncClient,
    ConnectionSettings,
    connect_async,
    translate_errors,
)
from ailib_store_redis.core import RedisStoreCore
from ailib_store_redis.operations import Build
from ailib_store_redis.resend import REDIS_ERRORS, Resending

__all__ = ("AsyncRedisStore",)

T = TypeVar("T")
P = ParamSpec("P")


class AsyncRedisStore(RedisStoreCore[AsyncClient], AsyncBaseStore):
    """``RedisStore``'s behaviour, awaited; see ``docs/stores/redis.md``."""

    @classmethod
    def _connect(cls, url: StoreURL, settings: ConnectionSettings) -> AsyncClient:
        return connect_async(url, settings)

    async def aclose(self) -> None:
        with translate_errors(self._where):
            await self._client.aclose()

    async def _run(self, build: Build[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        return await drive_async(build(self._context, *args, **kwargs), self._send)

    async def _send(self, step: ops.Step) -> Any:
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

    # -- the operations: the sync store's programs, awaited ---------------------------------

    async def _create(self, record: SessionRecord) -> None:
        await self._run(ops.create, record)

    async def _fetch(self, session_id: str, last: int | None) -> SessionRecord | None:
        return await self._run(ops.fetch, session_id, last)

    async def _apply(self, session_id: str, change: Change, now: float) -> int:
        return await self._run(ops.apply, session_id, change, now)

    async def _replace(self, record: SessionRecord, expected_version: int, now: float) -> int:
        return await self._run(ops.replace, record, expected_version, now)

    async def _delete(self, session_id: str) -> bool:
        return await self._run(ops.delete, session_id)

    async def _list(
        self, user_id: str | None, limit: int, after: tuple[float, str] | None, now: float
    ) -> Sequence[SessionRecord]:
        return await self._run(ops.list_page, user_id, limit, after, now)

    async def _purge(self, now: float) -> int:
        return await self._run(ops.purge, now)

    async def _checkpoint(self, session_id: str, label: str | None, now: float) -> int:
        return await self._run(ops.checkpoint, session_id, label, now)

    async def _checkpoints(self, session_id: str, now: float) -> Sequence[CheckpointRecord] | None:
        return await self._run(ops.checkpoints, session_id, now)

    async def _checkpoint_state(self, session_id: str, number: int, now: float) -> CheckpointState:
        return await self._run(ops.checkpoint_state, session_id, number, now)

    async def _pop(self, session_id: str, count: int, now: float) -> list[Message]:
        return await self._run(ops.pop, session_id, count, now)

    async def _restore(self, session_id: str, number: int, now: float) -> int:
        return await self._run(ops.restore, session_id, number, now)
