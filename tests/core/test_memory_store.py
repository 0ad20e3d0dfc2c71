"""The memory store runs the whole conformance suite."""

from __future__ import annotations

import pytest

from ailib.store import SessionStore
from ailib.testing import Damage, StoreConformance
from tests.core.memory_damage import damage_memory


class TestMemoryStore(StoreConformance):
    @pytest.fixture
    def store_url(self) -> str:
        return "memory://conformance"

    def corrupt_session(self, store: SessionStore, session_id: str, damage: Damage) -> None:
        damage_memory(store, session_id, damage)
