"""What the conformance suite does not see: URLs and options, error translation, the
statements each operation runs, and purging."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

import ailib
from ailib.errors import ConfigurationError, StoreUnavailable
from ailib_store_sql import SQLStore, define, operations
from tests.servers.sql import MYSQL_URL, mysql_url

from .test_sql_batch import sent_by_pooled_connection


@pytest.fixture
def store(any_url: str) -> Iterator[SQLStore]:
    opened = ailib.open_store(any_url, namespace=f"t-{uuid.uuid4().hex[:10]}")
    assert isinstance(opened, SQLStore)
    yield opened
    for summary in opened.list(limit=200):
        opened.delete(summary.session_id)
    opened.purge_expired()
    opened.close()


class Statements:
    """Records the SQL a store's engine sends."""

    def __init__(self, engine: sa.Engine) -> None:
        self.seen: list[str] = []
        sa.event.listen(engine, "before_cursor_execute", self._record)

    def _record(self, _conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        self.seen.append(" ".join(statement.split()))

    def during(self, action: Any) -> list[str]:
        self.seen = []
        action()
        return [s for s in self.seen if not s.upper().startswith(("BEGIN", "SAVEPOINT"))]


# -- URLs and options ---------------------------------------------------------------------


def test_sqlite_url_options_are_consumed_and_folders_made(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "s.db"
    url = f"sqlite:///{path}?ttl=1h&namespace=app&table_prefix=chat_&timeout=5"
    with ailib.open_store(url) as store:
        assert isinstance(store, SQLStore)
        assert path.exists()
        assert store.namespace == "app"
        assert store.default_ttl == 3600
        assert store.tables.sessions.name == "chat_sessions"
        assert dict(store.engine.url.query) == {"timeout": "5"}
        assert sa.inspect(store.engine).has_table("chat_sessions")
        store.create(session_id="kept")
    with ailib.open_store(url) as again:
        assert again.exists("kept")


def test_schemes_without_a_driver_get_the_installed_one() -> None:
    url = mysql_url().replace("mysql+pymysql://", "mariadb://")
    with ailib.open_store(url) as store:
        assert isinstance(store, SQLStore)
        assert store.engine.url.drivername == "mariadb+pymysql"


def test_password_never_shown() -> None:
    url = MYSQL_URL.replace("root@", "root:hunter2@")
    with pytest.raises(StoreUnavailable) as caught:
        ailib.open_store(url)
    text = str(caught.value)
    assert "hunter2" not in text
    assert "***" in text
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__


@pytest.mark.parametrize(
    "url",
    [
        "postgresql+psycopg://app:hunter2@127.0.0.1:1/test?connect_timeout=3",
        "mysql+pymysql://app:hunter2@127.0.0.1:1/test?connect_timeout=3",
    ],
)
def test_unreachable_server_is_store_unavailable(url: str) -> None:
    with pytest.raises(StoreUnavailable, match=r"cannot reach the database at .*\*\*\*@127") as c:
        ailib.open_store(url)
    assert "hunter2" not in str(c.value)
    assert "hunter2" not in repr(c.value)


def test_unwritable_sqlite_path_is_store_unavailable(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(StoreUnavailable, match="cannot create the folder"):
        ailib.open_store(f"sqlite:///{blocker}/sub/s.db")


#: Refused on open by the sync store and its async twin alike.
BAD_OPTIONS = [
    ("sqlite://?tablex=1", "unknown option"),
    ("sqlite://?table_prefix=1bad", "invalid table_prefix"),
    ("sqlite://?create=maybe", "not a boolean"),
    ("sqlite://?pool_size=none", "pool_size"),
]


@pytest.mark.parametrize(
    ("url", "message"),
    [*BAD_OPTIONS, ("mysql+mysqldb://root@127.0.0.1/test", r"ailib-store-sql\[mysql\]")],
)
def test_bad_configuration(url: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        ailib.open_store(url)


def test_repr_masks_password(tmp_path: Path) -> None:
    store = SQLStore(f"sqlite:///{tmp_path}/x.db")
    assert "sqlite:///" in repr(store)
    pg = "postgresql+psycopg://postgres:hunter2@127.0.0.1:5432/test"
    assert "hunter2" not in repr(ailib.make_url(pg))
    store.close()


def test_table_prefixes_are_separate_stores(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/shared.db"
    with ailib.open_store(url, table_prefix="a_") as a, ailib.open_store(url) as b:
        a.create(session_id="same")
        assert not b.exists("same")


# -- statements per operation --------------------------------------------------------------


def test_append_cost_does_not_grow_with_history(store: SQLStore) -> None:
    short = store.create(messages=[{"role": "user", "content": "x"}] * 5).session_id
    long = store.create(messages=[{"role": "user", "content": "x"}] * 2000).session_id
    spy = Statements(store.engine)
    message = {"role": "user", "content": "more"}
    on_short = spy.during(lambda: store.append(short, message))
    on_long = spy.during(lambda: store.append(long, message))
    assert on_short == on_long
    # Lock/advance the session row, record the op id, one INSERT of messages (one statement
    # on PostgreSQL, one batch on MariaDB), COMMIT.
    assert len(on_long) <= 5
    messages_table = store.tables.messages.name
    assert sum(f"INSERT INTO {messages_table} " in s for s in on_long) == 1
    assert not any(s.startswith("SELECT") and messages_table in s for s in on_long)


def test_load_is_two_queries_whatever_the_length(store: SQLStore) -> None:
    session_id = store.create(messages=[{"role": "user", "content": "x"}] * 500).session_id
    spy = Statements(store.engine)
    loaded: list[int] = []
    queries = spy.during(lambda: loaded.append(len(store.load(session_id))))
    assert loaded == [500]
    assert [s.split()[0] for s in queries if s.split()[0] != "COMMIT"] == ["SELECT", "SELECT"]
    assert any("ORDER BY" in s and "seq" in s for s in queries)
    tail = spy.during(lambda: store.load(session_id, last=3))
    assert len([s for s in tail if s.startswith("SELECT")]) == 2


def test_checkpoints_are_pointers_until_a_rewrite(store: SQLStore) -> None:
    session = store.create(messages=[{"role": "user", "content": str(n)} for n in range(4)])
    number = store.checkpoint(session.session_id, label="four")
    checkpoints = store.tables.checkpoints

    def copied() -> Any:
        with store.engine.connect() as conn:
            return conn.execute(
                sa.select(checkpoints.c.messages).where(
                    checkpoints.c.namespace == store.namespace,
                    checkpoints.c.number == number,
                    checkpoints.c.session_id == session.session_id,
                )
            ).scalar_one()

    store.append(session.session_id, {"role": "user", "content": "4"})
    assert copied() is None
    assert store.pop(session.session_id, 3) == [
        {"role": "user", "content": str(n)} for n in (2, 3, 4)
    ]
    assert copied() is not None
    store.restore(session.session_id, number)
    contents = [m["content"] for m in store.load(session.session_id).messages]
    assert contents == ["0", "1", "2", "3"]


# -- TTL ------------------------------------------------------------------------------------


def test_purge_deletes_rows_of_every_table_in_batches(
    store: SQLStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(operations, "PURGE_BATCH", 2)
    doomed = []
    for _ in range(5):
        session = store.create(ttl=3600, messages=[{"role": "user", "content": "x"}])
        store.checkpoint(session.session_id)
        doomed.append(session.session_id)
    keeper = store.create(messages=[{"role": "user", "content": "stay"}]).session_id
    later = time.time() + 7200
    assert store._purge(later) == 5
    t = define(store.tables.prefix)
    with store.engine.connect() as conn:
        for table in (t.sessions, t.messages, t.checkpoints):
            left = conn.execute(
                sa.select(table.c.session_id).where(table.c.namespace == store.namespace)
            ).scalars()
            assert set(left) <= {keeper}, table.name
    assert store.load(keeper).messages == [{"role": "user", "content": "stay"}]


def test_mysql_connections_are_rolled_back_on_return_only_when_a_transaction_is_open() -> None:
    store = SQLStore(mysql_url(), namespace=f"t-{uuid.uuid4().hex}", pool_size=1)
    try:
        store.create(session_id="s")
        sent = sent_by_pooled_connection(store)
        store.append("s", {"role": "user", "content": "hi"})
        # MariaDB: the append is one batch ending with its COMMIT.
        assert sent[-1].endswith("COMMIT")
        assert "ROLLBACK" not in sent
        # A connection given back inside a transaction that wrote is rolled back on its return.
        fairy = store.engine.raw_connection()
        cursor = fairy.cursor()
        cursor.execute(f"UPDATE {store.tables.sessions.name} SET version = version WHERE 1 = 0")
        cursor.close()
        fairy.close()
        assert sent[-1] == "ROLLBACK"
    finally:
        store.delete("s")
        store.close()
