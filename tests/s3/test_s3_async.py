"""The async twin beyond the conformance suite: what ``open_async_store`` returns, request
counts (the same as the sync store's), data shared with the sync store, and errors. Against
moto's S3 server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import pytest

from ailib.async_adapter import ThreadedAsyncStore
from ailib.errors import ConfigurationError, StoreUnavailable
from ailib.registry import open_async_store, open_store
from ailib_store_s3 import S3Store
from ailib_store_s3.aio import AsyncS3Store
from ailib_store_s3.manifest import Manifest
from ailib_store_s3.mock import AsyncMockS3Store, MockS3Store

T = TypeVar("T")


def _run(scenario: Callable[[], Coroutine[Any, Any, T]]) -> T:
    return asyncio.run(scenario())


def _message(n: int, size: int = 1000) -> dict[str, Any]:
    return {"role": "user", "content": f"message {n} " + "x" * size}


def test_open_async_store_returns_the_native_twin(moto_endpoint: str) -> None:
    url = f"s3://bucket-x/a/b?endpoint_url={moto_endpoint}&region=eu-west-1&ttl=1h"
    store = open_async_store(url, index_resolution=5, pool_size=4)
    assert type(store) is AsyncS3Store
    assert store.bucket == "bucket-x"
    assert store.layout.root == "a/b/default/"
    assert store.layout.resolution == 5
    assert store.default_ttl == 3600
    assert store.settings.region == "eu-west-1"
    assert store.settings.workers == 4
    assert AsyncS3Store.options == S3Store.options
    with pytest.raises(ConfigurationError, match="unknown option"):
        open_async_store(f"s3://bucket-x?endpoint_url={moto_endpoint}&colour=blue")


def test_open_async_store_of_the_mock_runs_it_in_threads() -> None:
    store = open_async_store(f"s3+mock://mock-{uuid.uuid4().hex[:8]}")
    assert isinstance(store, AsyncMockS3Store)
    assert isinstance(store, ThreadedAsyncStore)
    assert isinstance(store.sync, MockS3Store)
    _run(store.aclose)


def test_async_and_sync_stores_share_sessions(moto_url: str) -> None:
    sync = open_store(moto_url)
    created = sync.create(messages=[_message(n) for n in range(300)])

    async def scenario() -> list[str]:
        async with open_async_store(moto_url) as store:
            await store.append(created.session_id, {"role": "user", "content": "async"})
            return [m["content"] for m in (await store.load(created.session_id)).messages]

    contents = _run(scenario)
    assert contents[-1] == "async"
    assert len(contents) == 301
    assert [m["content"] for m in sync.load(created.session_id).messages] == contents
    sync.close()


def test_async_load_of_1000_messages_takes_two_round_trips(moto_url: str, request_log: Any) -> None:
    # A coarse index interval keeps the listing marker unchanged during the test, so what is
    # counted is the append itself (test_s3_store counts a marker move).
    writer = open_store(moto_url, index_resolution=86400)
    assert isinstance(writer, S3Store)
    session = writer.create(messages=[_message(n, 5000) for n in range(1000)])  # ~5 MB
    found = writer.objects.get(writer.layout.manifest(session.session_id))
    assert found is not None
    chunks = len(Manifest.decode(found[0]).chunks)
    assert chunks > 1, "the history should live in several chunks"
    writer.close()

    async def scenario() -> None:
        async with open_async_store(moto_url, index_resolution=86400) as store:  # cold
            assert isinstance(store, AsyncS3Store)
            log = request_log(await store.objects.client())
            with log:
                loaded = await store.load(session.session_id)
            assert len(loaded.messages) == 1000
            assert log.round_trips <= 2
            assert log.operations == {"GetObject": 1 + chunks}
            with log:
                await store.append(session.session_id, {"role": "user", "content": "more"})
            assert log.operations == {"PutObject": 1}  # the cached manifest, one write

    _run(scenario)


def test_async_missing_bucket_names_bucket_and_endpoint(moto_endpoint: str) -> None:
    async def scenario() -> None:
        store = open_async_store(f"s3://no-such-bucket-here/p?endpoint_url={moto_endpoint}")
        with pytest.raises(ConfigurationError, match="no-such-bucket-here") as caught:
            await store.load("some-session")
        assert moto_endpoint in str(caught.value)
        await store.aclose()

    _run(scenario)


def test_async_unreachable_endpoint_is_store_unavailable() -> None:
    async def scenario() -> None:
        # Opening does no I/O; the first operation fails, naming bucket and endpoint.
        store = open_async_store("s3://some-bucket?endpoint_url=http://127.0.0.1:9&max_attempts=1")
        with pytest.raises(StoreUnavailable, match=r"some-bucket.*127\.0\.0\.1:9") as caught:
            await store.get("some-session")
        assert "cannot reach" in str(caught.value)
        await store.aclose()

    _run(scenario)


def test_async_credentials_in_the_url_are_masked(moto_endpoint: str) -> None:
    secret = "wJalrXUtnFEMI-K7MDENG-bPxRfiCYEXAMPLEKEY"
    url = f"s3://AKIDEXAMPLE:{secret}@no-such-bucket-2/p?endpoint_url={moto_endpoint}"

    async def scenario() -> list[str]:
        store = open_async_store(url)
        texts = [repr(store), store.url]
        with pytest.raises(ConfigurationError) as caught:
            await store.load("some-session")
        await store.aclose()
        return [*texts, str(caught.value)]

    texts = _run(scenario)
    assert all(secret not in text for text in texts)
    assert "***" in texts[1]


def test_cancelled_appends_leave_group_commit_usable(moto_url: str) -> None:
    """Tasks cancelled while they wait for their group-commit turn, or while they lead one,
    never stall later writers to the session."""

    async def scenario() -> tuple[int, int]:
        async with open_async_store(moto_url) as store:
            session_id = (await store.create()).session_id
            tasks = [
                asyncio.create_task(store.append(session_id, {"role": "user", "content": str(n)}))
                for n in range(20)
            ]
            await asyncio.sleep(0.01)
            for task in tasks[::2]:
                task.cancel()
            results = await asyncio.gather(*tasks, return_exceptions=True)
            for result in results[::2]:  # a cancelled task ends cancelled (or had finished)
                assert isinstance(result, asyncio.CancelledError | int), result
            final = await asyncio.wait_for(
                store.append(session_id, {"role": "user", "content": "last"}), timeout=30
            )
            loaded = await store.load(session_id)
            return final, len(loaded.messages)

    version, count = _run(scenario)
    assert count >= 11  # the ten never cancelled, and the last
    assert version == count + 1  # one version a message appended, after the creating one
