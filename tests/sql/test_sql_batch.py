"""MariaDB appends as one batch of statements (``statements.append_batch``), its transaction
included: one round trip, and nothing written when the batch does not apply (a stale
expected version, a deleted session) or fails part way; for the sync store and its twin."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import sqlalchemy as sa

import ailib
from ailib.errors import AilibError, ConflictError, SessionNotFound, StoreUnavailable
from ailib.records import Change
from ailib.spi import dumps
from ailib_store_sql import SQLStore, operations
from ailib_store_sql.aio import AsyncSQLStore
from ailib_store_sql.schema import Tables
from tests.servers.sql import mysql_url


def chat(*contents: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text} for text in contents]


@pytest.fixture
def prefix() -> Iterator[str]:
    """Tables of this test's own (a trigger on them touches no other test); dropped after."""
    name = f"b{uuid.uuid4().hex[:8]}_"
    yield name
    engine = sa.create_engine(mysql_url(), poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        for table in ("sessions", "messages", "checkpoints", "ops", "schema_version"):
            conn.exec_driver_sql(f"DROP TABLE IF EXISTS {name}{table}")
    engine.dispose()


@pytest.fixture
def store(prefix: str) -> Iterator[SQLStore]:
    opened = SQLStore(mysql_url(), table_prefix=prefix, pool_size=1)
    assert opened._context.append_batch, "the test server is MariaDB"
    yield opened
    opened.close()


@dataclass(frozen=True)
class Written:
    """Every row a session has in the store's tables."""

    session: tuple[Any, ...] | None
    messages: list[tuple[Any, ...]]
    ops: list[tuple[Any, ...]]


def written(tables: Tables, engine: sa.Engine, session_id: str) -> Written:
    s, m, o = tables.sessions, tables.messages, tables.op_table
    with engine.connect() as conn:
        session = conn.execute(
            sa.select(s.c.version, s.c.message_count, s.c.updated_at, s.c.expires_at).where(
                s.c.session_id == session_id
            )
        ).first()
        messages = conn.execute(
            sa.select(m.c.seq, m.c.body).where(m.c.session_id == session_id).order_by(m.c.seq)
        ).all()
        ops = conn.execute(
            sa.select(o.c.op_id, o.c.version)
            .where(o.c.session_id == session_id)
            .order_by(o.c.version)
        ).all()
    return Written(
        None if session is None else tuple(session),
        [tuple(r) for r in messages],
        [tuple(r) for r in ops],
    )


def sent_by_pooled_connection(store: SQLStore) -> list[str]:
    """The queries the store's one pooled PyMySQL connection sends from now on."""
    fairy = store.engine.raw_connection()
    driver: Any = fairy.driver_connection
    fairy.close()
    sent: list[str] = []
    execute = driver._execute_command

    def recording(command: int, sql: str | bytes) -> Any:
        sent.append(sql if isinstance(sql, str) else sql.decode(errors="replace"))
        return execute(command, sql)

    driver._execute_command = recording
    return sent


def poison(store: SQLStore) -> None:
    """A trigger that refuses a message whose text holds "poison", as a statement of the
    batch past the UPDATE, the op record and the messages before it."""
    table = store.tables.messages.name
    with store.engine.begin() as conn:
        conn.exec_driver_sql(
            f"CREATE TRIGGER {table}_poison BEFORE INSERT ON {table} FOR EACH ROW "
            "IF LOCATE('poison', NEW.body) > 0 THEN "
            "SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'refused by the test trigger'; "
            "END IF"
        )


# -- one round trip -------------------------------------------------------------------------


def test_an_append_is_one_round_trip(store: SQLStore) -> None:
    store.create(session_id="s", messages=chat("a"))
    sent = sent_by_pooled_connection(store)
    assert store.append("s", *chat("b", "c")) == 2
    assert len(sent) == 1, sent
    (batch,) = sent
    statements = [s.strip() for s in batch.split(";\n")]
    assert statements[0] == "START TRANSACTION"
    assert statements[-1] == "COMMIT"
    assert sum(s.startswith(f"INSERT INTO {store.tables.messages.name} ") for s in statements) == 2
    # The connection went back to the pool outside a transaction: no ROLLBACK followed.
    assert store.append("s", *chat("d"), expected_version=2) == 3
    assert len(sent) == 2
    assert [m["content"] for m in store.load("s").messages] == ["a", "b", "c", "d"]


def test_a_large_append_takes_the_general_path(
    store: SQLStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(operations, "BATCH_CHARS", 100)
    store.create(session_id="s")
    sent = sent_by_pooled_connection(store)
    store.append("s", *chat("x" * 60, "y" * 60))
    assert not any(s.startswith("START TRANSACTION") for s in sent)
    assert sent[-1] == "COMMIT"
    assert [m["content"] for m in store.load("s").messages] == ["x" * 60, "y" * 60]


# -- nothing written when it does not apply --------------------------------------------------


def test_a_stale_expected_version_writes_nothing(store: SQLStore) -> None:
    store.create(session_id="s", messages=chat("a"))
    store.append("s", *chat("b"))
    before = written(store.tables, store.engine, "s")
    with pytest.raises(ConflictError, match="is at version 2, not 1"):
        store.append("s", *chat("late"), expected_version=1)
    assert written(store.tables, store.engine, "s") == before
    assert len(before.messages) == 2
    assert len(before.ops) == 1


def test_an_append_to_a_deleted_session_writes_nothing(store: SQLStore) -> None:
    store.create(session_id="s", messages=chat("a"))
    store.append("s", *chat("b"))
    store.delete("s")
    with pytest.raises(SessionNotFound):
        store.append("s", *chat("after"))
    assert written(store.tables, store.engine, "s") == Written(None, [], [])


def test_an_append_to_an_expired_session_writes_nothing(store: SQLStore) -> None:
    store.create(session_id="s", messages=chat("a"), ttl=60)
    before = written(store.tables, store.engine, "s")
    later = time.time() + 120
    with pytest.raises(SessionNotFound):
        store._apply("s", Change(append=tuple(chat("late"))), later)
    assert written(store.tables, store.engine, "s") == before


def test_a_batch_failing_part_way_writes_nothing(store: SQLStore) -> None:
    store.create(session_id="s", messages=chat("a"))
    poison(store)
    before = written(store.tables, store.engine, "s")
    sent = sent_by_pooled_connection(store)
    with pytest.raises(StoreUnavailable, match="refused by the test trigger") as caught:
        store.append("s", *chat("b", "poison", "c"))
    assert isinstance(caught.value, AilibError)
    # The batch stopped at the refused INSERT, before its COMMIT: it was rolled back.
    assert sent[-1] == "ROLLBACK"
    assert written(store.tables, store.engine, "s") == before
    # The same connection works on.
    assert store.append("s", *chat("b")) == 2
    assert [m["content"] for m in store.load("s").messages] == ["a", "b"]


def test_a_repeated_op_id_is_not_applied_twice(store: SQLStore) -> None:
    store.create(session_id="s")
    change = Change(append=tuple(chat("once")), op_id="key-1")
    first = store._apply("s", change, time.time())
    again = store._apply("s", change, time.time())
    assert first == again == 2
    assert [m["content"] for m in store.load("s").messages] == ["once"]
    assert written(store.tables, store.engine, "s").ops == [("key-1", 2)]


# -- the twin ------------------------------------------------------------------------------


def test_the_twin_writes_nothing_when_the_batch_does_not_apply_or_fails(
    store: SQLStore, prefix: str
) -> None:
    store.create(session_id="s", messages=chat("a"))
    store.create(session_id="gone")
    store.delete("gone")
    poison(store)

    async def scenario() -> list[str]:
        async with AsyncSQLStore(mysql_url(), table_prefix=prefix) as twin:
            assert await twin.append("s", *chat("b")) == 2
            raised = []
            for call in (
                twin.append("s", *chat("late"), expected_version=1),
                twin.append("gone", *chat("x")),
                twin.append("s", *chat("c", "poison")),
            ):
                try:
                    await call
                except AilibError as exc:
                    raised.append(type(exc).__name__)
            assert await twin.append("s", *chat("c"), expected_version=2) == 3
            return raised

    assert asyncio.run(scenario()) == ["ConflictError", "SessionNotFound", "StoreUnavailable"]
    after = written(store.tables, store.engine, "s")
    assert [body for _, body in after.messages] == [dumps(m) for m in chat("a", "b", "c")]
    assert [version for _, version in after.ops] == [2, 3]
    assert written(store.tables, store.engine, "gone") == Written(None, [], [])


def test_mysql_connections_allow_several_statements_per_query() -> None:
    with ailib.open_store(mysql_url(), namespace=f"t-{uuid.uuid4().hex[:8]}") as opened:
        fairy = opened.engine.raw_connection()  # type: ignore[attr-defined]
        try:
            assert fairy.driver_connection.client_flag & (1 << 16)
        finally:
            fairy.close()


def test_an_append_of_the_twin_is_one_round_trip(prefix: str) -> None:
    async def scenario() -> tuple[list[str], list[str]]:
        async with AsyncSQLStore(mysql_url(), table_prefix=prefix, pool_size=1) as twin:
            await twin.create(session_id="s", messages=chat("a"))
            engine: Any = twin.engine
            async with engine.connect() as conn:
                fairy = await conn.get_raw_connection()
                driver = fairy.driver_connection
            sent: list[str] = []
            execute = driver._execute_command

            async def recording(command: int, sql: str | bytes) -> Any:
                sent.append(sql if isinstance(sql, str) else sql.decode(errors="replace"))
                return await execute(command, sql)

            driver._execute_command = recording
            assert await twin.append("s", *chat("b")) == 2
            appended = list(sent)
            assert await twin.load("s", last=1) is not None
            # A connection given back inside a transaction that wrote is rolled back on return.
            sql = f"UPDATE {twin.tables.sessions.name} SET version = version WHERE 1 = 0"

            def write_on_the_driver(sync: sa.Connection) -> None:
                cursor = sync.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
                cursor.execute(sql)
                cursor.close()

            async with engine.connect() as conn:
                await conn.run_sync(write_on_the_driver)
            return appended, list(sent)

    appended, sent = asyncio.run(scenario())
    assert len(appended) == 1, appended
    assert appended[0].startswith("START TRANSACTION")
    assert appended[0].endswith("COMMIT")
    # The load: its two SELECTs and COMMIT, then no ROLLBACK on return.
    assert "ROLLBACK" not in sent[:-1]
    assert sent[-1] == "ROLLBACK"


def test_text_that_looks_like_sql_is_stored_as_given(store: SQLStore) -> None:
    tricky = [
        "100% %s %(p_body)s %%",
        "'; COMMIT; DELETE FROM ailib_sessions; -- ",
        "quote ' double \" backslash \\ NUL \x00 newline \n end",
        "@ailib_count @ailib_version",
    ]
    store.create(session_id="s")
    store.append("s", *chat(*tricky), idempotency_key="'; DROP TABLE x; --")
    assert [m["content"] for m in store.load("s").messages] == tricky
    assert written(store.tables, store.engine, "s").ops[0][1] == 2
