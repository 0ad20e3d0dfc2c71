"""The Redis store passes the whole conformance suite on each backend it supports."""

from __future__ import annotations

import pytest

from ailib.testing import StoreConformance

from .damage import RedisCorruption


class TestRealRedis(RedisCorruption, StoreConformance):
    """The shared server at 127.0.0.1:6379, in a database of these tests."""

    @pytest.fixture
    def store_url(self, shared_redis: str) -> str:
        return shared_redis


class TestFakeRedis(RedisCorruption, StoreConformance):
    @pytest.fixture
    def store_url(self) -> str:
        return "fakeredis://conformance"


class TestRedisCluster(RedisCorruption, StoreConformance):
    """A 3-master cluster that the suite starts on loopback ports."""

    @pytest.fixture
    def store_url(self, redis_cluster: str) -> str:
        return redis_cluster
