"""`RedisStore`: every BaseStore operation as one atomic call on the session's hash slot.

Writes are Lua scripts (one EVALSHA each); reads are MULTI/EXEC pipelines (one round trip;
read-only scripts on a cluster). On a single server the scripts also update the namespace's
listing index; on a cluster the index sits in another slot, so writes that move a session in
the listing make a second call (see ``docs/stores/redis.md``). What each operation does is
written once, in ``operations``; ``AsyncRedisStore`` (``aio``) runs the same programs.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, ParamSpec, TypeVar

from ailib.spi import (
    BaseStore,
    Change,
    CheckpointRecord,
    CheckpointState,
    Message,
    SessionRecord,
    StoreURL,
    drive,
)
from ailib_store_redis import operations as ops
from ailib_store_redis.connection import Client, ConnectionSettings, connect, translate_errors
from ailib_store_redis.core import RedisStoreCore
from ailib_store_redis.operations import Build
from ailib_store_redis.resend import REDIS_ERRORS, Resending

__all__ = ("RedisStore",)

T = TypeVar("T")
P = ParamSpec("P")


class RedisStore(RedisStoreCore[Client], BaseStore):
    """Sessions in Redis, Redis Cluster or fakeredis; see ``docs/stores/redis.md``."""

    async_twin = "ailib_store_redis.aio:AsyncRedisStore"

    @classmethod
    def _connect(cls, url: StoreURL, settings: ConnectionSettings) -> Client:
        return connect(url, settings)

    def close(self) -> None:
        with translate_errors(self._where):
            self._client.close()

    def _run(self, build: Build[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        return drive(build(self._context, *args, **kwargs), self._send)

    def _send(self, step: ops.Step) -> Any:
        resending: Resending | None = None
        while True:
            try:
                return step.send(self._client, self._scripts)
            except REDIS_ERRORS as exc:
                resending = self._resending(resending, step, exc)
            time.sleep(resending.pause())

    # -- the operations: programs of ``operations`` -----------------------------------------

    def _create(self, record: SessionRecord) -> None:
        self._run(ops.create, record)

    def _fetch(self, session_id: str, last: int | None) -> SessionRecord | None:
        return self._run(ops.fetch, session_id, last)

    def _apply(self, session_id: str, change: Change, now: float) -> int:
        return self._run(ops.apply, session_id, change, now)

    def _replace(self, record: SessionRecord, expected_version: int, now: float) -> int:
        return self._run(ops.replace, record, expected_version, now)

    def _delete(self, session_id: str) -> bool:
        return self._run(ops.delete, session_id)

    def _list(
        self, user_id: str | None, limit: int, after: tuple[float, str] | None, now: float
    ) -> Sequence[SessionRecord]:
        return self._run(ops.list_page, user_id, limit, after, now)

    def _purge(self, now: float) -> int:
        return self._run(ops.purge, now)

    def _checkpoint(self, session_id: str, label: str | None, now: float) -> int:
        return self._run(ops.checkpoint, session_id, label, now)

    def _checkpoints(self, session_id: str, now: float) -> Sequence[CheckpointRecord] | None:
        return self._run(ops.checkpoints, session_id, now)

    def _checkpoint_state(self, session_id: str, number: int, now: float) -> CheckpointState:
        return self._run(ops.checkpoint_state, session_id, number, now)

    def _pop(self, session_id: str, count: int, now: float) -> list[Message]:
        return self._run(ops.pop, session_id, count, now)

    def _restore(self, session_id: str, number: int, now: float) -> int:
        return self._run(ops.restore, session_id, number, now)
