"""Damage what a SQL store stored, behind its back, with raw SQL on its tables (the
conformance suite's ``corrupt_session`` and the SQL store's own corruption tests)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from ailib_store_sql import Tables

#: What each kind of damage is called (``ailib.testing.Damage`` member names, lower case).
KINDS = ("metadata", "message", "missing_message", "count")

GARBAGE = '\ufffd{"not json'


def _raw_engine(store: Any) -> tuple[sa.Engine, bool]:
    """A synchronous engine on the store's database, and whether the caller disposes of it
    (an in-memory SQLite database is reachable only through the store's own engine)."""
    engine = store.engine
    if isinstance(engine, AsyncEngine):
        url = engine.url
        backend = url.get_backend_name()
        driver = "postgresql+psycopg" if backend == "postgresql" else f"{backend}+pymysql"
        return sa.create_engine(url.set(drivername=driver)), True
    return engine, False


def kind_of(damage: object) -> str:
    """``damage`` (a ``Damage`` member or its name) as one of ``KINDS``."""
    name = str(getattr(damage, "name", damage)).lower()
    if name not in KINDS:
        raise ValueError(f"unknown damage {damage!r}; expected one of {KINDS}")
    return name


def damage(store: Any, session_id: str, what: object) -> None:
    """Damage session ``session_id`` of ``store`` (a ``SQLStore`` or ``AsyncSQLStore``)."""
    kind = kind_of(what)
    if not hasattr(store, "tables"):
        store = store.store  # the conformance suite's BlockingStore over an async store
    tables: Tables = store.tables
    s, m = tables.sessions, tables.messages
    session = sa.and_(s.c.namespace == store.namespace, s.c.session_id == session_id)
    log = sa.and_(m.c.namespace == store.namespace, m.c.session_id == session_id)
    engine, own = _raw_engine(store)
    try:
        with engine.begin() as conn:
            count = conn.execute(sa.select(s.c.message_count).where(session)).scalar_one()
            # The newest messages, so that a load of the last two sees the damage too.
            statement: sa.Executable
            if kind == "metadata":
                statement = (
                    sa.update(s).where(session).values(metadata=GARBAGE, user_id="\x01garbage")
                )
            elif kind == "message":
                statement = sa.update(m).where(log, m.c.seq == count - 1).values(body=GARBAGE)
            elif kind == "missing_message":
                statement = sa.delete(m).where(log, m.c.seq == max(0, count - 2))
            else:
                statement = sa.update(s).where(session).values(message_count=count + 3)
            changed = conn.execute(statement).rowcount
    finally:
        if own:
            engine.dispose()
    if changed != 1:
        raise AssertionError(f"damaging {kind} of {session_id!r} changed {changed} rows, not 1")
