"""Damaging a stored session behind the store's back, with a raw redis-py client, as the
conformance suite's corruption cases ask (``StoreConformance.corrupt_session``)."""

from __future__ import annotations

from typing import Any

from ailib.testing import Damage
from ailib.testing.blocking import BlockingStore
from ailib_store_redis.connection import ConnectionSettings, connect
from ailib_store_redis.core import RedisStoreCore
from ailib_store_redis.keys import session_keys

#: What a damaged message or field is replaced with: not JSON, not even UTF-8.
GARBAGE = b"\xff\x00{not json"


def corrupt(store: object, session_id: str, damage: Damage) -> None:
    """Damage ``session_id`` as ``damage`` says, in the store's server (sync or async store,
    or the blocking wrapper the async suite drives)."""
    if isinstance(store, BlockingStore):
        store = store.store
    assert isinstance(store, RedisStoreCore)
    url = store._url
    assert url is not None
    client: Any = connect(url, ConnectionSettings.parse(url, {}))
    keys = session_keys(store.namespace, session_id)
    try:
        if damage is Damage.METADATA:
            client.hset(keys.meta, mapping={"m:user_id": GARBAGE, "m:topic": GARBAGE})
        elif damage is Damage.MESSAGE:
            client.lset(keys.log, 1, GARBAGE)
        elif damage is Damage.MISSING_MESSAGE:
            marker = b"\x00removed behind the store's back"
            client.lset(keys.log, 1, marker)
            assert client.lrem(keys.log, 1, marker) == 1
        elif damage is Damage.COUNT:
            assert client.hincrby(keys.meta, "l", 3) > 3
        else:
            raise AssertionError(f"unknown damage {damage!r}")
    finally:
        client.close()


class RedisCorruption:
    """``corrupt_session`` for the Redis conformance classes."""

    def corrupt_session(self, store: Any, session_id: str, damage: Damage) -> None:
        corrupt(store, session_id, damage)
