"""Sessions written by the earlier key layout (no stored message count, op ids with bare
results and a list ``opq`` of them) still load, list, append, pop and honour their op ids."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

import ailib
from ailib_store_redis import RedisStore
from ailib_store_redis.keys import index_keys, session_keys
from ailib_store_redis.scripts import OPS_KEPT, TRIM_EVERY


@pytest.fixture
def store(private_redis: tuple[str, Path]) -> Iterator[RedisStore]:
    url, _ = private_redis
    opened = ailib.open_store(url, namespace=f"old-{uuid.uuid4().hex[:8]}")
    assert isinstance(opened, RedisStore)
    yield opened
    for summary in opened.list(limit=1000):
        opened.delete(summary.session_id)
    opened.close()


def write_old_session(client: redis.Redis, namespace: str, session_id: str, ttl: float) -> None:
    """What the earlier scripts stored for a session of three messages at version 4 (create,
    an append of two, an append of one, a checkpoint), with raw commands."""
    keys = session_keys(namespace, session_id)
    index = index_keys(namespace)
    now = time.time()
    messages = [{"role": "user", "content": f"old {n}"} for n in range(3)]
    pipe = client.pipeline(transaction=True)
    pipe.hset(
        keys.meta,
        mapping={
            "v": 4,
            "k": "chat",
            "c": repr(now - 60),
            "u": repr(now),
            "t": repr(ttl),
            "e": repr(now + ttl),
            "n": 1,
            "m:user_id": json.dumps("old-owner"),
            "m:topic": json.dumps("layout"),
        },
    )
    pipe.rpush(keys.log, *(json.dumps(m, separators=(",", ":")) for m in messages))
    pipe.hset(keys.cpp, "1", "3")
    pipe.hset(keys.cp, "1", f'[{now!r},null,["user_id","\\"old-owner\\""]]')
    # Op ids with their bare results: versions for appends, the number for a checkpoint.
    pipe.hset(keys.ops, mapping={"create-op": "1", "op-a": "2", "op-b": "3", "cp-op": "1"})
    pipe.rpush(keys.opq, "create-op", "op-a", "op-b", "cp-op")
    for key in keys:
        pipe.pexpire(key, int(ttl * 1000))
    pipe.zadd(index.updated, {session_id: now})
    pipe.zadd(index.user("old-owner"), {session_id: now})
    pipe.zadd(index.expires, {session_id: now + ttl})
    pipe.hset(f"{index.prefix}own", session_id, json.dumps("old-owner"))
    pipe.execute()


def test_old_sessions_load_list_and_take_writes(store: RedisStore) -> None:
    client = store.client
    assert isinstance(client, redis.Redis)
    session_id = uuid.uuid4().hex
    write_old_session(client, store.namespace, session_id, ttl=3600)
    keys = session_keys(store.namespace, session_id)

    loaded = store.load(session_id)
    assert [m["content"] for m in loaded.messages] == ["old 0", "old 1", "old 2"]
    assert loaded.version == 4
    assert loaded.get_all_metadata() == {"user_id": "old-owner", "topic": "layout"}
    assert [m["content"] for m in store.load(session_id, last=2).messages] == ["old 1", "old 2"]
    assert [s.session_id for s in store.list(user_id="old-owner")] == [session_id]
    assert store.list().items[0].message_count == 3

    # An op id the old layout recorded is not applied again: its first result comes back.
    again = {"role": "user", "content": "old 2"}
    assert store.append(session_id, again, idempotency_key="op-b") == 3
    version = store.append(session_id, {"role": "user", "content": "new 3"})
    assert version == 5
    assert client.hget(keys.meta, "l") == b"4", "the count is kept from the first new write"
    old_op = {"role": "user", "content": "old 1"}
    assert store.append(session_id, old_op, idempotency_key="op-a") == 2
    assert len(store.load(session_id).messages) == 4

    assert store.pop(session_id) == [{"role": "user", "content": "new 3"}]
    assert store.checkpoints(session_id)[0].message_count == 3
    # Past a trim of the op ids: the old list goes, the hash stays bounded.
    for n in range(TRIM_EVERY + 8):
        store.append(session_id, {"role": "user", "content": f"more {n}"})
    assert not client.exists(keys.opq)
    assert client.hlen(keys.ops) <= OPS_KEPT + TRIM_EVERY
    assert len(store.load(session_id).messages) == 3 + TRIM_EVERY + 8
    assert 0 < client.pttl(keys.meta) <= 3_600_000
    assert 0 < client.pttl(keys.cp) <= 3_600_000


def test_op_ids_of_checkpoints_and_pops_keep_their_version(store: RedisStore) -> None:
    """An op id's record holds the version its write made (to forget old ones by version)
    and, when the result is not that version, the result a resent call gets back."""
    session = store.create()
    store.append(session.session_id, *({"role": "user", "content": str(n)} for n in range(4)))
    client = store.client
    keys = session_keys(store.namespace, session.session_id)
    number = store.checkpoint(session.session_id)
    popped = store.pop(session.session_id, 2)
    records: list[bytes] = client.hvals(keys.ops)  # type: ignore[assignment]
    assert f"3:{number}".encode() in records, "checkpoint: version 3, its number"
    assert any(r.startswith(b"4:[") for r in records), "pop: version 4, the messages"
    loaded = store.load(session.session_id)
    assert [m["content"] for m in loaded.messages] == ["0", "1"]
    assert popped == [{"role": "user", "content": "2"}, {"role": "user", "content": "3"}]
