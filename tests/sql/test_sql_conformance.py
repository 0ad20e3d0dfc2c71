"""The conformance suite on SQLite (a file and in memory), PostgreSQL and MariaDB: for the
sync store, and for its async twin (``open_async_store``), whose suite adds the case that the
event loop is never blocked while 50 tasks write."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ailib.testing import AsyncStoreConformance, Capability, StoreConformance
from tests.servers.sql import mysql_url, postgres_url, sqlite_url
from tests.sql._damage import damage as damage_session


class Corruptible:
    """``corrupt_session``: damage the stored rows with raw SQL (``tests.sql._damage``)."""

    def corrupt_session(self, store: Any, session_id: str, damage: Any) -> None:
        damage_session(store, session_id, damage)


class SQLiteFile(Corruptible):
    @pytest.fixture
    def store_url(self, tmp_path: Path) -> str:
        return sqlite_url(tmp_path)


class SQLiteMemory(Corruptible):
    """``sqlite://``: one in-memory database per store object, shared by its threads (or,
    for the async twin, taken in turns by its tasks)."""

    lacks = frozenset({Capability.SHARED})

    @pytest.fixture
    def store_url(self) -> str:
        return "sqlite://"


class Postgres(Corruptible):
    pytestmark = [pytest.mark.server("postgresql")]

    @pytest.fixture
    def store_url(self) -> str:
        return postgres_url()


class MariaDB(Corruptible):
    pytestmark = [pytest.mark.server("mariadb")]

    @pytest.fixture
    def store_url(self) -> str:
        return mysql_url()


class TestSQLiteConformance(SQLiteFile, StoreConformance):
    pass


class TestSQLiteMemoryConformance(SQLiteMemory, StoreConformance):
    pass


class TestPostgresConformance(Postgres, StoreConformance):
    pass


class TestMariaDBConformance(MariaDB, StoreConformance):
    pass


class TestAsyncSQLiteConformance(SQLiteFile, AsyncStoreConformance):
    pass


class TestAsyncSQLiteMemoryConformance(SQLiteMemory, AsyncStoreConformance):
    pass


class TestAsyncPostgresConformance(Postgres, AsyncStoreConformance):
    pass


class TestAsyncMariaDBConformance(MariaDB, AsyncStoreConformance):
    pass
