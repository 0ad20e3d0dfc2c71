"""The plugin contract: the hooks an ailib plugin may implement (with ``@ailib.hookimpl``).

Stores are not found through these hooks but through the ``ailib.stores`` entry points;
these carry what cuts across every store.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pluggy

from ailib.messages import Message

hookspec = pluggy.HookspecMarker("ailib")
#: Marks a plugin's implementation of a hook; also ``ailib.hookimpl``.
hookimpl = pluggy.HookimplMarker("ailib")


@hookspec
def ailib_configure_store(store: Any, options: dict[str, str]) -> None:
    """Called when ``open_store`` or ``open_async_store`` builds a store: pop the URL options
    this plugin handles from ``options`` (keyword arguments arrive here too, not always as
    str) and register per-store plugins with ``store.hooks.register(...)``, or wrap the
    store's public methods (tracing does)."""


@hookspec
def ailib_after_read(
    store: Any, session_id: str, messages: list[Message], metadata: dict[str, Any]
) -> None:
    """Called on a store's registered plugins on what was read, before it is decoded; may
    change messages and (encoded) metadata in place (decryption does)."""


@hookspec(firstresult=True)
def ailib_user_key(store: Any, user_id: str) -> str | None:
    """The form ``user_id`` is stored (and so listed) under, if a plugin changes it."""


@hookspec
def ailib_before_write(
    store: Any,
    session_id: str,
    messages: list[Message],
    metadata: dict[str, Any],
    counts: dict[str, Counter[str]],
) -> None:
    """Called on a store's registered plugins before messages or (encoded) metadata are
    written; may change them in place (redaction does). Must not do I/O: to keep a running
    total in the session's metadata, add to ``counts[metadata_key]`` and the store adds it
    to what is stored."""
