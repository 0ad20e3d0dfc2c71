"""What the conformance suite does not cover: errors, secrets, retries, round trips, layout."""

from __future__ import annotations

import importlib.util
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import redis.cluster
from redis.connection import Connection
from redis.crc import key_slot

import ailib
from ailib.errors import ConfigurationError, CorruptSessionError, StoreUnavailable
from ailib_store_redis import RedisStore
from ailib_store_redis.keys import index_keys, session_keys
from ailib_store_redis.scripts import OPS_KEPT, TRIM_EVERY


@pytest.fixture
def private(private_redis: tuple[str, Path]) -> Iterator[RedisStore]:
    """A store on this run's private server, in a namespace of its own, emptied afterwards."""
    url, _ = private_redis
    store = ailib.open_store(url, namespace=f"t-{uuid.uuid4().hex[:10]}")
    assert isinstance(store, RedisStore)
    yield store
    for summary in store.list(limit=1000):
        store.delete(summary.session_id)
    store.purge_expired()
    store.close()


def _namespace_keys(store: RedisStore) -> list[bytes]:
    client = store.client
    assert isinstance(client, redis.Redis)
    return sorted(
        k
        for pattern in (f"ailib:{{{store.namespace}:*", f"ailib:{{{store.namespace}}}*")
        for k in client.scan_iter(pattern)
    )


