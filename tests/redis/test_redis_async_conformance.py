"""The async twin passes the whole conformance suite, heartbeat case included, on each backend
the sync store supports: each class is the sync one (same server, database and fixtures) with
the async suite's store factory."""

from __future__ import annotations

from ailib.testing.async_conformance import AsyncStoreConformance

from . import test_redis_conformance as sync


class TestAsyncRealRedis(AsyncStoreConformance, sync.TestRealRedis):
    """The shared server at 127.0.0.1:6379, in the sync conformance tests' database."""


class TestAsyncFakeRedis(AsyncStoreConformance, sync.TestFakeRedis):
    """fakeredis's asyncio client, on the same in-process server as the sync tests."""


class TestAsyncRedisCluster(AsyncStoreConformance, sync.TestRedisCluster):
    """The 3-master cluster that the suite starts on loopback ports."""
