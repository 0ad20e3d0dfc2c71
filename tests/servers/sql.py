"""Database URLs for the SQL store tests: SQLite in tmp_path, and the local PostgreSQL and
MariaDB servers (skipped with instructions on a laptop without them, failing under CI)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ailib.testing.servers import require_server

PG_URL = os.environ.get(
    "AILIB_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
MYSQL_URL = os.environ.get("AILIB_TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306/test")

PG_HOW = (
    "start PostgreSQL with trust auth for 127.0.0.1 and a database 'test' "
    "(e.g. `docker run -p 5432:5432 -e POSTGRES_HOST_AUTH_METHOD=trust -e POSTGRES_DB=test "
    "postgres:16`), or set AILIB_TEST_POSTGRES_URL"
)
MYSQL_HOW = (
    "start MariaDB/MySQL with user root, empty password and a database 'test' "
    "(e.g. `docker run -p 3306:3306 -e MARIADB_ALLOW_EMPTY_ROOT_PASSWORD=1 "
    "-e MARIADB_DATABASE=test mariadb:11`), or set AILIB_TEST_MYSQL_URL"
)


def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'db' / 'sessions.db'}"


def postgres_url() -> str:
    require_server("PostgreSQL", "127.0.0.1", 5432, PG_HOW)
    return PG_URL


def mysql_url() -> str:
    require_server("MariaDB", "127.0.0.1", 3306, MYSQL_HOW)
    return MYSQL_URL


@pytest.fixture
def postgres_store_url() -> str:
    """The local PostgreSQL test database (skips on a laptop without it, fails under CI)."""
    return postgres_url()


@pytest.fixture
def mariadb_store_url() -> str:
    """The local MariaDB test database (skips on a laptop without it, fails under CI)."""
    return mysql_url()
