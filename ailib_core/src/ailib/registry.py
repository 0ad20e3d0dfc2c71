"""Finding the store for a URL: the ``ailib.stores`` entry points, by scheme, loaded lazily.

Only the distribution that serves the requested scheme is imported, so opening ``memory://``
never imports redis, SQLAlchemy or boto3.
"""

from __future__ import annotations

import difflib
import importlib
import os
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from typing import TYPE_CHECKING, Any, Final, TypeVar

from ailib.base import BaseStore
from ailib.errors import ConfigurationError, UnknownStoreError
from ailib.hooks import plugin_manager
from ailib.storecore import StoreCore
from ailib.url import StoreURL, make_url

if TYPE_CHECKING:
    from ailib.async_base import AsyncBaseStore

__all__ = (
    "StoreInfo",
    "available_stores",
    "open_async_store",
    "open_store",
    "register_store",
    "resolve",
)

ENTRY_POINT_GROUP: Final = "ailib.stores"
DEFAULT_URL: Final = "memory://"
#: The URL options ailib-core's own plugins take (redaction, encryption at rest). A plugin
#: from another distribution may list its own in a ``url_options`` attribute, so that a
#: mistyped one gets a suggestion.
BUILTIN_PLUGIN_OPTIONS: Final = frozenset({"redact", "encrypt"})
BUILTIN_PLUGINS: Final = frozenset({"ailib.redaction", "ailib.encryption"})

#: Schemes served by ailib's own store distributions, for the "pip install" hint.
KNOWN_SCHEMES: Final = {
    "redis": "ailib-store-redis",
    "rediss": "ailib-store-redis",
    "redis+cluster": "ailib-store-redis",
    "rediss+cluster": "ailib-store-redis",
    "unix": "ailib-store-redis",
    "fakeredis": "ailib-store-redis",
    "sqlite": "ailib-store-sql",
    "postgresql": "ailib-store-sql",
    "postgres": "ailib-store-sql",
    "mysql": "ailib-store-sql",
    "mariadb": "ailib-store-sql",
    "s3": "ailib-store-s3",
    "s3+mock": "ailib-store-s3",
}


@dataclass(frozen=True)
class StoreInfo:
    """One installed scheme: who provides it and where the class lives."""

    scheme: str
    target: str
    distribution: str
    version: str


_registered: dict[str, type[BaseStore]] = {}
_lock = threading.Lock()


def _entry_points() -> dict[str, EntryPoint]:
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def available_stores() -> list[StoreInfo]:
    """Every scheme that ``open_store`` can serve, with the distribution providing it."""
    found = [
        StoreInfo(
            name,
            ep.value,
            ep.dist.name if ep.dist else "?",
            ep.dist.version if ep.dist else "?",
        )
        for name, ep in _entry_points().items()
    ]
    with _lock:
        found += [
            StoreInfo(name, f"{cls.__module__}:{cls.__qualname__}", "(registered in process)", "-")
            for name, cls in _registered.items()
        ]
    return sorted(found, key=lambda info: info.scheme)


class _Registration:
    """What ``register_store`` returns: usable as a context manager that undoes it."""

    def __init__(self, scheme: str) -> None:
        self.scheme = scheme

    def __enter__(self) -> str:
        return self.scheme

    def __exit__(self, *exc: object) -> None:
        with _lock:
            _registered.pop(self.scheme, None)


def register_store(scheme: str, cls: type[BaseStore]) -> _Registration:
    """Serve ``scheme`` with ``cls`` in this process (before entry points). As a context
    manager, the registration ends with the block."""
    if not scheme or not scheme.replace("+", "").replace("-", "").isalnum():
        raise ConfigurationError(f"invalid scheme {scheme!r}")
    with _lock:
        _registered[scheme.lower()] = cls
    return _Registration(scheme.lower())


def resolve(url: StoreURL) -> type[BaseStore]:
    """The store class for ``url``: its full scheme first, then the part before ``+``."""
    points = _entry_points()
    for scheme in dict.fromkeys((url.scheme, url.base_scheme)):
        with _lock:
            cls = _registered.get(scheme)
        if cls is not None:
            return cls
        if scheme in points:
            return _load(points[scheme], url)
    raise UnknownStoreError(_unknown_scheme_message(url, sorted(set(points) | set(_registered))))


def _load(ep: EntryPoint, url: StoreURL) -> type[BaseStore]:
    dist = ep.dist.name if ep.dist else "the distribution that registers it"
    try:
        cls = ep.load()
    except Exception as exc:
        raise ConfigurationError(
            f"the store for {url.scheme}:// ({ep.value}, from {dist}) failed to import: "
            f"{type(exc).__name__}: {exc}; reinstall {dist} or its dependencies"
        ) from exc
    if not (isinstance(cls, type) and issubclass(cls, BaseStore)):
        raise ConfigurationError(
            f"{ep.value} (from {dist}) registered for {url.scheme}:// is not a BaseStore subclass"
        )
    return cls


