"""The async twin beyond the conformance suite: ``open_async_store`` builds it for every SQL
scheme with the asyncio driver of the same database (on SQLite: the sync store's engine,
driven from worker threads), it sends the sync store's SQL, tables
are opened lazily with the same migrations and errors, and concurrent tasks (with threads of
the sync store beside them) lose, duplicate or reorder nothing."""

from __future__ import annotations

import asyncio
import re
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

import ailib
from ailib.errors import ConfigurationError, StoreUnavailable
from ailib_store_sql import SCHEMA_VERSION, SQLStore, define, upgrade
from ailib_store_sql.aio import AsyncSQLStore
from ailib_store_sql.engine import async_url
from ailib_store_sql.migrations import read_version
from tests.servers.sql import mysql_url, sqlite_url

from .test_sql_concurrency import check_log
from .test_sql_store import BAD_OPTIONS


@pytest.fixture
def namespace() -> str:
    return f"as-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def sync_store(any_url: str, namespace: str) -> Iterator[SQLStore]:
    opened = ailib.open_store(any_url, namespace=namespace)
    assert isinstance(opened, SQLStore)
    yield opened
    opened.close()


def run(coroutine: Any) -> Any:
    return asyncio.run(coroutine)


# -- which store, which driver --------------------------------------------------------------


@pytest.mark.parametrize(
    ("scheme", "driver"),
    [
        ("sqlite", "sqlite"),
        ("sqlite+pysqlite", "sqlite+pysqlite"),
        ("sqlite+aiosqlite", "sqlite"),
        ("postgresql", "postgresql+psycopg"),
        ("postgres", "postgresql+psycopg"),
        ("postgresql+psycopg", "postgresql+psycopg"),
        ("postgresql+psycopg2", "postgresql+psycopg"),
        ("postgresql+asyncpg", "postgresql+asyncpg"),
        ("mysql", "mysql+aiomysql"),
        ("mysql+pymysql", "mysql+aiomysql"),
        ("mariadb", "mariadb+aiomysql"),
        ("mariadb+pymysql", "mariadb+aiomysql"),
    ],
)
def test_open_async_store_returns_the_native_twin(scheme: str, driver: str) -> None:
    sqlite = scheme.startswith("sqlite")
    url = f"{scheme}:///x.db" if sqlite else f"{scheme}://u:pw@127.0.0.1:1/test"
    store = ailib.open_async_store(url, namespace="n", ttl="1h")
    assert type(store) is AsyncSQLStore
    assert SQLStore.async_twin == "ailib_store_sql.aio:AsyncSQLStore"
    assert store.engine.url.drivername == driver
    # SQLite runs on the sync store's engine (sqlite3 has no asyncio API); the rest natively.
    assert isinstance(store.engine, sa.Engine if sqlite else AsyncEngine)
    assert (store.namespace, store.default_ttl) == ("n", 3600)
    assert "pw" not in store.url
    # Nothing was connected: construction does no I/O, so it may run on an event loop.
    pool = store.engine.pool
    assert isinstance(pool, sa.pool.QueuePool)
    assert pool.checkedout() == 0
    run(store.aclose())


def test_psycopg_serves_both_stores_through_one_dialect_family() -> None:
    store = ailib.open_async_store("postgresql+psycopg://postgres@127.0.0.1:1/test")
    assert isinstance(store, AsyncSQLStore)
    assert isinstance(store.engine, AsyncEngine)
    assert store.engine.dialect.is_async
    assert store.engine.dialect.driver == "psycopg"
    run(store.aclose())


@pytest.mark.parametrize("option", ["read_timeout=5", "write_timeout=5", "ssl_verify_cert=1"])
def test_pymysql_options_aiomysql_lacks_are_refused(option: str) -> None:
    with pytest.raises(ConfigurationError, match=option.split("=")[0] + ".*aiomysql"):
        ailib.open_async_store(f"mysql://root@127.0.0.1/test?{option}")


def test_async_url_refuses_drivers_without_an_asyncio_twin() -> None:
    with pytest.raises(ConfigurationError, match=r"no asyncio driver.*\+aiomysql"):
        async_url(sa.make_url("mysql+mysqlconnector://root@127.0.0.1/test"))
    with pytest.raises(ConfigurationError, match=r"SQLite.*worker threads"):
        async_url(sa.make_url("sqlite:///x.db"))


