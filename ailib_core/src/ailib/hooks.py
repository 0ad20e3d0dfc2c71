"""Plugin managers: the global one (plugins from the ``ailib`` entry points) and a small
per-store one for plugins a store was configured with."""

from __future__ import annotations

from collections import Counter, defaultdict
from functools import cache
from typing import Any

import pluggy

from ailib import hookspecs
from ailib.hookspecs import hookimpl
from ailib.messages import Message

__all__ = ("StoreHooks", "hookimpl", "plugin_manager")


@cache
def plugin_manager() -> pluggy.PluginManager:
    """The process-wide manager, loaded once from the ``ailib`` entry-point group."""
    manager = pluggy.PluginManager("ailib")
    manager.add_hookspecs(hookspecs)
    from ailib.builtin_plugins import EncryptionPlugin, RedactionPlugin, TracingPlugin

    manager.register(RedactionPlugin(), name="ailib.redaction")
    manager.register(EncryptionPlugin(), name="ailib.encryption")
    manager.register(TracingPlugin(), name="ailib.tracing")
    manager.load_setuptools_entrypoints("ailib")
    return manager


class StoreHooks:
    """The plugins one store runs on its writes; empty (and free) unless configured."""

    __slots__ = ("_manager",)

    def __init__(self) -> None:
        self._manager: pluggy.PluginManager | None = None

    def register(self, plugin: object, name: str | None = None) -> None:
        if self._manager is None:
            self._manager = pluggy.PluginManager("ailib")
            self._manager.add_hookspecs(hookspecs)
        self._manager.register(plugin, name)

    def has(self, name: str) -> bool:
        """Whether a plugin is registered under ``name`` (``"encryption"``, ``"redaction"``)."""
        return self._manager is not None and self._manager.has_plugin(name)

    def __bool__(self) -> bool:
        """True once a plugin is registered (writes then copy messages before hooks run)."""
        return self._manager is not None

    def after_read(
        self, store: Any, session_id: str, messages: list[Message], metadata: dict[str, Any]
    ) -> None:
        if self._manager is not None:
            self._manager.hook.ailib_after_read(
                store=store, session_id=session_id, messages=messages, metadata=metadata
            )

    def user_key(self, store: Any, user_id: str) -> str:
        if self._manager is None:
            return user_id
        stored: str | None = self._manager.hook.ailib_user_key(store=store, user_id=user_id)
        return user_id if stored is None else stored

    def before_write(
        self, store: Any, session_id: str, messages: list[Message], metadata: dict[str, Any]
    ) -> dict[str, Counter[str]]:
        """Run the hooks; return the running totals they asked to add to, by metadata key."""
        if self._manager is None:
            return {}
        counts: dict[str, Counter[str]] = defaultdict(Counter)
        self._manager.hook.ailib_before_write(
            store=store, session_id=session_id, messages=messages, metadata=metadata, counts=counts
        )
        return {key: c for key, c in counts.items() if c}
