"""The store conformance suite against moto's S3 server (real HTTP on 127.0.0.1) and against
moto's in-process mock (``s3+mock://``, what users get for their own tests)."""

from __future__ import annotations

import uuid

import pytest

from ailib.store import SessionStore
from ailib.testing import Damage
from ailib.testing.conformance import StoreConformance

from .corruption import corrupt


class _S3Damage:
    def corrupt_session(self, store: SessionStore, session_id: str, damage: Damage) -> None:
        """Damage the stored session with a raw boto3 client (see ``corruption.py``)."""
        corrupt(store, session_id, damage.value)


class TestS3OnMotoServer(_S3Damage, StoreConformance):
    @pytest.fixture
    def store_url(self, moto_url: str) -> str:
        return moto_url


class TestS3OnMockAws(_S3Damage, StoreConformance):
    @pytest.fixture
    def store_url(self) -> str:
        return f"s3+mock://mock-{uuid.uuid4().hex[:8]}/sessions"