def _unknown_scheme_message(url: StoreURL, installed: list[str]) -> str:
    lines = [f"no store is installed for {url.scheme}:// (in {url.render()})."]
    package = KNOWN_SCHEMES.get(url.scheme) or KNOWN_SCHEMES.get(url.base_scheme)
    if package:
        lines.append(f"It is provided by {package}: pip install {package}")
    else:
        close = difflib.get_close_matches(url.scheme, installed + list(KNOWN_SCHEMES), n=1)
        if close:
            lines.append(f"Did you mean {close[0]!r}?")
    lines.append(f"Installed schemes: {', '.join(installed) or '(none)'}")
    return " ".join(lines)


def open_store(url: str | StoreURL | None = None, **options: Any) -> BaseStore:
    """Open the store named by ``url`` (else env ``AILIB_STORE_URL``, else ``memory://``).

    Options come from keyword arguments, then the URL's query string, then the store's
    defaults. Unknown options are an error naming the ones the store accepts.
    """
    parsed = _store_url(url)
    return _build(resolve(parsed), parsed, options)


def open_async_store(url: str | StoreURL | None = None, **options: Any) -> AsyncBaseStore:
    """The async twin of :func:`open_store`: same URLs, options and errors.

    A store that names no native ``async_twin`` runs in worker threads
    (:class:`ailib.async_adapter.ThreadedAsyncStore`), so it never blocks the event loop.
    """
    parsed = _store_url(url)
    return _build(_async_class(resolve(parsed), parsed), parsed, options)


def _store_url(url: str | StoreURL | None) -> StoreURL:
    if url is None:
        return make_url(os.environ.get("AILIB_STORE_URL") or DEFAULT_URL)
    if isinstance(url, str) and not url.strip():
        raise ConfigurationError(
            f"the store URL is empty ({url!r}); write scheme://…, for example 'memory://', "
            "'sqlite:///sessions.db' or 'redis://localhost:6379/0', or pass None to use "
            f"$AILIB_STORE_URL (else {DEFAULT_URL})"
        )
    return make_url(url)


def _async_class(cls: type[BaseStore], url: StoreURL) -> type[AsyncBaseStore]:
    # Imported here: asyncio is loaded only by programs that open an async store.
    from ailib.async_adapter import ThreadedAsyncStore
    from ailib.async_base import AsyncBaseStore

    if cls.async_twin is None:
        return ThreadedAsyncStore.over(cls)
    module_name, _, attribute = cls.async_twin.partition(":")
    try:
        twin = getattr(importlib.import_module(module_name), attribute)
    except Exception as exc:
        raise ConfigurationError(
            f"the async store for {url.scheme}:// ({cls.async_twin}) failed to import: "
            f"{type(exc).__name__}: {exc}; install its async driver or reinstall the store"
        ) from exc
    if not (isinstance(twin, type) and issubclass(twin, AsyncBaseStore)):
        raise ConfigurationError(f"{cls.async_twin} is not an AsyncBaseStore subclass")
    return twin


StoreT = TypeVar("StoreT", bound=StoreCore)


def _build(cls: type[StoreT], parsed: StoreURL, options: dict[str, Any]) -> StoreT:
    accepted = cls.common_options | cls.options
    merged: dict[str, Any] = {**parsed.query, **options}
    plugin_options = {k: v for k, v in merged.items() if k not in accepted}
    known = known_options(accepted)
    if known is not None and set(plugin_options) - set(known):
        # Refused before the store is built, so a mistyped option creates nothing.
        raise ConfigurationError(unknown_options_message(parsed, plugin_options, known))
    # The store sees neither the options plugins take nor their values (keys may be named).
    own = parsed.without_query(plugin_options)
    store = cls.from_url(own, **{k: v for k, v in merged.items() if k in accepted})
    try:
        plugin_manager().hook.ailib_configure_store(store=store, options=plugin_options)
        if plugin_options:
            raise ConfigurationError(
                unknown_options_message(parsed, plugin_options, known or sorted(accepted))
            )
    except BaseException:
        if isinstance(store, BaseStore):
            store.close()
        raise
    return store


def known_options(accepted: frozenset[str]) -> list[str] | None:
    """Every option a store of this class can be opened with: its own, plus those the plugins
    take. None when a plugin from another distribution does not list its options (in a
    ``url_options`` attribute), since then only that plugin knows which it takes."""
    known = set(accepted) | BUILTIN_PLUGIN_OPTIONS
    manager = plugin_manager()
    for plugin in manager.get_plugins():
        if manager.get_name(plugin) in BUILTIN_PLUGINS:
            continue
        declared = getattr(plugin, "url_options", None)
        if not isinstance(declared, frozenset | set | tuple | list):
            return None
        known.update(str(name) for name in declared)
    return sorted(known)


def unknown_options_message(url: StoreURL, given: Iterable[str], known: list[str]) -> str:
    """``unknown option 'tll' for sqlite://; did you mean 'ttl'? known options: …``."""
    parts = []
    for name in sorted(set(given) - set(known) or set(given)):
        text = f"unknown option {name!r} for {url.scheme}://"
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
        if close:
            text += f"; did you mean {close[0]!r}?"
        parts.append(text)
    text = "; ".join(parts)
    return text + (" " if text.endswith("?") else "; ") + f"known options: {', '.join(known)}"
