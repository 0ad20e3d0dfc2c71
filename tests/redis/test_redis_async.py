"""The async twin beyond the conformance suite: ``open_async_store`` builds it for every Redis
scheme on ``redis.asyncio`` (or fakeredis's asyncio client), with the sync store's options and
errors; it keeps the sync store's round trips and idempotent retries, and it shares sessions
with the sync store (one key layout)."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import fakeredis
import pytest
import redis
import redis.asyncio
import redis.asyncio.cluster
from redis.asyncio.connection import AbstractConnection

import ailib
from ailib.errors import ConfigurationError, StoreUnavailable
from ailib_store_redis import RedisStore
from ailib_store_redis.aio import AsyncRedisStore

from .test_redis_store import BAD_URLS, Wire

T = TypeVar("T")


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coroutine)


@contextlib.asynccontextmanager
async def opened(url: str, **options: Any) -> AsyncIterator[AsyncRedisStore]:
    """An async store in a namespace of its own, emptied and closed afterwards."""
    store = ailib.open_async_store(url, namespace=f"as-{uuid.uuid4().hex[:10]}", **options)
    assert isinstance(store, AsyncRedisStore)
    try:
        yield store
    finally:
        for summary in (await store.list(limit=1000)).items:
            await store.delete(summary.session_id)
        await store.purge_expired()
        await store.aclose()


# -- which store, which client ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "client_class"),
    [
        ("redis://127.0.0.1:6379/2", redis.asyncio.Redis),
        ("rediss://u:pw@example.invalid:6380/1?ssl_cert_reqs=none", redis.asyncio.Redis),
        ("unix:///tmp/no-such-redis.sock?db=3", redis.asyncio.Redis),
        ("redis+cluster://127.0.0.1:1,127.0.0.1:2", redis.asyncio.cluster.RedisCluster),
        ("rediss+cluster://127.0.0.1:1", redis.asyncio.cluster.RedisCluster),
        ("fakeredis://twin-scheme", fakeredis.FakeAsyncRedis),
    ],
)
def test_open_async_store_returns_the_twin_for_each_scheme(
    url: str, client_class: type[Any]
) -> None:
    assert RedisStore.async_twin == "ailib_store_redis.aio:AsyncRedisStore"
    store = ailib.open_async_store(url, namespace="twin", ttl="1h")  # no I/O: no server needed
    assert type(store) is AsyncRedisStore
    assert isinstance(store.client, client_class)
    assert (store.namespace, store.default_ttl) == ("twin", 3600)
    run(store.aclose())


def test_options_reach_the_async_client() -> None:
    store = ailib.open_async_store(
        "redis://127.0.0.1:6379/4?socket_timeout=2.5&connect_timeout=1&max_connections=7",
        retries=0,
    )
    assert isinstance(store, AsyncRedisStore)
    client = store.client
    assert isinstance(client, redis.asyncio.Redis)
    kwargs = client.connection_pool.connection_kwargs
    assert (kwargs["db"], kwargs["socket_timeout"], kwargs["socket_connect_timeout"]) == (4, 2.5, 1)
    assert client.connection_pool.max_connections == 7
    assert kwargs["retry"].get_retries() == 0
    run(store.aclose())


@pytest.mark.parametrize(("url", "complaint"), BAD_URLS)
def test_bad_urls_are_refused_as_by_the_sync_store(url: str, complaint: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        ailib.open_async_store(url)
    assert complaint in str(caught.value)


# -- unreachable servers and secrets -----------------------------------------------------------


def test_unreachable_server_names_host_and_port() -> None:
    async def scenario() -> None:
        store = ailib.open_async_store("redis://127.0.0.1:1/0")
        with pytest.raises(StoreUnavailable) as caught:
            await store.load("x")
        assert "Redis at 127.0.0.1:1 is unreachable" in str(caught.value)
        await store.aclose()

    run(scenario())


def test_password_never_shown() -> None:
    async def scenario() -> None:
        store = ailib.open_async_store("redis://alice:s3cr3t-pw@127.0.0.1:1/0?retries=0")
        assert "s3cr3t-pw" not in repr(store)
        with pytest.raises(StoreUnavailable) as caught:
            await store.append("x", {"role": "user", "content": "hi"})
        assert "s3cr3t-pw" not in str(caught.value)
        assert "alice:***@127.0.0.1:1" in str(caught.value)
        await store.aclose()

    run(scenario())


def test_unreachable_cluster_names_its_seeds_on_first_use() -> None:
    async def scenario() -> None:
        store = ailib.open_async_store("redis+cluster://127.0.0.1:1,127.0.0.1:2?retries=0")
        with pytest.raises(StoreUnavailable) as caught:
            await store.exists("x")
        assert "127.0.0.1:1,127.0.0.1:2" in str(caught.value)
        await store.aclose()

    run(scenario())


def test_an_exhausted_pool_says_so(private_redis: tuple[str, Path]) -> None:
    async def scenario() -> list[BaseException | bool]:
        async with opened(private_redis[0], max_connections=2) as store:
            calls = (store.exists("x") for _ in range(20))
            return await asyncio.gather(*calls, return_exceptions=True)

    outcomes = run(scenario())
    refused = [o for o in outcomes if isinstance(o, BaseException)]
    assert refused, "20 concurrent calls on 2 connections"
    assert all(isinstance(o, StoreUnavailable) for o in refused)
    assert "no free connection" in str(refused[0])
    assert "raise max_connections" in str(refused[0])


# -- round trips and idempotent retries ----------------------------------------------------------


def test_append_is_one_round_trip_whatever_the_history(
    private_redis: tuple[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, _ = private_redis
    server = redis.Redis.from_url(url)

    async def scenario() -> list[dict[str, int]]:
        executed = []
        async with opened(url) as store:
            short = await store.create({"user_id": "rt"}, ttl=3600)
            long = await store.create({"user_id": "rt"}, ttl=3600)
            history = ({"role": "user", "content": str(n)} for n in range(5000))
            await store.append(long.session_id, *history)
            for session in (short, long):
                await store.append(session.session_id, {"role": "user", "content": "warm up"})
            wire = Wire(monkeypatch, AbstractConnection)
            for session in (short, long):
                server.config_resetstat()
                wire.reset()
                await store.append(session.session_id, {"role": "user", "content": "one more"})
                assert len(wire.sends) == 1
                assert b"EVALSHA" in wire.sends[0]
                stats = server.info("commandstats")
                executed.append({name: s["calls"] for name, s in stats.items()})
            monkeypatch.undo()
        return executed

    executed = run(scenario())
    server.close()
    assert executed[0]["cmdstat_evalsha"] == 1
    assert "cmdstat_lrange" not in executed[0]
    assert executed[0] == executed[1], "the same work at 2 and 5,000 messages"


def test_load_is_one_round_trip(
    private_redis: tuple[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    async def scenario() -> None:
        async with opened(private_redis[0]) as store:
            session = await store.create()
            more = ({"role": "user", "content": str(n)} for n in range(50))
            await store.append(session.session_id, *more)
            wire = Wire(monkeypatch, AbstractConnection)
            assert len(await store.load(session.session_id)) == 50
            assert len(await store.load(session.session_id, last=5)) == 5
            assert len(wire.sends) == 2
            assert all(s.count(b"MULTI") == 1 and s.count(b"EXEC") == 1 for s in wire.sends)
            monkeypatch.undo()

    run(scenario())


def lose_the_next_reply(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The next reply of an asyncio connection is read, then lost as if the connection
    dropped; returns the list that receives it."""
    original = AbstractConnection.read_response
    lost: list[Any] = []

    async def read_response(conn: AbstractConnection, *args: Any, **kwargs: Any) -> Any:
        reply = await original(conn, *args, **kwargs)
        if not lost:
            lost.append(reply)
            await conn.disconnect()
            raise redis.ConnectionError("connection reset while reading the reply")
        return reply

    monkeypatch.setattr(AbstractConnection, "read_response", read_response)
    return lost


