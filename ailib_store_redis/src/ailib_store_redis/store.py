"""`RedisStore`: every BaseStore operation as one atomic call on the session's hash slot.

Writes are Lua scripts (one EVALSHA each); reads are MULTI/EXEC pipelines (one round trip).
On a single server the scripts also update the namespace's listing index; on a cluster the
index sits in another slot, so writes that move a session in the listing make a second call
(see ``docs/stores/redis.md``).
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from typing import Any, Self, cast

import redis.cluster
from redis.commands.core import Script

from ailib.base import BaseStore, CheckpointState
from ailib.codec import dumps, loads
from ailib.errors import (
    CheckpointNotFound,
    ConflictError,
    CorruptSessionError,
    SessionNotFound,
)
from ailib.messages import Message
from ailib.records import Change, CheckpointRecord, SessionRecord
from ailib.url import StoreURL, make_url
from ailib_store_redis import scripts
from ailib_store_redis.connection import (
    OPTIONS,
    Client,
    ConnectionSettings,
    connect,
    translate_errors,
)
from ailib_store_redis.keys import SessionKeys, index_keys, session_keys

__all__ = ("RedisStore",)

_LIST_BATCH = 64
_PURGE_BATCH = 500


def _op_id() -> str:
    return os.urandom(12).hex()


def _num(value: float) -> str:
    """A time or duration as exact decimal text (Lua would keep only 14 digits)."""
    return repr(float(value))


def _ttl_text(ttl: float | None) -> str:
    return "" if ttl is None else _num(ttl)


def _pairs(values: dict[str, Any]) -> list[str]:
    out = [str(2 * len(values))]
    for key, value in values.items():
        out += (key, dumps(value))
    return out


def _decode_messages(raw: Sequence[bytes], session_id: str) -> list[Message]:
    messages = loads(b"[" + b",".join(raw) + b"]", f"messages of session {session_id!r}")
    if not isinstance(messages, list):
        raise CorruptSessionError(f"messages of session {session_id!r} are not a list")
    return messages


def _decode_pairs(flat: Any, what: str) -> dict[str, Any]:
    if not isinstance(flat, list) or len(flat) % 2:
        raise CorruptSessionError(f"{what} is malformed")
    return {str(flat[i]): loads(flat[i + 1], what) for i in range(0, len(flat), 2)}


class _Scripts:
    """The Lua scripts registered on one client (redis-py loads them on first use)."""

    def __init__(self, client: Client) -> None:
        self.create = client.register_script(scripts.CREATE)
        self.apply = client.register_script(scripts.APPLY)
        self.replace = client.register_script(scripts.REPLACE)
        self.checkpoint = client.register_script(scripts.CHECKPOINT)
        self.restore = client.register_script(scripts.RESTORE)
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
        self._url = make_url(url)
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

    @property
    def _where(self) -> StoreURL:
        assert self._url is not None
        return self._url

    def _keys(self, session_id: str) -> SessionKeys:
        return session_keys(self.namespace, session_id)

    def _call(self, script: Script, session_id: str, args: list[str]) -> Any:
        with translate_errors(self._where):
            return script(keys=self._keys(session_id), args=args)

    def _write(
        self, script: Script, session_id: str, args: list[str], now: float, number: int = 0
    ) -> int:
        """Run a write script; return its result, raising for a refusal. On a cluster, then
        move the session in the namespace's index (another slot, so another call)."""
        reply = self._call(script, session_id, args)
        if isinstance(reply, int):
            return reply
        self._refused(session_id, reply, number)
        if len(reply) > 2:
            user, expires = reply[2], reply[3]
            with translate_errors(self._where):
                self._scripts.index_touch(
                    keys=[self._index.updated],
                    args=[self._index.prefix, session_id, _num(now), user, expires],
                )
        return int(reply[1])

    def _refused(self, session_id: str, reply: list[Any], number: int = 0) -> None:
        """Raise the error a refusal reply stands for (``number``: the checkpoint asked for)."""
        status = reply[0]
        if status == b"nocp":
            raise CheckpointNotFound(session_id, number)
        if status == b"missing":
            raise SessionNotFound(session_id, self.url)
        if status == b"conflict":
            stored = f" is at version {reply[1]}" if len(reply) > 1 else " already exists"
            raise ConflictError(
                f"session {session_id!r} in {self.url}{stored}: someone else changed or "
                "created it; reload it (or use another id) and try again"
            )
        if status != b"ok":
            raise CorruptSessionError(f"unexpected reply {status!r} from {self.url}")

    def _record(
        self, session_id: str, meta: dict[bytes, bytes], raw: Sequence[bytes], count: int | None
    ) -> SessionRecord:
        try:
            return SessionRecord(
                session_id=session_id,
                kind=meta[b"k"].decode(),
                messages=_decode_messages(raw, session_id) if raw else [],
                metadata={
                    k[2:].decode(): loads(v, f"metadata {k[2:]!r} of session {session_id!r}")
                    for k, v in meta.items()
                    if k.startswith(b"m:")
                },
                version=int(meta[b"v"]),
                created_at=float(meta[b"c"]),
                updated_at=float(meta[b"u"]),
                ttl=float(meta[b"t"]) if b"t" in meta else None,
                expires_at=float(meta[b"e"]) if b"e" in meta else None,
                message_count=count,
            )
        except (KeyError, ValueError, UnicodeDecodeError) as exc:
            raise CorruptSessionError(
                f"session {session_id!r} in {self.url} is malformed: {exc!r}"
            ) from exc

    # -- operations -------------------------------------------------------------------------

    def _create(self, record: SessionRecord) -> None:
        checkpoints: list[str] = []
        snapshot: list[str] = []
        for cp in record.checkpoints:
            pointer = str(cp.message_count)
            if cp.messages is not None:
                pointer += f"@{len(snapshot)}@{len(cp.messages)}"
                snapshot += (dumps(m) for m in cp.messages)
            flat = [part for k, v in cp.metadata.items() for part in (k, dumps(v))]
            info = f"[{_num(cp.created_at)},{dumps(cp.label)},{dumps(flat)}]"
            checkpoints += (str(cp.number), pointer, info)
        args = [
            self._inline,
            _op_id(),
            _num(record.updated_at),
            record.session_id,
            record.kind,
            _num(record.created_at),
            _ttl_text(record.ttl),
            str(max((cp.number for cp in record.checkpoints), default=0)),
            *_pairs(record.metadata),
            str(len(record.checkpoints)),
            *checkpoints,
            str(len(snapshot)),
            *snapshot,
            *(dumps(m) for m in record.messages),
        ]
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
        return self._record(session_id, meta, raw, None if last is None else count)

    def _apply(self, session_id: str, change: Change, now: float) -> int:
        args = [
            self._inline,
            _op_id(),
            _num(now),
            session_id,
            "" if change.expected_version is None else str(change.expected_version),
            "1" if change.replace_metadata else "0",
            _ttl_text(change.ttl),
            *_pairs(dict(change.set_metadata)),
            str(len(change.unset_metadata)),
            *change.unset_metadata,
            *(dumps(m) for m in change.append),
        ]
        return self._write(self._scripts.apply, session_id, args, now)

    def _replace(self, record: SessionRecord, expected_version: int, now: float) -> int:
        args = [
            self._inline,
            _op_id(),
            _num(now),
            record.session_id,
            str(expected_version),
            _ttl_text(record.ttl),
            *_pairs(record.metadata),
            *(dumps(m) for m in record.messages),
        ]
        return self._write(self._scripts.replace, record.session_id, args, now)

    def _delete(self, session_id: str) -> bool:
        args = [self._inline, "", _num(time.time()), session_id]
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
        top = "+inf" if after is None else _num(after[0])
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
            record = self._record(session_id, meta, [], count)
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
                        self._index.expires, "-inf", _num(now), start=skipped, num=_PURGE_BATCH
                    ),
                )
            for member in due:
                session_id = member.decode()
                gone = self._call(
                    self._scripts.purge_session, session_id, ["", "", _num(now), session_id]
                )
                dropped = 0
                if gone:
                    with translate_errors(self._where):
                        dropped = self._scripts.index_drop(
                            keys=[self._index.updated],
                            args=[self._index.prefix, session_id, _num(now)],
                        )
                purged += int(dropped)
                skipped += 0 if dropped else 1
            if len(due) < _PURGE_BATCH:
                return purged

    def _checkpoint(self, session_id: str, label: str | None, now: float) -> int:
        args = [self._inline, _op_id(), _num(now), session_id, dumps(label)]
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
        found = []
        for number, info in infos.items():
            pointer = pointers.get(number, b"0").split(b"@")
            found.append(self._checkpoint_record(session_id, int(number), info, int(pointer[0])))
        return sorted(found, key=lambda cp: cp.number)

    def _checkpoint_record(
        self, session_id: str, number: int, info: bytes, count: int
    ) -> CheckpointRecord:
        what = f"checkpoint {number} of session {session_id!r}"
        decoded = loads(info, what)
        try:
            created_at, label, flat = decoded
            return CheckpointRecord(
                number, float(created_at), count, _decode_pairs(flat, what), label
            )
        except (TypeError, ValueError) as exc:
            raise CorruptSessionError(f"{what} in {self.url} is malformed") from exc

    def _checkpoint_state(self, session_id: str, number: int, now: float) -> CheckpointState:
        args = ["", "", _num(now), session_id, str(int(number))]
        reply = self._call(self._scripts.checkpoint_state, session_id, args)
        self._refused(session_id, reply, number)
        messages = _decode_messages(reply[2:], session_id) if len(reply) > 2 else []
        record = self._checkpoint_record(session_id, number, reply[1], len(messages))
        return messages, record.metadata

    def _restore(self, session_id: str, number: int, now: float) -> int:
        args = [
            self._inline,
            _op_id(),
            _num(now),
            session_id,
            str(int(number)),
            dumps(f"before restore to {number}"),
        ]
        return self._write(self._scripts.restore, session_id, args, now, number)