@pytest.mark.parametrize(("url", "message"), BAD_OPTIONS)
def test_bad_configuration_is_refused_on_open(url: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        ailib.open_async_store(url)


# -- lazily opened tables, errors ------------------------------------------------------------


def test_first_operation_creates_tables_and_later_ones_share_them(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'deep' / 's.db'}?table_prefix=chat_&namespace=app"

    async def scenario() -> None:
        store = ailib.open_async_store(url)
        # Concurrent first operations: one of them runs the migrations, the rest wait.
        made = await asyncio.gather(*(store.create() for _ in range(5)))
        assert len({s.session_id for s in made}) == 5
        await store.aclose()

    run(scenario())
    with ailib.open_store(url) as sync:
        assert len(sync.list()) == 5
        assert isinstance(sync, SQLStore)
        assert sa.inspect(sync.engine).has_table("chat_sessions")


def test_old_tables_are_upgraded_by_the_same_runner(any_url: str) -> None:
    prefix = f"a{uuid.uuid4().hex[:8]}_"
    sync = sa.create_engine(sa.make_url(SQLStore(any_url).engine.url))
    try:
        upgrade(sync, define(prefix, 1), target=1)

        async def scenario() -> None:
            async with ailib.open_async_store(any_url, table_prefix=prefix) as store:
                await store.create(session_id="fresh", metadata={"user_id": "u"})
                assert [s.session_id for s in await store.list(user_id="u")] == ["fresh"]

        run(scenario())
        with sync.connect() as conn:
            assert read_version(conn, define(prefix)) == SCHEMA_VERSION
    finally:
        define(prefix).metadata.drop_all(sync)
        sync.dispose()


def test_create_false_refuses_at_the_first_operation(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with ailib.open_async_store(sqlite_url(tmp_path), create="false") as store:
            await store.create()

    with pytest.raises(ConfigurationError, match=r"do not exist.*create=false"):
        run(scenario())


@pytest.mark.parametrize(
    "url",
    [
        "postgresql+psycopg://app:hunter2@127.0.0.1:1/test?connect_timeout=3",
        "mysql+pymysql://app:hunter2@127.0.0.1:1/test?connect_timeout=3",
    ],
)
def test_unreachable_server_is_store_unavailable_with_the_password_masked(url: str) -> None:
    async def scenario() -> None:
        async with ailib.open_async_store(url) as store:
            await store.load("x")

    with pytest.raises(StoreUnavailable, match=r"cannot reach the database at .*\*\*\*@127") as c:
        run(scenario())
    assert "hunter2" not in str(c.value)
    assert c.value.__cause__ is None


def test_refused_login_is_masked() -> None:
    async def scenario() -> None:
        async with ailib.open_async_store(mysql_url().replace("root@", "root:hunter2@")) as store:
            await store.exists("x")

    with pytest.raises(StoreUnavailable) as caught:
        run(scenario())
    assert "hunter2" not in str(caught.value)
    assert "***" in str(caught.value)


# -- one design: the same SQL ----------------------------------------------------------------


def sql_of(engine: sa.Engine, action: Any) -> list[str]:
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        # PyMySQL takes named placeholders, aiomysql positional ones: the same SQL.
        seen.append(re.sub(r"%\(\w+\)s", "%s", " ".join(statement.split())))

    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        action()
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)
    return seen


def test_the_twin_sends_the_sync_stores_sql(
    any_url: str, sync_store: SQLStore, namespace: str
) -> None:
    def scenario(store: Any, call: Any) -> list[list[str]]:
        session_id = call(store.create(messages=[{"role": "user", "content": "a"}])).session_id
        # On SQLite the twin runs the sync store's engine in worker threads (its statements are
        # recorded there); elsewhere the sync core of its asyncio engine sees them.
        engine = store.engine.sync_engine if isinstance(store.engine, AsyncEngine) else store.engine
        assert isinstance(engine, sa.Engine)
        steps = [
            lambda: store.append(session_id, {"role": "user", "content": "b"}),
            lambda: store.load(session_id, 1),
            lambda: store.update_metadata(session_id, {"user_id": "u"}),
            lambda: store.checkpoint(session_id),
            lambda: store.pop(session_id, 2),
            lambda: store.restore(session_id, 1),
            lambda: store.delete(session_id),
        ]
        return [sql_of(engine, lambda step=step: call(step())) for step in steps]

    loop = asyncio.new_event_loop()
    twin = ailib.open_async_store(any_url, namespace=namespace)
    try:
        loop.run_until_complete(twin.exists("warm-up"))  # migrations: not part of the comparison
        in_async = scenario(twin, loop.run_until_complete)
        loop.run_until_complete(twin.aclose())
    finally:
        loop.close()
    in_sync = scenario(sync_store, lambda value: value)
    assert in_async == in_sync
    assert all(in_sync), "every step ran SQL"


# -- concurrency -----------------------------------------------------------------------------

TASKS, THREADS, EACH = 50, 4, 6


def test_tasks_and_threads_append_to_one_session(
    any_url: str, namespace: str, sync_store: SQLStore
) -> None:
    """50 tasks of the twin and 4 threads of the sync store write one session at once."""
    session_id = sync_store.create().session_id
    errors: list[BaseException] = []

    def thread_writer(worker: int) -> None:
        try:
            for n in range(EACH):
                sync_store.append(session_id, {"role": "user", "content": f"{worker}:{n}"})
        except BaseException as exc:
            errors.append(exc)

    async def tasks() -> None:
        async with ailib.open_async_store(any_url, namespace=namespace) as store:

            async def writer(task: int) -> None:
                for n in range(EACH):
                    await store.append(session_id, {"role": "user", "content": f"{task}:{n}"})

            await store.exists(session_id)  # tables checked before the threads start
            threads = [
                threading.Thread(target=thread_writer, args=(TASKS + w,)) for w in range(THREADS)
            ]
            for thread in threads:
                thread.start()
            await asyncio.gather(*(writer(t) for t in range(TASKS)))
            for thread in threads:
                await asyncio.to_thread(thread.join)

    run(tasks())
    assert errors == []
    check_log(sync_store, session_id, TASKS + THREADS, EACH)
    sync_store.delete(session_id)


def test_stale_expected_version_conflicts_in_the_twin(any_url: str, namespace: str) -> None:
    async def scenario() -> None:
        async with ailib.open_async_store(any_url, namespace=namespace) as store:
            session = await store.create()
            version = await store.append(session.session_id, {"role": "user", "content": "x"})
            with pytest.raises(ailib.ConflictError, match="someone else changed it"):
                await store.append(
                    session.session_id,
                    {"role": "user", "content": "y"},
                    expected_version=version - 1,
                )
            await store.delete(session.session_id)

    run(scenario())


def test_sqlite_operations_run_whole_in_worker_threads() -> None:
    """One thread hop per operation, not per statement: every statement of an append runs in
    the same thread, which is not the event loop's; ``sqlite://`` stays private to its store."""

    async def scenario() -> None:
        loop_thread = threading.get_ident()
        async with AsyncSQLStore("sqlite://") as store, AsyncSQLStore("sqlite://") as other:
            session_id = (await store.create()).session_id
            assert isinstance(store.engine, sa.Engine)
            threads: list[int] = []

            def record(*_: Any) -> None:
                threads.append(threading.get_ident())

            sa.event.listen(store.engine, "before_cursor_execute", record)
            await store.append(session_id, {"role": "user", "content": "x"})
            sa.event.remove(store.engine, "before_cursor_execute", record)
            assert len(threads) >= 3  # BEGIN IMMEDIATE, UPDATE … RETURNING, INSERT
            assert len(set(threads)) == 1
            assert loop_thread not in threads
            assert not await other.exists(session_id)
            # Tasks take turns on the one in-memory connection; none is lost, even cancelled.
            writes = [
                asyncio.ensure_future(store.append(session_id, {"role": "user", "content": str(n)}))
                for n in range(20)
            ]
            writes[5].cancel()
            await asyncio.gather(*writes, return_exceptions=True)
            loaded = await store.load(session_id)
            assert loaded.version == len(loaded.messages) + 1

    run(scenario())