def test_append_resent_after_a_lost_reply_is_stored_once(
    private_redis: tuple[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    async def scenario() -> None:
        async with opened(private_redis[0]) as store:
            session = await store.create()
            await store.append(session.session_id, {"role": "user", "content": "first"})
            wire = Wire(monkeypatch, AbstractConnection)
            lost = lose_the_next_reply(monkeypatch)
            version = await store.append(session.session_id, {"role": "user", "content": "once"})
            monkeypatch.undo()

            evalshas = [s for s in wire.sends if b"EVALSHA" in s]
            assert len(evalshas) == 2, "redis.asyncio resent the append"
            assert evalshas[0] == evalshas[1], "with the same op id"
            loaded = await store.load(session.session_id)
            assert [m["content"] for m in loaded.messages] == ["first", "once"]
            assert version == loaded.version == lost[0]

    run(scenario())


def test_cluster_reads_a_session_with_one_script_call(
    redis_cluster: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """redis.asyncio's cluster pipelines have no native MULTI/EXEC, so a cluster read is the
    read-only FETCH script: still one round trip, still atomic."""

    async def scenario() -> None:
        async with opened(redis_cluster) as store:
            session = await store.create({"user_id": "c"})
            await session.add_message("user", "warm up")
            await store.load(session.session_id)  # loads the read script on that node
            wire = Wire(monkeypatch, AbstractConnection)
            assert len(await store.load(session.session_id)) == 1
            assert len(wire.sends) == 1
            assert b"EVALSHA" in wire.sends[0]
            assert b"MULTI" not in wire.sends[0]
            wire.reset()
            await session.add_message("user", "counted")
            assert len(wire.sends) == 2, "the session script, then the index script"
            monkeypatch.undo()
            assert [s.session_id for s in await store.list(user_id="c")] == [session.session_id]

    run(scenario())


def test_first_commands_of_many_tasks_on_a_fresh_cluster_store(redis_cluster: str) -> None:
    """16 tasks whose first commands on a fresh store race through redis-py's lazy cluster
    setup. Before the store set the client up first, some of 25 such stores failed in each
    run ("Connection closed by server", or a connection whose writer was gone)."""

    async def first_burst() -> None:
        async with opened(redis_cluster) as store:

            async def task(n: int) -> int:
                session = await store.create({"user_id": "burst"})
                await store.append(session.session_id, {"role": "user", "content": str(n)})
                return len(await store.load(session.session_id))

            assert await asyncio.gather(*(task(n) for n in range(16))) == [1] * 16

    for _ in range(25):
        run(first_burst())


# -- one layout: sync and async stores share sessions ---------------------------------------------


@pytest.mark.parametrize("backend", ["fakeredis", "private"])
def test_sync_and_async_stores_share_sessions(backend: str, request: pytest.FixtureRequest) -> None:
    url = (
        "fakeredis://shared-by-both"
        if backend == "fakeredis"
        else request.getfixturevalue("private_redis")[0]
    )
    namespace = f"both-{uuid.uuid4().hex[:8]}"
    sync = ailib.open_store(url, namespace=namespace)
    made = sync.create({"user_id": "u"}, ttl=600)
    made.add_message("user", "from sync")
    sync.checkpoint(made.session_id, "cp")

    async def scenario() -> str:
        store = ailib.open_async_store(url, namespace=namespace)
        loaded = await store.load(made.session_id)
        assert loaded.messages == [{"role": "user", "content": "from sync"}]
        assert [c.label for c in await store.checkpoints(made.session_id)] == ["cp"]
        await store.append(made.session_id, {"role": "assistant", "content": "from async"})
        new = await store.create({"user_id": "u"})
        await store.aclose()
        return new.session_id

    created = run(scenario())
    assert [m["content"] for m in sync.load(made.session_id).messages] == [
        "from sync",
        "from async",
    ]
    assert {s.session_id for s in sync.list(user_id="u")} == {made.session_id, created}
    for session_id in (made.session_id, created):
        sync.delete(session_id)
    sync.close()


@pytest.mark.parametrize("backend", ["fakeredis", "private"])
def test_async_scripts_are_loaded_again_after_the_server_forgets_them(
    backend: str, request: pytest.FixtureRequest
) -> None:
    url = (
        "fakeredis://async-flushed"
        if backend == "fakeredis"
        else request.getfixturevalue("private_redis")[0]
    )

    async def scenario() -> None:
        async with opened(url) as store:
            session = await store.create({"user_id": "flushed"})
            await store.client.script_flush()
            assert await store.append(session.session_id, {"role": "user", "content": "a"}) == 2
            await store.client.script_flush()
            await store.update_metadata(session.session_id, {"step": 1})
            loaded = await store.load(session.session_id)
            assert [m["content"] for m in loaded.messages] == ["a"]
            assert loaded.metadata["step"] == 1

    run(scenario())
