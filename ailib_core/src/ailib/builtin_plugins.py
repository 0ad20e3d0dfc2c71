"""The plugins ailib-core registers itself: redaction and encryption, by URL option."""

from __future__ import annotations

from typing import Any

from ailib.errors import ConfigurationError
from ailib.hooks import hookimpl
from ailib.redaction import Redactor

__all__ = ("EncryptionPlugin", "RedactionPlugin")


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
