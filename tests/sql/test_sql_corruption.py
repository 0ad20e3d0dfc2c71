"""Damaged rows on every SQL configuration, sync and async, through the conformance classes'
``corrupt_session``: the damaged session raises ``CorruptSessionError`` naming it and what is
wrong; listing and every other session keep working."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import pytest

import ailib
from ailib.errors import CorruptSessionError
from tests.servers.sql import mysql_url, postgres_url, sqlite_url
from tests.sql._damage import KINDS
from tests.sql.test_sql_conformance import Corruptible

#: What each damage's message says is wrong.
WHAT = {
    "metadata": "metadata of session 'bad'",
    "message": "message 3 of session 'bad'",
    "missing_message": "session 'bad'.* missing",
    "count": "session 'bad'.* missing",
}


@pytest.fixture(params=["sqlite", "sqlite-memory", "postgresql", "mariadb"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return sqlite_url(tmp_path)
    if request.param == "sqlite-memory":
        return "sqlite://"
    if request.param == "postgresql":
        return postgres_url()
    return mysql_url()


def chat(n: int) -> list[dict[str, Any]]:
    return [{"role": "user", "content": f"m{i}"} for i in range(n)]


@pytest.mark.parametrize("kind", KINDS)
def test_damaged_session_is_reported_and_the_rest_works(url: str, kind: str) -> None:
    with ailib.open_store(url, namespace=f"c-{uuid.uuid4().hex[:10]}") as store:
        for sid in ("a", "bad", "z"):
            store.create({"user_id": "u"}, session_id=sid, messages=chat(4))
        Corruptible().corrupt_session(store, "bad", kind)
        for read in (
            lambda: store.load("bad"),
            lambda: store.get("bad"),
            lambda: store.load("bad", last=2),
        ):
            with pytest.raises(CorruptSessionError, match=WHAT[kind]):
                read()
        listed = {s.session_id for s in store.list()}
        assert listed >= {"a", "z"}
        assert listed <= {"a", "z", "bad"}
        if kind == "metadata":
            assert "bad" not in listed
        assert store.load("a").messages == chat(4)
        assert store.load("z", last=2).messages == chat(4)[2:]


@pytest.mark.parametrize("kind", KINDS)
def test_damaged_session_is_reported_by_the_twin(url: str, kind: str) -> None:
    async def scenario() -> None:
        async with ailib.open_async_store(url, namespace=f"c-{uuid.uuid4().hex[:10]}") as store:
            for sid in ("a", "bad", "z"):
                await store.create({"user_id": "u"}, session_id=sid, messages=chat(4))
            Corruptible().corrupt_session(store, "bad", kind)
            with pytest.raises(CorruptSessionError, match=WHAT[kind]):
                await store.load("bad")
            with pytest.raises(CorruptSessionError, match=WHAT[kind]):
                await store.load("bad", last=2)
            listed = {s.session_id for s in await store.list()}
            assert {"a", "z"} <= listed <= {"a", "z", "bad"}
            assert (await store.load("z")).messages == chat(4)

    asyncio.run(scenario())
