"""The ailib pytest plugin: ``--ailib-store URL`` and a ``session_store`` fixture.

The fixture opens the URL (``--ailib-store``, else env ``AILIB_TEST_STORE_URL``, else
``memory://``) in a namespace of its own and deletes what the test stored afterwards.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from ailib.messages import MEMORY
from ailib.registry import open_store
from ailib.store import SessionStore


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.getgroup("ailib").addoption(
        "--ailib-store",
        default=None,
        help="store URL for the session_store fixture (default: $AILIB_TEST_STORE_URL or memory://)",
    )


@pytest.fixture
def session_store(request: pytest.FixtureRequest) -> Iterator[SessionStore]:
    """A store for one test, in a fresh namespace, emptied afterwards."""
    url = (
        request.config.getoption("--ailib-store")
        or os.environ.get("AILIB_TEST_STORE_URL")
        or "memory://"
    )
    store = open_store(url, namespace=f"test-{uuid.uuid4().hex[:12]}")
    try:
        yield store
    finally:
        empty(store)
        store.close()


def empty(store: SessionStore) -> None:
    """Delete every session in the store's namespace, users' memories included."""
    for kind in (None, MEMORY):
        while sum(store.delete(s.session_id) for s in store.list(limit=200, kind=kind)):
            pass
    store.purge_expired()
