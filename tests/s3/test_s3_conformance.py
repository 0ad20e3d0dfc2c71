"""The store conformance suite against moto's S3 server (real HTTP on 127.0.0.1) and against
moto's in-process mock (``s3+mock://``, what users get for their own tests)."""

from __future__ import annotations

import uuid

import pytest

from ailib.testing.conformance import StoreConformance


class TestS3OnMotoServer(StoreConformance):
    @pytest.fixture
    def store_url(self, moto_url: str) -> str:
        return moto_url


class TestS3OnMockAws(StoreConformance):
    @pytest.fixture
    def store_url(self) -> str:
        return f"s3+mock://mock-{uuid.uuid4().hex[:8]}/sessions"
