"""The plugins ailib-core registers itself: redaction, encryption and OpenTelemetry tracing,
by URL option."""

from __future__ import annotations

from typing import Any

from ailib.errors import ConfigurationError
from ailib.hookspecs import hookimpl
from ailib.redaction import Redactor

__all__ = ("EncryptionPlugin", "RedactionPlugin", "TracingPlugin")


class RedactionPlugin:
    """Turns redaction on for stores opened with ``?redact=default``."""

    @hookimpl
    def ailib_configure_store(self, store: Any, options: dict[str, str]) -> None:
        policy = options.pop("redact", None)
        if policy in (None, "", "none", "off"):
            return
        if policy != "default":
            raise ConfigurationError(
                f"unknown redact policy {policy!r}; use redact=default, or register a "
                "Redactor in code with store.hooks.register(Redactor(...))"
            )
        store.hooks.register(Redactor(), name="redaction")


class EncryptionPlugin:
    """Turns encryption on for stores opened with ``?encrypt=env:NAME`` or ``file:PATH``."""

    @hookimpl
    def ailib_configure_store(self, store: Any, options: dict[str, str]) -> None:
        source = options.pop("encrypt", None)
        if not source:
            return
        try:
            from ailib.encryption import Encryptor, load_keys
        except ImportError as exc:
            raise ConfigurationError(
                'encryption needs the cryptography package: pip install "ailib-core[crypto]"'
            ) from exc
        store.hooks.register(Encryptor(load_keys(source)), name="encryption")


_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


def _switch(name: str, value: object, *, extra: frozenset[str] = frozenset()) -> bool | str:
    """A URL option (a str) or keyword (a bool) as True/False, or one of the ``extra`` words."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in extra:
        return text
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    words = ", ".join(sorted(extra | {"true", "false"}))
    raise ConfigurationError(f"invalid value {value!r} for option {name!r}; use one of: {words}")


class TracingPlugin:
    """OpenTelemetry spans and metrics for every operation of a store (``ailib.tracing``).

    ``trace=auto`` (the default) traces the store when the program has set a global tracer
    provider, or passed ``tracer_provider=`` to ``open_store``; ``trace=on`` always does
    (spans flow once a provider is set); ``trace=off`` never does.
    ``trace_session_ids=false`` keeps session ids out of spans.
    """

    url_options = frozenset({"trace", "trace_session_ids", "tracer_provider", "meter_provider"})

    @hookimpl
    def ailib_configure_store(self, store: Any, options: dict[str, Any]) -> None:
        mode = _switch("trace", options.pop("trace", "auto"), extra=frozenset({"auto"}))
        show_ids = _switch("trace_session_ids", options.pop("trace_session_ids", True))
        tracer_provider = options.pop("tracer_provider", None)
        meter_provider = options.pop("meter_provider", None)
        if isinstance(tracer_provider, str) or isinstance(meter_provider, str):
            raise ConfigurationError(
                "tracer_provider and meter_provider are OpenTelemetry objects: pass them as "
                "keyword arguments to open_store, not in the URL"
            )
        if mode is False:
            return
        from ailib.tracing import instrument, tracer_provider_set

        if mode == "auto" and tracer_provider is None and not tracer_provider_set():
            return
        instrument(
            store,
            session_ids=bool(show_ids),
            tracer_provider=tracer_provider,
            meter_provider=meter_provider,
        )