class Wire:
    """Counts what redis-py sends (blocking or asyncio ``connection`` class): one packed
    write is one round trip."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, connection: type[Any] = Connection) -> None:
        self.sends: list[bytes] = []
        original: Callable[..., Any] = connection.send_packed_command

        def send(conn: Any, command: Any, check_health: bool = True) -> Any:
            chunks = [command] if isinstance(command, bytes | str) else list(command)
            self.sends.append(b"".join(c if isinstance(c, bytes) else c.encode() for c in chunks))
            return original(conn, command, check_health)  # (an awaitable, on asyncio)

        monkeypatch.setattr(connection, "send_packed_command", send)

    def reset(self) -> None:
        self.sends.clear()


# -- unreachable servers and secrets -----------------------------------------------------------


def test_unreachable_server_names_host_and_port() -> None:
    store = ailib.open_store("redis://127.0.0.1:1/0")
    with pytest.raises(StoreUnavailable) as caught:
        store.load("x")
    assert "127.0.0.1:1" in str(caught.value)
    store.close()


def test_password_never_shown() -> None:
    store = ailib.open_store("redis://alice:s3cr3t-pw@127.0.0.1:1/0?retries=0")
    assert "s3cr3t-pw" not in repr(store)
    assert "***" in repr(store)
    with pytest.raises(StoreUnavailable) as caught:
        store.append("x", {"role": "user", "content": "hi"})
    assert "s3cr3t-pw" not in str(caught.value)
    assert "alice:***@127.0.0.1:1" in str(caught.value)


def test_wrong_password_is_unavailable_without_the_password(shared_redis: str) -> None:
    url = shared_redis.replace("redis://", "redis://nobody:wr0ng-pw@")
    store = ailib.open_store(url, retries=0)
    with pytest.raises(StoreUnavailable) as caught:
        store.exists("x")
    assert "wr0ng-pw" not in str(caught.value)
    assert "127.0.0.1:6379" in str(caught.value)


def test_unreachable_cluster_names_its_seeds() -> None:
    with pytest.raises(StoreUnavailable) as caught:
        ailib.open_store("redis+cluster://127.0.0.1:1,127.0.0.1:2?retries=0")
    assert "127.0.0.1:1,127.0.0.1:2" in str(caught.value)


# -- URLs and options ---------------------------------------------------------------------------


#: URLs both stores refuse, and what the error says.
BAD_URLS = [
    ("redis+cluster://127.0.0.1:7000/3", "only database 0"),
    ("redis://127.0.0.1:6379/x", "invalid db 'x'"),
    ("redis://127.0.0.1:6379/0?db=2", "gives the database twice"),
    ("redis://127.0.0.1:6379/0?socket_timeout=soon", "invalid socket_timeout"),
    ("redis://127.0.0.1:6379/0?max_connections=0", "invalid max_connections"),
    ("redis://127.0.0.1:6379/0?retries=-1", "invalid retries"),
    ("rediss://127.0.0.1:6379/0?ssl_cert_reqs=maybe", "invalid ssl_cert_reqs"),
    ("redis://a:1,b:2/0", "redis+cluster://a:1,b:2/0"),
    ("unix://", "no socket path"),
    ("redis://127.0.0.1:6379/0?pool=3", "unknown option 'pool'"),
]


@pytest.mark.parametrize(("url", "complaint"), BAD_URLS)
def test_bad_urls_say_what_to_do(url: str, complaint: str) -> None:
    with pytest.raises(ConfigurationError, match=None) as caught:
        ailib.open_store(url)
    assert complaint in str(caught.value)


def test_options_reach_the_client() -> None:
    store = ailib.open_store(
        "redis://127.0.0.1:6379/4?socket_timeout=2.5&connect_timeout=1&max_connections=7"
        "&namespace=opts&ttl=1h"
    )
    assert isinstance(store, RedisStore)
    client = store.client
    assert isinstance(client, redis.Redis)
    kwargs = client.connection_pool.connection_kwargs
    assert (kwargs["db"], kwargs["socket_timeout"], kwargs["socket_connect_timeout"]) == (4, 2.5, 1)
    assert client.connection_pool.max_connections == 7
    assert (store.namespace, store.default_ttl) == ("opts", 3600)


def test_rediss_uses_tls() -> None:
    store = ailib.open_store("rediss://u:pw@example.invalid:6380/1?ssl_cert_reqs=none")
    assert isinstance(store, RedisStore)
    client = store.client
    assert isinstance(client, redis.Redis)
    assert client.connection_pool.connection_class is redis.SSLConnection
    assert client.connection_pool.connection_kwargs["ssl_cert_reqs"] == "none"


def test_unix_socket(private_redis: tuple[str, Path]) -> None:
    _, socket_path = private_redis
    store = ailib.open_store(f"unix://{socket_path}?db=3", namespace="unix")
    session = store.create()
    session.add_message("user", "over a socket")
    assert store.load(session.session_id).messages[0]["content"] == "over a socket"
    store.delete(session.session_id)
    store.close()


def test_fakeredis_without_lua_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "lupa" else real(name, *a)
    )
    with pytest.raises(ConfigurationError, match=r"pip install 'ailib-store-redis\[fakeredis\]'"):
        ailib.open_store("fakeredis://")


def test_fakeredis_urls_share_a_server_by_name() -> None:
    one = ailib.open_store("fakeredis://shared-by-name", namespace="n")
    two = ailib.open_store("fakeredis://shared-by-name", namespace="n")
    other = ailib.open_store("fakeredis://another-name", namespace="n")
    session = one.create()
    assert two.exists(session.session_id)
    assert not other.exists(session.session_id)
    one.delete(session.session_id)


# -- round trips and idempotent retries ----------------------------------------------------------


def test_append_is_one_round_trip_whatever_the_history(
    private: RedisStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = private.client
    assert isinstance(client, redis.Redis)
    short = private.create({"user_id": "rt"}, ttl=3600)
    long = private.create({"user_id": "rt"}, ttl=3600)
    private.append(long.session_id, *({"role": "user", "content": str(n)} for n in range(5000)))
    for session in (short, long):
        private.checkpoint(session.session_id)
        private.append(session.session_id, {"role": "user", "content": "warm up"})
    wire = Wire(monkeypatch)
    executed = []
    for session in (short, long):
        client.config_resetstat()
        wire.reset()
        private.append(session.session_id, {"role": "user", "content": "one more"})
        assert len(wire.sends) == 1
        assert b"EVALSHA" in wire.sends[0]
        stats = client.info("commandstats")
        executed.append({name: s["calls"] for name, s in stats.items()})
    assert executed[0]["cmdstat_evalsha"] == 1
    assert "cmdstat_lrange" not in executed[0]
    assert executed[0] == executed[1], "the same work at 2 and 5,000 messages"


def test_load_is_one_round_trip(private: RedisStore, monkeypatch: pytest.MonkeyPatch) -> None:
    session = private.create()
    private.append(session.session_id, *({"role": "user", "content": str(n)} for n in range(50)))
    wire = Wire(monkeypatch)
    assert len(private.load(session.session_id)) == 50
    assert len(private.load(session.session_id, last=5)) == 5
    assert len(wire.sends) == 2
    assert all(s.count(b"MULTI") == 1 and s.count(b"EXEC") == 1 for s in wire.sends)


def lose_the_next_reply(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The next reply is read from the server, then lost as if the connection dropped;
    returns the list that receives it."""
    original = Connection.read_response
    lost: list[Any] = []

    def read_response(conn: Connection, *args: Any, **kwargs: Any) -> Any:
        reply = original(conn, *args, **kwargs)
        if not lost:
            lost.append(reply)
            conn.disconnect()
            raise redis.ConnectionError("connection reset while reading the reply")
        return reply

    monkeypatch.setattr(Connection, "read_response", read_response)
    return lost


