"""Schema versions: an old database upgrades without losing rows; create=false refuses."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

import ailib
from ailib.codec import dumps
from ailib.errors import ConfigurationError
from ailib.url import make_url
from ailib_store_sql import SCHEMA_VERSION, define, upgrade
from ailib_store_sql.engine import make_engines, sqlalchemy_url
from ailib_store_sql.migrations import read_version


@pytest.fixture
def prefix(any_url: str) -> Iterator[str]:
    """A table prefix of this test's own; its tables are dropped afterwards."""
    name = f"m{uuid.uuid4().hex[:8]}_"
    yield name
    engine = sa.create_engine(sqlalchemy_url(make_url(any_url), {}))
    define(name).metadata.drop_all(engine)
    engine.dispose()


def engine_for(url: str) -> sa.Engine:
    parsed = make_url(url)
    return make_engines(
        sqlalchemy_url(parsed, {}), parsed.render(), pool_size=None, pool_pre_ping=False
    ).engine


def rows(conn: sa.Connection, table: sa.Table) -> int:
    return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


def test_upgrade_from_v1_keeps_every_row(any_url: str, prefix: str) -> None:
    engine = engine_for(any_url)
    v1 = define(prefix, 1)
    assert upgrade(engine, v1, target=1) == 0
    assert "user_id" not in {c["name"] for c in sa.inspect(engine).get_columns(v1.sessions.name)}
    with engine.begin() as conn:
        for n in range(30):
            conn.execute(
                sa.insert(v1.sessions).values(
                    namespace="old",
                    session_id=f"s{n:02d}",
                    kind="chat",
                    metadata=dumps({"user_id": f"u{n % 3}"} if n % 5 else {"other": 1}),
                    version=3,
                    message_count=2,
                    created_at=1000.0 + n,
                    updated_at=2000.0 + n,
                )
            )
            conn.execute(
                sa.insert(v1.messages),
                [
                    {"namespace": "old", "session_id": f"s{n:02d}", "seq": i, "body": body}
                    for i, body in enumerate(
                        [
                            dumps({"role": "user", "content": f"q{n}"}),
                            dumps({"role": "assistant", "content": "a"}),
                        ]
                    )
                ],
            )
        conn.execute(
            sa.insert(v1.checkpoints).values(
                namespace="old",
                session_id="s01",
                number=1,
                created_at=1500.0,
                message_count=1,
                metadata=dumps({}),
            )
        )
    engine.dispose()

    with ailib.open_store(any_url, namespace="old", table_prefix=prefix) as store:
        with store.engine.connect() as conn:  # type: ignore[attr-defined]
            tables = define(prefix)
            assert read_version(conn, tables) == SCHEMA_VERSION
            assert (
                conn.execute(sa.select(sa.func.count()).select_from(tables.sessions)).scalar() == 30
            )
            assert (
                conn.execute(sa.select(sa.func.count()).select_from(tables.messages)).scalar() == 60
            )
        assert store.load("s07").messages == [
            {"role": "user", "content": "q7"},
            {"role": "assistant", "content": "a"},
        ]
        # The backfilled column serves listing by user: n % 3 == 1 and n % 5 != 0.
        expected = [f"s{n:02d}" for n in reversed(range(30)) if n % 3 == 1 and n % 5]
        assert [s.session_id for s in store.list(user_id="u1", limit=100)] == expected
        assert [c.version for c in store.checkpoints("s01")] == [1]
        assert len(store.list(limit=100)) == 30


def test_new_database_has_the_latest_shape(any_url: str, prefix: str) -> None:
    with ailib.open_store(any_url, table_prefix=prefix) as store:
        inspector = sa.inspect(store.engine)  # type: ignore[attr-defined]
        latest = define(prefix)
        for table in (latest.sessions, latest.messages, latest.checkpoints):
            assert {c["name"] for c in inspector.get_columns(table.name)} == set(table.c.keys())
            assert {i["name"] for i in inspector.get_indexes(table.name)} >= {
                i.name for i in table.indexes
            }


def test_create_false_refuses_missing_or_old_tables(any_url: str, prefix: str) -> None:
    with pytest.raises(ConfigurationError, match=r"do not exist.*create=false"):
        ailib.open_store(any_url, table_prefix=prefix, create="false")
    engine = engine_for(any_url)
    upgrade(engine, define(prefix, 1), target=1)
    engine.dispose()
    with pytest.raises(ConfigurationError, match="schema version 1"):
        ailib.open_store(any_url, table_prefix=prefix, create="false")
    ailib.open_store(any_url, table_prefix=prefix).close()
    ailib.open_store(any_url, table_prefix=prefix, create="false").close()


def test_newer_schema_is_refused(any_url: str, prefix: str) -> None:
    ailib.open_store(any_url, table_prefix=prefix).close()
    engine = engine_for(any_url)
    with engine.begin() as conn:
        conn.execute(sa.update(define(prefix).schema_version).values(version=SCHEMA_VERSION + 1))
    engine.dispose()
    with pytest.raises(ConfigurationError, match="newer than this ailib-store-sql"):
        ailib.open_store(any_url, table_prefix=prefix)


def test_upgrade_from_v2_adds_op_ids_and_old_sessions_keep_working(
    any_url: str, prefix: str
) -> None:
    engine = engine_for(any_url)
    v2 = define(prefix, 2)
    assert upgrade(engine, v2, target=2) == 0
    with engine.begin() as conn:
        for n in range(5):
            conn.execute(
                sa.insert(v2.sessions).values(
                    namespace="old",
                    session_id=f"s{n}",
                    kind="chat",
                    metadata=dumps({"user_id": "u"}),
                    user_id="u",
                    version=2,
                    message_count=1,
                    created_at=1000.0 + n,
                    updated_at=2000.0 + n,
                )
            )
            conn.execute(
                sa.insert(v2.messages).values(
                    namespace="old",
                    session_id=f"s{n}",
                    seq=0,
                    body=dumps({"role": "user", "content": "q"}),
                )
            )
    assert not sa.inspect(engine).has_table(f"{prefix}ops")
    engine.dispose()

    with ailib.open_store(any_url, namespace="old", table_prefix=prefix) as store:
        with store.engine.connect() as conn:  # type: ignore[attr-defined]
            assert read_version(conn, define(prefix)) == SCHEMA_VERSION == 3
            assert rows(conn, define(prefix).sessions) == 5
        assert store.load("s3").messages == [{"role": "user", "content": "q"}]
        assert store.append("s3", {"role": "user", "content": "new"}) == 3
        assert store.append("s3", {"role": "user", "content": "again"}, idempotency_key="k") == 4
        assert store.append("s3", {"role": "user", "content": "again"}, idempotency_key="k") == 4
        assert len(store.load("s3").messages) == 3
        assert [s.session_id for s in store.list(user_id="u")] == [f"s{n}" for n in (3, 4, 2, 1, 0)]
