"""The conformance suite on SQLite (a file), PostgreSQL and MariaDB."""

from __future__ import annotations

from pathlib import Path

import pytest

from ailib.testing import StoreConformance

from .conftest import mysql_url, postgres_url, sqlite_url


class TestSQLiteConformance(StoreConformance):
    @pytest.fixture
    def store_url(self, tmp_path: Path) -> str:
        return sqlite_url(tmp_path)


class TestSQLiteMemoryConformance(StoreConformance):
    """``sqlite://``: one in-memory database per store object, shared by its threads."""

    @pytest.fixture
    def store_url(self) -> str:
        return "sqlite://"

    @pytest.mark.skip(reason="each sqlite:// store is its own database, so namespaces are too")
    def test_namespaces_are_isolated(self) -> None:
        raise AssertionError("skipped")


@pytest.mark.server("postgresql")
class TestPostgresConformance(StoreConformance):
    @pytest.fixture
    def store_url(self) -> str:
        return postgres_url()


@pytest.mark.server("mariadb")
class TestMariaDBConformance(StoreConformance):
    @pytest.fixture
    def store_url(self) -> str:
        return mysql_url()
