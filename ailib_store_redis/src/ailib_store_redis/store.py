"""`RedisStore`: every BaseStore operation as one atomic call on the session's hash slot.

Writes are Lua scripts (one EVALSHA each); reads are MULTI/EXEC pipelines (one round trip).
On a single server the scripts also update the namespace's listing index; on a cluster the
index sits in another slot, so writes that move a session in the listing make a second call
(see ``docs/stores/redis.md``).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, Self, cast

import redis.cluster
from redis.commands.core import Script

from ailib.base import BaseStore, CheckpointState
from ailib.messages import Message
from ailib.records import Change, CheckpointRecord, SessionRecord
from ailib.url import StoreURL, make_url
from ailib_store_redis import protocol, scripts
from ailib_store_redis.connection import (
    OPTIONS,
    Client,
    ConnectionSettings,
    connect,
    translate_errors,
)
from ailib_store_redis.keys import SessionKeys, index_keys, session_keys
from ailib_store_redis.protocol import num

__all__ = ("RedisStore",)

_LIST_BATCH = 64
_PURGE_BATCH = 500


class _Scripts:
    """The Lua scripts registered on one client (redis-py loads them on first use)."""

    def __init__(self, client: Client) -> None:
        self.create = client.register_script(scripts.CREATE)
        self.apply = client.register_script(scripts.APPLY)
        self.replace = client.register_script(scripts.REPLACE)
        self.checkpoint = client.register_script(scripts.CHECKPOINT)
        self.restore = client.register_script(scripts.RESTORE)
        self.pop = client.register_script(scripts.POP)
        self.delete = client.register_script(scripts.DELETE)
        self.purge_session = client.register_script(scripts.PURGE_SESSION)
        self.checkpoint_state = client.register_script(scripts.CHECKPOINT_STATE)
        self.index_touch = client.register_script(scripts.INDEX_TOUCH)
        self.index_drop = client.register_script(scripts.INDEX_DROP_EXPIRED)


class RedisStore(BaseStore):
    """Sessions in Redis, Redis Cluster or fakeredis; see ``docs/stores/redis.md``."""

    options = OPTIONS

    def __init__(
        self,
        client: Client,
        url: str | StoreURL,
        *,
        namespace: str = "default",
        ttl: float | str | None = None,
    ) -> None:
        super().__init__(namespace=namespace, ttl=ttl)
        self._url = self._where = make_url(url)
        self._client = client
        self._cluster = isinstance(client, redis.cluster.RedisCluster)
        self._index = index_keys(self.namespace)
        # Single server: the scripts update the index themselves (given its prefix).
        self._inline = "" if self._cluster else self._index.prefix
        self._scripts = _Scripts(client)

    @classmethod
    def from_url(cls, url: str | StoreURL, **options: Any) -> Self:
        parsed = make_url(url)
        settings = ConnectionSettings.parse(
            parsed, {k: v for k, v in options.items() if k in OPTIONS}
        )
        common = {k: v for k, v in options.items() if k in cls.common_options}
        return cls(connect(parsed, settings), parsed, **common)

    @property
    def client(self) -> Client:
        """The redis-py client (``redis.Redis`` or ``redis.cluster.RedisCluster``)."""
        return self._client

    def close(self) -> None:
        with translate_errors(self._where):
            self._client.close()

    # -- plumbing ---------------------------------------------------------------------------

    def _keys(self, session_id: str) -> SessionKeys:
        return session_keys(self.namespace, session_id)

    def _call(self, script: Script, session_id: str, args: list[str]) -> Any:
        with translate_errors(self._where):
            return script(keys=self._keys(session_id), args=args)

    def _write(
        self, script: Script, session_id: str, args: list[str], now: float, number: int = 0
    ) -> int:
        """Run a write script and return its result. On a cluster, then move the session in
        the namespace's index (another slot, so another call)."""
        reply = self._call(script, session_id, args)
        result, update = protocol.write_result(reply, session_id, self.url, number)
        if update is not None:
            self._touch_index(session_id, now, update)
        return result

    def _touch_index(self, session_id: str, now: float, update: protocol.IndexUpdate) -> None:
        with translate_errors(self._where):
            self._scripts.index_touch(
                keys=[self._index.updated],
                args=[self._index.prefix, session_id, num(now), update.user, update.expires],
            )

    # -- operations -------------------------------------------------------------------------

    def _create(self, record: SessionRecord) -> None:
        args = protocol.create_args(record, self._inline)
        self._write(self._scripts.create, record.session_id, args, record.updated_at)

    def _fetch(self, session_id: str, last: int | None) -> SessionRecord | None:
        keys = self._keys(session_id)
        with translate_errors(self._where):
            pipe = self._client.pipeline(transaction=True)
            pipe.hgetall(keys.meta)
            if last is None:
                pipe.lrange(keys.log, 0, -1)
            else:
                if last:
                    pipe.lrange(keys.log, -last, -1)
                pipe.llen(keys.log)
            replies = pipe.execute()
        meta, count = replies[0], replies[-1]
        if not meta:
            return None
        raw = replies[1] if last is None or last else []
        return protocol.decode_record(
            session_id, meta, raw, None if last is None else count, self.url
        )

    def _apply(self, session_id: str, change: Change, now: float) -> int:
        args = protocol.apply_args(session_id, change, now, self._inline)
        return self._write(self._scripts.apply, session_id, args, now)

    def _replace(self, record: SessionRecord, expected_version: int, now: float) -> int:
        args = protocol.replace_args(record, expected_version, now, self._inline)
        return self._write(self._scripts.replace, record.session_id, args, now)

    def _delete(self, session_id: str) -> bool:
        args = protocol.read_args(session_id, time.time(), prefix=self._inline)
        existed = self._call(self._scripts.delete, session_id, args)
        if self._cluster:
            with translate_errors(self._where):
                self._scripts.index_drop(
                    keys=[self._index.updated], args=[self._index.prefix, session_id, ""]
                )
        return bool(existed)

    def _list(
        self, user_id: str | None, limit: int, after: tuple[float, str] | None, now: float
    ) -> Sequence[SessionRecord]:
        index = self._index.updated if user_id is None else self._index.user(user_id)
        top = "+inf" if after is None else num(after[0])
        found: list[SessionRecord] = []
        offset = 0
        batch = max(limit, _LIST_BATCH)
        while len(found) < limit:
            with translate_errors(self._where):
                entries = cast(
                    list[tuple[bytes, float]],
                    self._client.zrevrangebyscore(
                        index, top, "-inf", start=offset, num=batch, withscores=True
                    ),
                )
            offset += len(entries)
            ids = [
                member.decode()
                for member, score in entries
                if after is None or (score, member.decode()) < after
            ]
            if ids:
                found += self._summaries(ids, user_id, now)
            if len(entries) < batch:
                break
        return found[:limit]

    def _summaries(self, ids: list[str], user_id: str | None, now: float) -> list[SessionRecord]:
        """The live sessions among ``ids`` (index entries can outlive their session)."""
        with translate_errors(self._where):
            pipe = self._client.pipeline(transaction=False)
            for session_id in ids:
                keys = self._keys(session_id)
                pipe.hgetall(keys.meta)
                pipe.llen(keys.log)
            replies = pipe.execute()
        records = []
        for n, session_id in enumerate(ids):
            meta, count = replies[2 * n], replies[2 * n + 1]
            if not meta:
                continue
            record = protocol.decode_record(session_id, meta, [], count, self.url)
            if record.expired(now):
                continue
            if user_id is not None and record.metadata.get("user_id") != user_id:
                continue
            records.append(record)
        return records

    def _purge(self, now: float) -> int:
        purged = skipped = 0
        while True:
            with translate_errors(self._where):
                due = cast(
                    list[bytes],
                    self._client.zrangebyscore(
                        self._index.expires, "-inf", num(now), start=skipped, num=_PURGE_BATCH
                    ),
                )
            for member in due:
                session_id = member.decode()
                args = protocol.read_args(session_id, now)
                dropped = 0
                if self._call(self._scripts.purge_session, session_id, args):
                    with translate_errors(self._where):
                        dropped = self._scripts.index_drop(
                            keys=[self._index.updated],
                            args=[self._index.prefix, session_id, num(now)],
                        )
                purged += int(dropped)
                skipped += 0 if dropped else 1
            if len(due) < _PURGE_BATCH:
                return purged

    def _checkpoint(self, session_id: str, label: str | None, now: float) -> int:
        args = protocol.checkpoint_args(session_id, label, now, self._inline)
        return self._write(self._scripts.checkpoint, session_id, args, now)

    def _checkpoints(self, session_id: str, now: float) -> Sequence[CheckpointRecord] | None:
        keys = self._keys(session_id)
        with translate_errors(self._where):
            pipe = self._client.pipeline(transaction=True)
            pipe.hmget(keys.meta, ["v", "e"])
            pipe.hgetall(keys.cp)
            pipe.hgetall(keys.cpp)
            (version, expires), infos, pointers = pipe.execute()
        if version is None or (expires is not None and float(expires) <= now):
            return None
        found = [
            protocol.decode_checkpoint(
                session_id, int(number), info, _count(pointers, number), self.url
            )
            for number, info in infos.items()
        ]
        return sorted(found, key=lambda cp: cp.number)

    def _checkpoint_state(self, session_id: str, number: int, now: float) -> CheckpointState:
        args = protocol.read_args(session_id, now, str(number))
        reply = self._call(self._scripts.checkpoint_state, session_id, args)
        if reply[0] != b"ok":
            raise protocol.refusal(reply, session_id, self.url, number)
        messages = protocol.decode_messages(
            reply[2:], f"checkpoint {number} of session {session_id!r} in {self.url}"
        )
        checkpoint = protocol.decode_checkpoint(
            session_id, number, reply[1], len(messages), self.url
        )
        return messages, checkpoint.metadata

    def _pop(self, session_id: str, count: int, now: float) -> list[Message]:
        args = protocol.pop_args(session_id, count, now, self._inline)
        reply = self._call(self._scripts.pop, session_id, args)
        removed, update = protocol.pop_result(reply, session_id, self.url)
        if self._cluster and removed:
            self._touch_index(session_id, now, update)
        return removed

    def _restore(self, session_id: str, number: int, now: float) -> int:
        args = protocol.restore_args(session_id, number, now, self._inline)
        return self._write(self._scripts.restore, session_id, args, now, number)


def _count(pointers: dict[bytes, bytes], number: bytes) -> int:
    """The message count of a stored pointer, ``count`` or ``count@offset@length``."""
    return int(pointers.get(number, b"0").split(b"@", 1)[0])
