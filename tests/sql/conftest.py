"""Each SQL database in turn, for the SQL store tests (URLs from tests/servers/sql.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.servers.sql import mysql_url, postgres_url, sqlite_url


@pytest.fixture(params=["sqlite", "postgresql", "mysql"])
def any_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each SQL database in turn."""
    if request.param == "sqlite":
        return sqlite_url(tmp_path)
    if request.param == "postgresql":
        return postgres_url()
    return mysql_url()
