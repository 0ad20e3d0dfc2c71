"""Encryption at rest: what a store keeps is sealed with Fernet (AES-128-CBC + HMAC-SHA256).

Turn it on per store with ``?encrypt=env:AILIB_KEY`` (a variable holding Fernet keys) or
``?encrypt=file:/path/to/keys`` (one key a line); keys never go in the URL. The first key
seals new writes; every key listed opens what was sealed, so keys rotate by putting a new one
first, then re-encrypt with ``ailib sessions reencrypt`` and retire the old one. User ids
are hashed with the newest key, so between adding a key and re-encrypting, listing by user
finds only the sessions written since.

Each message is sealed whole, and so is each metadata value, except ``user_id``, which is
kept as a keyed hash so that listing by user still works (the clear value is sealed beside
it). Times, versions and counts stay readable. Needs ``cryptography``
(``pip install "ailib-core[crypto]"``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from pathlib import Path
from typing import Any, Final

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from ailib.codec import SEALED, dumps
from ailib.errors import ConfigurationError
from ailib.hookspecs import hookimpl
from ailib.messages import Message

__all__ = ("Encryptor", "generate_key", "load_keys")

USER_ID: Final = "user_id"
SEALED_USER_ID: Final = "$user_id"
USER_PREFIX: Final = "uh1:"


def generate_key() -> str:
    """A new random key, in the form ``AILIB_KEY`` takes."""
    return Fernet.generate_key().decode()


def load_keys(source: str) -> list[bytes]:
    """Keys from ``env:NAME`` or ``file:PATH``, newest first, separated by commas or lines."""
    kind, _, name = source.partition(":")
    if kind == "env":
        text = os.environ.get(name)
        if not text:
            raise ConfigurationError(
                f"encryption keys are to come from ${name}, which is not set; set it to a key "
                "from `python -c 'import ailib.encryption as e; print(e.generate_key())'`"
            )
    elif kind == "file":
        try:
            text = Path(name).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigurationError(f"cannot read encryption keys from {name}: {exc}") from None
    else:
        raise ConfigurationError(
            f"encrypt={source!r}: give env:VARIABLE or file:PATH (keys never go in the URL)"
        )
    keys = [k.strip().encode() for k in text.replace(",", "\n").splitlines() if k.strip()]
    for index, key in enumerate(keys):
        try:
            Fernet(key)
        except ValueError:
            raise ConfigurationError(
                f"encryption key #{index + 1} from {kind}:{name} is not a Fernet key "
                "(32 url-safe base64-encoded bytes)"
            ) from None
    return keys


class Encryptor:
    """The per-store plugin that seals on write and opens on read."""

    def __init__(self, keys: list[bytes], *, hash_key: bytes | None = None) -> None:
        if not keys:
            raise ConfigurationError("encryption needs at least one key")
        self._fernet = MultiFernet([Fernet(k) for k in keys])
        # User ids are hashed with the newest key; re-encryption re-hashes them too.
        self._hash_key = hash_key or hashlib.sha256(b"ailib user_id\0" + keys[0]).digest()

    def __repr__(self) -> str:
        return "<Encryptor keys=***>"

    def seal(self, value: Any) -> dict[str, str]:
        return {SEALED: self._fernet.encrypt(dumps(value).encode()).decode()}

    def open(self, sealed: dict[str, Any], where: str) -> Any:
        try:
            return json.loads(self._fernet.decrypt(str(sealed[SEALED]).encode()))
        except InvalidToken:
            raise ConfigurationError(
                f"{where} was encrypted with a key this store does not have; nothing was "
                "changed. Add that key to the store's keys (newest first) to read it"
            ) from None

    def user_hash(self, user_id: str) -> str:
        digest = hmac.new(self._hash_key, user_id.encode(), hashlib.sha256).hexdigest()
        return USER_PREFIX + digest

    @hookimpl
    def ailib_before_write(
        self, store: Any, session_id: str, messages: list[Message], metadata: dict[str, Any]
    ) -> None:
        for index, message in enumerate(messages):
            messages[index] = self.seal(message)
        for key, value in list(metadata.items()):
            if key == USER_ID and isinstance(value, str):
                metadata[USER_ID] = self.user_hash(value)
                metadata[SEALED_USER_ID] = self.seal(value)
            elif not (isinstance(value, dict) and SEALED in value):
                metadata[key] = self.seal(value)

    @hookimpl
    def ailib_after_read(
        self, store: Any, session_id: str, messages: list[Message], metadata: dict[str, Any]
    ) -> None:
        where = f"session {session_id!r} in {store.url}"
        for index, message in enumerate(messages):
            if SEALED in message:
                messages[index] = self.open(message, where)
        clear_user = metadata.pop(SEALED_USER_ID, None)
        for key, value in list(metadata.items()):
            if isinstance(value, dict) and SEALED in value:
                metadata[key] = self.open(value, where)
        if isinstance(clear_user, dict):
            metadata[USER_ID] = self.open(clear_user, where)

    @hookimpl
    def ailib_user_key(self, store: Any, user_id: str) -> str:
        return self.user_hash(user_id)