def test_append_resent_after_a_lost_reply_is_stored_once(
    private: RedisStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    session = private.create()
    private.append(session.session_id, {"role": "user", "content": "first"})
    wire = Wire(monkeypatch)
    lost = lose_the_next_reply(monkeypatch)
    version = private.append(session.session_id, {"role": "user", "content": "once"})
    monkeypatch.undo()

    evalshas = [s for s in wire.sends if b"EVALSHA" in s]
    assert len(evalshas) == 2, "redis-py resent the append"
    assert evalshas[0] == evalshas[1], "with the same op id"
    loaded = private.load(session.session_id)
    assert [m["content"] for m in loaded.messages] == ["first", "once"]
    assert version == loaded.version == lost[0]


def test_pop_is_one_round_trip_and_resent_pops_once(
    private: RedisStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    session = private.create()
    private.append(session.session_id, *({"role": "user", "content": str(n)} for n in range(6)))
    assert private.pop(session.session_id) == [{"role": "user", "content": "5"}]
    wire = Wire(monkeypatch)
    assert [m["content"] for m in private.pop(session.session_id, 2)] == ["3", "4"]
    assert len(wire.sends) == 1

    lose_the_next_reply(monkeypatch)
    popped = private.pop(session.session_id)
    monkeypatch.undo()
    assert popped == [{"role": "user", "content": "2"}]
    assert [m["content"] for m in private.load(session.session_id).messages] == ["0", "1"]


def test_op_ids_are_remembered_in_bounded_space(private: RedisStore) -> None:
    session = private.create()
    first = private.append(
        session.session_id, {"role": "user", "content": "0"}, idempotency_key="k0"
    )
    for n in range(1, 400):
        private.append(session.session_id, {"role": "user", "content": str(n)})
        if n == OPS_KEPT - 1:  # the 256th op id back is still remembered
            again = {"role": "user", "content": "0"}
            assert private.append(session.session_id, again, idempotency_key="k0") == first
    keys = session_keys(private.namespace, session.session_id)
    client = private.client
    assert OPS_KEPT <= client.hlen(keys.ops) <= OPS_KEPT + TRIM_EVERY
    assert len(private.load(session.session_id).messages) == 400


@pytest.mark.parametrize("backend", ["private", "fakeredis"])
def test_an_applied_idempotency_key_is_not_applied_again(
    backend: str, request: pytest.FixtureRequest
) -> None:
    store = request.getfixturevalue("private") if backend == "private" else None
    if store is None:
        store = ailib.open_store("fakeredis://idempotency", namespace=uuid.uuid4().hex[:8])
    session = store.create()
    message = {"role": "user", "content": "once"}
    version = store.append(session.session_id, message, idempotency_key="order-17")
    store.update_metadata(session.session_id, {"step": 2}, idempotency_key="meta-1")
    assert store.append(session.session_id, message, idempotency_key="order-17") == version
    assert store.update_metadata(session.session_id, {"step": 3}, idempotency_key="meta-1") == (
        version + 1
    )
    loaded = store.load(session.session_id)
    assert [m["content"] for m in loaded.messages] == ["once"]
    assert loaded.get_metadata("step") == 2
    assert loaded.version == version + 1


# -- key layout, TTL and copy-on-write checkpoints -----------------------------------------------


def test_every_key_of_a_session_shares_one_slot_and_its_ttl(private: RedisStore) -> None:
    session = private.create({"user_id": "layout"}, ttl=600)
    session.add_message("user", "a")
    private.checkpoint(session.session_id)
    session.add_message("user", "b")
    loaded = private.load(session.session_id)
    loaded.messages = [{"role": "user", "content": "rewritten"}]
    private.save(loaded)  # copies the checkpoint's messages out of the log
    keys = session_keys(private.namespace, session.session_id)
    client = private.client
    present = [k for k in keys if client.exists(k)]
    # Every kind of key is exercised but the op-id list, which sessions no longer write.
    assert set(present) == set(keys) - {keys.opq}
    assert len({key_slot(k.encode()) for k in keys}) == 1
    for key in present:
        assert 0 < client.pttl(key) <= 600_000
    index = index_keys(private.namespace)
    assert client.zscore(index.updated, session.session_id) == pytest.approx(
        loaded.updated_at.timestamp(), abs=1
    )
    assert client.zscore(index.user("layout"), session.session_id) is not None
    assert client.zscore(index.expires, session.session_id) is not None


def test_checkpoints_are_pointers_until_history_is_rewritten(private: RedisStore) -> None:
    session = private.create()
    private.append(session.session_id, *({"role": "user", "content": str(n)} for n in range(100)))
    first = private.checkpoint(session.session_id)
    second = private.checkpoint(session.session_id)
    keys = session_keys(private.namespace, session.session_id)
    client = private.client
    assert client.hgetall(keys.cpp) == {str(first).encode(): b"100", str(second).encode(): b"100"}
    assert client.llen(keys.snap) == 0
    private.append(session.session_id, {"role": "user", "content": "appending keeps pointers"})
    assert client.llen(keys.snap) == 0

    loaded = private.load(session.session_id)
    loaded.messages = loaded.messages[:10]
    private.save(loaded)
    assert client.llen(keys.snap) == 100, "one shared copy for both checkpoints"
    assert client.hget(keys.cpp, str(first)) == b"100@0@100"
    private.restore(session.session_id, first)
    assert [m["content"] for m in private.load(session.session_id).messages] == [
        str(n) for n in range(100)
    ]


def test_purge_removes_index_entries_of_expired_sessions(private: RedisStore) -> None:
    doomed = private.create({"user_id": "gone"}, ttl=0.3)
    kept = private.create({"user_id": "gone"})
    time.sleep(0.5)
    index = index_keys(private.namespace)
    client = private.client
    assert client.zscore(index.updated, doomed.session_id) is not None, "stale until purged"
    assert [s.session_id for s in private.list(user_id="gone")] == [kept.session_id]
    assert private.purge_expired() == 1
    assert client.zscore(index.updated, doomed.session_id) is None
    assert client.zscore(index.user("gone"), doomed.session_id) is None
    assert client.zscore(index.expires, doomed.session_id) is None
    assert private.purge_expired() == 0


def test_deleting_everything_leaves_no_keys(private: RedisStore) -> None:
    for n in range(3):
        session = private.create({"user_id": f"u{n}"}, ttl=600 if n else None)
        session.add_message("user", "x")
        private.checkpoint(session.session_id)
        private.restore(session.session_id, 1)
    private.create(ttl=0.2)
    time.sleep(0.3)
    for summary in private.list():
        private.delete(summary.session_id)
    private.purge_expired()
    assert _namespace_keys(private) == []


def test_cluster_writes_take_a_second_call_for_the_index(
    redis_cluster: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = ailib.open_store(redis_cluster, namespace=f"cl-{uuid.uuid4().hex[:8]}")
    session = store.create({"user_id": "c"})
    session.add_message("user", "warm up")  # loads the scripts on both nodes
    store.load(session.session_id)  # and the read script
    wire = Wire(monkeypatch)
    session.add_message("user", "counted")
    assert len(wire.sends) == 2
    assert all(b"EVALSHA" in sent for sent in wire.sends)
    wire.reset()
    assert len(store.load(session.session_id)) == 2
    assert len(wire.sends) == 1
    store.delete(session.session_id)
    store.close()


def test_cluster_store_keeps_a_session_on_one_node(redis_cluster: str) -> None:
    store = ailib.open_store(redis_cluster, namespace=f"cl-{uuid.uuid4().hex[:8]}")
    assert isinstance(store, RedisStore)
    session = store.create({"user_id": "c"}, ttl=600)
    session.add_message("user", "a")
    store.checkpoint(session.session_id)
    client = store.client
    assert isinstance(client, redis.cluster.RedisCluster)
    keys = session_keys(store.namespace, session.session_id)
    assert len({client.keyslot(k) for k in keys}) == 1
    assert [s.session_id for s in store.list(user_id="c")] == [session.session_id]
    store.delete(session.session_id)
    assert store.list().items == []
    store.close()


def test_a_write_out_of_reach_says_its_outcome_is_unknown() -> None:
    store = ailib.open_store("redis://127.0.0.1:1/0?retries=0&resend_for=0.3")
    with pytest.raises(StoreUnavailable) as caught:
        store.append("s1", {"role": "user", "content": "x"}, idempotency_key="k1")
    assert "may or may not have been stored" in str(caught.value)
    assert "idempotency_key" in str(caught.value)
    assert "127.0.0.1:1" in str(caught.value)
    store.close()


@pytest.mark.parametrize("backend", ["private", "cluster"])
def test_an_append_gives_every_key_of_the_session_the_full_ttl_again(
    backend: str, request: pytest.FixtureRequest
) -> None:
    """The append script names the checkpoint keys from the meta key (same slot); it must
    refresh them too, on a single server and on a cluster."""
    if backend == "private":
        store: RedisStore = request.getfixturevalue("private")
    else:
        opened = ailib.open_store(
            request.getfixturevalue("redis_cluster"), namespace=uuid.uuid4().hex[:8]
        )
        assert isinstance(opened, RedisStore)
        store = opened
    session = store.create({"user_id": "ttl"}, ttl=600)
    session.add_message("user", "a")
    store.checkpoint(session.session_id)
    session.add_message("user", "b")
    loaded = store.load(session.session_id)
    loaded.messages = [{"role": "user", "content": "rewritten"}]
    store.save(loaded)  # a snapshot list too
    keys = session_keys(store.namespace, session.session_id)
    client: Any = store.client
    kinds = [keys.meta, keys.log, keys.cp, keys.cpp, keys.snap, keys.ops]
    for key in kinds:
        client.pexpire(key, 5_000)
    store.append(session.session_id, {"role": "user", "content": "c"})
    for key in kinds:
        assert 5_000 < client.pttl(key) <= 600_000, key
    store.delete(session.session_id)


@pytest.mark.parametrize("backend", ["private", "fakeredis"])
def test_scripts_are_loaded_again_after_the_server_forgets_them(
    backend: str, request: pytest.FixtureRequest
) -> None:
    """Scripts go as bare EVALSHA; a server without them (restarted, or SCRIPT FLUSH) gets
    each one loaded and the call sent again, once."""
    if backend == "private":
        store: RedisStore = request.getfixturevalue("private")
    else:
        opened = ailib.open_store("fakeredis://flushed", namespace=uuid.uuid4().hex[:8])
        assert isinstance(opened, RedisStore)
        store = opened
    session = store.create({"user_id": "flushed"})
    store.client.script_flush()
    assert store.append(session.session_id, {"role": "user", "content": "a"}) == 2
    store.client.script_flush()
    store.update_metadata(session.session_id, {"step": 1})
    loaded = store.load(session.session_id)
    assert [m["content"] for m in loaded.messages] == ["a"]
    assert loaded.metadata["step"] == 1
    assert [s.session_id for s in store.list(user_id="flushed")] == [session.session_id]


@pytest.mark.parametrize("stored", [b"[1, 2]", b'"text"', b"42", b"null"])
def test_a_stored_message_that_is_json_but_not_an_object_is_corrupt(
    private: RedisStore, stored: bytes
) -> None:
    session = private.create({"user_id": "u"})
    private.append(session.session_id, *[{"role": "user", "content": "hi"}] * 3)
    client = redis.Redis.from_url(private.url)
    client.lset(session_keys(private.namespace, session.session_id).log, 1, stored.decode())
    client.close()
    for read in (
        lambda: private.load(session.session_id),
        lambda: private.load(session.session_id, last=2),
    ):
        with pytest.raises(CorruptSessionError, match=session.session_id):
            read()
