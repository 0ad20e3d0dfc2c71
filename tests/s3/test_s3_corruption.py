"""Damaged sessions, on the sync store (moto's server and ``s3+mock://``) and the async
twin: ``load``, ``get`` and ``load(last=k)`` raise CorruptSessionError naming the session;
``list`` and every other session keep working. (The same damage as the conformance suite's
``corrupt_session``.)"""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any

import pytest

from ailib.errors import CorruptSessionError
from ailib.registry import open_async_store, open_store
from ailib_store_s3 import S3Store

from .corruption import DAMAGES, corrupt, damage_chunk, raw_client

_MESSAGES = [{"role": "user", "content": f"message {n}"} for n in range(5)]


def _url(kind: str, moto_url: str) -> str:
    return moto_url if kind == "server" else f"s3+mock://mock-{uuid.uuid4().hex[:8]}/s"


@pytest.mark.parametrize("damage", DAMAGES)
@pytest.mark.parametrize("kind", ["server", "mock"])
def test_damaged_session_sync(
    kind: str, damage: str, moto_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    with open_store(_url(kind, moto_url), namespace=f"n{uuid.uuid4().hex[:8]}") as store:
        other = store.create({"user_id": "u"}, messages=_MESSAGES).session_id
        broken = store.create({"user_id": "u"}, messages=_MESSAGES).session_id
        corrupt(store, broken, damage)
        for read in (
            lambda: store.load(broken),
            lambda: store.get(broken),
            lambda: store.load(broken, last=2),
        ):
            with pytest.raises(CorruptSessionError, match=broken):
                read()
        with caplog.at_level(logging.WARNING):
            listed = {s.session_id for s in store.list()} | {
                s.session_id for s in store.list(user_id="u")
            }
        assert other in listed
        if damage == "metadata":
            assert broken not in listed
            assert broken in caplog.text
        assert store.load(other).messages == _MESSAGES
        assert store.delete(broken)


@pytest.mark.parametrize("damage", DAMAGES)
def test_damaged_session_async(damage: str, moto_url: str) -> None:
    async def scenario() -> None:
        store = open_async_store(moto_url, namespace=f"n{uuid.uuid4().hex[:8]}")
        try:
            other = (await store.create({"user_id": "u"}, messages=_MESSAGES)).session_id
            broken = (await store.create({"user_id": "u"}, messages=_MESSAGES)).session_id
            corrupt(store, broken, damage)
            reads: list[Any] = [store.load(broken), store.get(broken), store.load(broken, last=2)]
            for read in reads:
                with pytest.raises(CorruptSessionError, match=broken):
                    await read
            listed = {s.session_id for s in await store.list()}
            assert other in listed
            assert (await store.load(other)).messages == _MESSAGES
        finally:
            await store.aclose()

    asyncio.run(scenario())


@pytest.mark.parametrize("damage", ["message", "missing_message"])
def test_damaged_chunk(damage: str, moto_url: str) -> None:
    """A session whose history lives in chunks: a chunk's damage is found on load, and on
    a load of the tail when the tail reaches into the chunk."""
    with open_store(moto_url, namespace=f"n{uuid.uuid4().hex[:8]}") as store:
        big = [{"role": "user", "content": f"{n} " + "y" * 3000} for n in range(200)]
        session_id = store.create(messages=big).session_id
        assert isinstance(store, S3Store)
        body = store.objects.get(store.layout.manifest(session_id))
        assert body is not None
        damage_chunk(raw_client(store), store, body[0], damage)
        with pytest.raises(CorruptSessionError, match=session_id):
            store.load(session_id)
        with pytest.raises(CorruptSessionError, match=session_id):
            store.load(session_id, last=199)
        assert len(store.load(session_id, last=3).messages) == 3  # the tail is intact
