"""Nothing stored is lost, nothing is silently wrong, every error speaks the user's terms:
``~`` in SQLite paths, damaged rows, op ids, lost commit replies, error wording."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

import ailib
from ailib.errors import CorruptSessionError, StoreUnavailable
from ailib.records import Change
from ailib.url import make_url
from ailib_store_sql import SQLStore, operations
from ailib_store_sql.aio import AsyncSQLStore
from ailib_store_sql.errors import translate
from tests.servers.sql import MYSQL_URL, PG_URL, mysql_url, postgres_url
from tests.sql._damage import damage


@pytest.fixture
def store(any_url: str) -> Iterator[SQLStore]:
    opened = ailib.open_store(any_url, namespace=f"t-{uuid.uuid4().hex[:10]}")
    assert isinstance(opened, SQLStore)
    yield opened
    opened.close()


def chat(n: int) -> list[dict[str, Any]]:
    return [{"role": "user", "content": f"m{i}"} for i in range(n)]


# -- SQLite paths and wording -------------------------------------------------------------


def test_sqlite_home_path_opens_the_file_under_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home, cwd = tmp_path / "home", tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(cwd)
    url = "sqlite:///~/.local/share/app/sessions.db"
    with ailib.open_store(url) as store:
        store.create(session_id="kept", messages=chat(1))
    assert (home / ".local/share/app/sessions.db").is_file()
    assert not (cwd / "~").exists()

    async def twin() -> int:
        async with ailib.open_async_store(url) as again:
            return len((await again.load("kept")).messages)

    assert asyncio.run(twin()) == 1


def test_sqlite_file_that_cannot_be_opened_is_named_with_the_path(tmp_path: Path) -> None:
    folder = tmp_path / "a-folder"
    folder.mkdir()
    with pytest.raises(StoreUnavailable) as caught:
        ailib.open_store(f"sqlite:///{folder}")
    text = str(caught.value)
    assert "SQLite database file" in text
    assert str(folder) in text
    assert "permission" in text
    assert "server is up" not in text


def test_sqlite_locked_database_says_who_and_what_to_do(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}?timeout=0.2"
    with ailib.open_store(url) as store:
        store.create(session_id="s")
        holder = sa.create_engine(f"sqlite:///{tmp_path / 's.db'}")
        with holder.connect() as conn:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
            with pytest.raises(StoreUnavailable) as caught:
                store.append("s", {"role": "user", "content": "x"})
            conn.exec_driver_sql("ROLLBACK")
        holder.dispose()
        text = str(caught.value)
        assert "locked by another writer" in text
        assert "timeout" in text
        assert "server is up" not in text
        assert store.load("s").messages == []


def test_postgres_admin_shutdown_says_the_server_is_going_away() -> None:
    url = make_url(postgres_url().replace("postgres@", "postgres:s3cret@"))
    engine = sa.create_engine(PG_URL)
    try:
        with engine.connect() as victim, engine.connect() as killer:
            pid = victim.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()
            killer.exec_driver_sql(f"SELECT pg_terminate_backend({int(pid)})")
            with pytest.raises(sa.exc.OperationalError) as caught:
                victim.exec_driver_sql("SELECT 1")
    finally:
        engine.dispose()
    text = str(translate(caught.value, url, "load session 's'"))
    assert "shutting down or restarting" in text
    assert "server is up" not in text
    assert "s3cret" not in text


# -- damaged rows -------------------------------------------------------------------------


def test_garbage_metadata_leaves_the_listing_working(
    store: SQLStore, caplog: pytest.LogCaptureFixture
) -> None:
    for n in range(5):
        store.create({"user_id": "u"}, session_id=f"s{n}", messages=chat(2))
    damage(store, "s2", "metadata")
    with caplog.at_level(logging.WARNING):
        assert [s.session_id for s in store.list()] == ["s4", "s3", "s1", "s0"]
    assert "'s2'" in caplog.text
    pages, cursor = [], None
    while True:
        page = store.list(limit=1, cursor=cursor)
        pages += [s.session_id for s in page]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert pages == ["s4", "s3", "s1", "s0"]
    with pytest.raises(CorruptSessionError, match="'s2'"):
        store.load("s2")
    assert store.load("s3").messages == chat(2)


@pytest.mark.parametrize("last", [None, 2])
def test_a_deleted_message_row_is_reported(store: SQLStore, last: int | None) -> None:
    store.create(session_id="s", messages=chat(4))
    damage(store, "s", "missing_message")
    with pytest.raises(CorruptSessionError, match=r"'s'.*message\(s\) 2 .*missing"):
        store.load("s", last=last)


@pytest.mark.parametrize("last", [None, 2])
def test_a_wrong_message_count_is_reported(store: SQLStore, last: int | None) -> None:
    store.create(session_id="s", messages=chat(4))
    damage(store, "s", "count")
    with pytest.raises(CorruptSessionError, match=r"'s'.*missing"):
        store.load("s", last=last)


def test_a_count_lower_than_the_log_is_reported(store: SQLStore) -> None:
    store.create(session_id="s", messages=chat(4))
    s = store.tables.sessions
    with store.engine.begin() as conn:
        conn.execute(
            sa.update(s)
            .where(s.c.namespace == store.namespace, s.c.session_id == "s")
            .values(message_count=3)
        )
    with pytest.raises(CorruptSessionError, match=r"'s'.*past the 3"):
        store.load("s")


def test_a_garbage_message_is_reported(store: SQLStore) -> None:
    store.create(session_id="s", messages=chat(4))
    damage(store, "s", "message")
    with pytest.raises(CorruptSessionError, match="message 3 of session 's'"):
        store.load("s", last=1)


# -- op ids -------------------------------------------------------------------------------


def apply_as(store: SQLStore, session_id: str, op: str, change: Change) -> int:
    return store._apply(session_id, dataclasses.replace(change, op_id=op), time.time())


def test_a_repeated_op_id_is_not_applied_again(store: SQLStore) -> None:
    store.create(session_id="s")
    one = Change(append=tuple(chat(1)))
    first = apply_as(store, "s", "op-1", one)
    store.append("s", {"role": "assistant", "content": "reply"})
    assert apply_as(store, "s", "op-1", one) == first
    # Also when the retry carries the expected version the first attempt had.
    stale = Change(append=tuple(chat(1)), expected_version=first - 1)
    assert apply_as(store, "s", "op-1", stale) == first
    assert len(store.load("s").messages) == 2
    metadata = Change(set_metadata={"k": 1})
    assert apply_as(store, "s", "op-2", metadata) == apply_as(store, "s", "op-2", metadata)
    assert store.load("s").version == first + 2


def test_a_repeated_op_id_is_not_applied_again_by_the_twin(any_url: str) -> None:
    async def scenario() -> tuple[int, int, int]:
        async with ailib.open_async_store(any_url, namespace=f"t-{uuid.uuid4().hex}") as twin:
            assert isinstance(twin, AsyncSQLStore)
            await twin.create(session_id="s")
            change = Change(append=tuple(chat(1)), op_id="op")
            first = await twin._apply("s", change, time.time())
            again = await twin._apply("s", change, time.time())
            return first, again, len((await twin.load("s")).messages)

    assert asyncio.run(scenario()) == (2, 2, 1)


def test_op_ids_are_trimmed_to_the_newest(store: SQLStore) -> None:
    store.create(session_id="s")
    for n in range(operations.OPS_KEPT * 2 + 3):
        apply_as(store, "s", f"op-{n}", Change(append=tuple(chat(1))))
    ops = store.tables.op_table
    with store.engine.connect() as conn:
        kept = conn.execute(
            sa.select(ops.c.op_id).where(ops.c.namespace == store.namespace)
        ).scalars()
        numbers = sorted(int(op.split("-")[1]) for op in kept)
    assert operations.OPS_KEPT <= len(numbers) <= 2 * operations.OPS_KEPT
    assert numbers == list(range(numbers[0], operations.OPS_KEPT * 2 + 3))
    store.delete("s")
    with store.engine.connect() as conn:
        left = conn.execute(
            sa.select(sa.func.count()).where(ops.c.namespace == store.namespace)
        ).scalar_one()
    assert left == 0


def _lose_replies(store: SQLStore, where: str) -> list[str]:
    """Break the connection of the next write once: ``before-send`` (the first statement of
    the append never reaches the server), ``after-execute`` (it ran; on PostgreSQL, where an
    append is one autocommitted statement, it landed; on MariaDB, where it is one batch
    ending with its COMMIT, it may have; elsewhere the server rolls it back),
    ``after-commit`` (the server committed, the reply is lost: on MariaDB, every result of
    the batch was read)."""
    dialect = store.engine.dialect
    execute, commit = dialect.do_execute, dialect.do_commit
    lost: list[str] = []

    def lose(dbapi_connection: Any) -> None:
        lost.append(where)
        # The driver's own connection (``dbapi_connection`` may be the pool's proxy of it).
        getattr(dbapi_connection, "dbapi_connection", dbapi_connection).close()
        error = dialect.loaded_dbapi.OperationalError
        if dialect.name == "postgresql":
            raise error("server closed the connection unexpectedly")
        raise error(2013, "Lost connection to server during query")

    def lossy_execute(cursor: Any, statement: str, parameters: Any, context: Any) -> None:
        batch = statement.startswith("START TRANSACTION")
        first_write = batch or statement.startswith(("UPDATE", "WITH"))
        if lost or not first_write or (where == "after-commit" and not batch):
            execute(cursor, statement, parameters, context)
            return
        if where != "before-send":
            execute(cursor, statement, parameters, context)
        if where == "after-commit":
            while cursor.nextset():
                pass
        lose(cursor.connection)

    def lossy_commit(dbapi_connection: Any) -> None:
        commit(dbapi_connection)
        if not lost and where == "after-commit":
            lose(dbapi_connection)

    dialect.do_execute = lossy_execute  # type: ignore[method-assign, assignment]
    dialect.do_commit = lossy_commit  # type: ignore[method-assign]
    return lost


@pytest.mark.parametrize("url", [PG_URL, MYSQL_URL], ids=["postgresql", "mariadb"])
@pytest.mark.parametrize("where", ["before-send", "after-execute", "after-commit"])
def test_a_lost_reply_is_looked_up_not_reported(url: str, where: str) -> None:
    postgres_url() if url == PG_URL else mysql_url()
    with ailib.open_store(url, namespace=f"t-{uuid.uuid4().hex[:10]}") as store:
        assert isinstance(store, SQLStore)
        store.create(session_id="s", messages=chat(1))
        lost = _lose_replies(store, where)
        version = store.append("s", {"role": "assistant", "content": "once"})
        loaded = store.load("s")
    assert lost == [where]
    assert loaded.messages == [*chat(1), {"role": "assistant", "content": "once"}]
    assert loaded.version == version == 2


def test_a_label_with_a_nul_is_kept_on_every_database(store: SQLStore) -> None:
    store.create(session_id="s", messages=chat(1))
    labels = ["a\x00b", "\x1bjson:plain", "plain"]
    for label in labels:
        store.checkpoint("s", label=label)
    assert [c.label for c in store.checkpoints("s")] == labels
