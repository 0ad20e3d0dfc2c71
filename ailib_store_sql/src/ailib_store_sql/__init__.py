"""ailib sessions in SQL databases: SQLite, PostgreSQL, MySQL/MariaDB via SQLAlchemy 2 Core.

Open it by URL through ``ailib.open_store("sqlite:///sessions.db")`` (or ``postgresql+psycopg://``,
``mysql+pymysql://``, ``mariadb+pymysql://``), or its asyncio twin ``AsyncSQLStore``
(``ailib_store_sql.aio``) through ``ailib.open_async_store`` with the same URLs; see
``docs/stores/sql.md``.
"""

from __future__ import annotations

from ailib_store_sql.migrations import upgrade, upgrade_async
from ailib_store_sql.schema import LATEST as SCHEMA_VERSION
from ailib_store_sql.schema import Tables, define
from ailib_store_sql.store import SQLStore

__all__ = ("SCHEMA_VERSION", "SQLStore", "Tables", "define", "upgrade", "upgrade_async")
