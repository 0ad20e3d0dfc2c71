"""Listing one user's sessions on MariaDB names the user's index in a FORCE INDEX hint, and
the server takes it: at a million sessions MariaDB otherwise scanned the namespace's
updated_at index for a rare user (bench/scale_bench.py). This small table does not
reproduce that plan; the test holds the hint to an index that exists and is used."""

from __future__ import annotations

import sqlalchemy as sa

import ailib
from ailib_store_sql import statements
from ailib_store_sql.schema import define
from tests.servers.sql import mysql_url


def test_mariadb_lists_a_user_through_the_user_index() -> None:
    url = mysql_url()
    store = ailib.open_store(url + "?table_prefix=plan_")
    try:
        for n in range(30):
            store.create({"user_id": "common" if n % 10 else "rare"})
        statement = statements.list_sessions(define("plan_"), by_user=True, after=False)
        engine = sa.create_engine(url)
        with engine.connect() as conn:
            compiled = statement.compile(dialect=conn.dialect)
            params = {"p_namespace": "default", "p_now": 0.0, "p_user": "rare", "p_limit": 50}
            plan = (
                conn.exec_driver_sql("EXPLAIN " + str(compiled), compiled.construct_params(params))
                .mappings()
                .all()
            )
        engine.dispose()
        assert [row["key"] for row in plan] == ["ix_plan_sessions_user"]
        assert len(list(store.list(user_id="rare"))) == 3
    finally:
        with sa.create_engine(url).begin() as c:
            for table in (
                "plan_ops",
                "plan_checkpoints",
                "plan_messages",
                "plan_sessions",
                "plan_schema_version",
            ):
                c.exec_driver_sql(f"DROP TABLE IF EXISTS {table}")
        store.close()
