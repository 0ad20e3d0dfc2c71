"""The memory store runs the whole conformance suite."""

from __future__ import annotations

import pytest

from ailib.testing import StoreConformance


class TestMemoryStore(StoreConformance):
    @pytest.fixture
    def store_url(self) -> str:
        return "memory://conformance"
