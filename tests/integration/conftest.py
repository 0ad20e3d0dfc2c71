"""Every backend by URL, for tests of what must work the same on all of them."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

BACKENDS = ["memory", "sqlite", "postgresql", "mariadb", "redis", "redis-cluster", "s3"]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str]:
    """(backend name, a store URL with a namespace of this test's own)."""
    namespace = f"it{uuid.uuid4().hex[:10]}"
    name = request.param
    if name == "memory":
        base = f"memory://{namespace}"
    elif name == "sqlite":
        base = f"sqlite:///{tmp_path / 'sessions.db'}"
    elif name == "postgresql":
        base = request.getfixturevalue("postgres_store_url")
    elif name == "mariadb":
        base = request.getfixturevalue("mariadb_store_url")
    elif name == "redis":
        base = request.getfixturevalue("shared_redis")
    elif name == "redis-cluster":
        base = request.getfixturevalue("redis_cluster")
    else:
        base = request.getfixturevalue("moto_url")
    separator = "&" if "?" in base else "?"
    return name, f"{base}{separator}namespace={namespace}"
