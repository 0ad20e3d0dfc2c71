"""Test support shipped with ailib: the store conformance suite, offline LLM doubles and the
pytest plugin (registered through ``pytest11``; it adds ``--ailib-store`` and the
``session_store`` fixture).

A store author runs the whole suite against their store with::

    from ailib.testing import StoreConformance

    class TestMyStore(StoreConformance):
        @pytest.fixture
        def store_url(self):
            return "mystore://localhost/test"
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ailib.testing.async_conformance import AsyncStoreConformance
from ailib.testing.capabilities import Capability, Damage
from ailib.testing.conformance import StoreConformance
from ailib.testing.servers import require_server

if TYPE_CHECKING:
    from ailib.testing.fake_client import FakeChatClient
    from ailib.testing.openai_server import FakeOpenAIServer

__all__ = (
    "AsyncStoreConformance",
    "Capability",
    "Damage",
    "FakeChatClient",
    "FakeOpenAIServer",
    "StoreConformance",
    "require_server",
)


def __getattr__(name: str) -> Any:
    if name == "FakeChatClient":
        from ailib.testing.fake_client import FakeChatClient

        return FakeChatClient
    if name == "FakeOpenAIServer":
        from ailib.testing.openai_server import FakeOpenAIServer

        return FakeOpenAIServer
    raise AttributeError(f"module 'ailib.testing' has no attribute {name!r}")
