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

import importlib
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from ailib.testing.async_conformance import AsyncStoreConformance
    from ailib.testing.capabilities import Capability, Damage
    from ailib.testing.conformance import StoreConformance
    from ailib.testing.fake_client import FakeChatClient
    from ailib.testing.openai_server import FakeOpenAIServer
    from ailib.testing.servers import require_server

__all__ = (
    "AsyncStoreConformance",
    "Capability",
    "Damage",
    "FakeChatClient",
    "FakeOpenAIServer",
    "StoreConformance",
    "require_server",
)

#: Where each name lives. Imported on first use, so that the offline doubles
#: (``FakeChatClient``, ``FakeOpenAIServer``) work where pytest is not installed.
_LAZY: Final = {
    "AsyncStoreConformance": "ailib.testing.async_conformance",
    "Capability": "ailib.testing.capabilities",
    "Damage": "ailib.testing.capabilities",
    "FakeChatClient": "ailib.testing.fake_client",
    "FakeOpenAIServer": "ailib.testing.openai_server",
    "StoreConformance": "ailib.testing.conformance",
    "require_server": "ailib.testing.servers",
}

if not TYPE_CHECKING:

    def __getattr__(name: str) -> Any:
        module = _LAZY.get(name)
        if module is None:
            raise AttributeError(f"module 'ailib.testing' has no attribute {name!r}")
        return getattr(importlib.import_module(module), name)
