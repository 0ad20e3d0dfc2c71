"""Encoding of metadata values and whole sessions to JSON that decodes back exactly.

Metadata holds JSON types plus datetimes. A value that would come back different
(a tuple, a set, NaN, a non-string key) is refused when it is set, not discovered on load.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

from ailib.errors import CorruptSessionError, InvalidMetadata

__all__ = (
    "USER_ID",
    "decode_metadata",
    "decode_value",
    "dumps",
    "encode_entry",
    "encode_metadata",
    "encode_value",
    "loads",
)

#: The metadata key listing filters on; its value must be a str.
USER_ID = "user_id"

_DATETIME = "$datetime"
_DATE = "$date"
#: The key of a message or metadata value that is stored encrypted.
SEALED = "$sealed"
_TAGS = frozenset({_DATETIME, _DATE})


def encode_value(value: Any, key: str) -> Any:
    """The JSON form of a metadata value; raises InvalidMetadata naming ``key`` if impossible."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        _check_text(value, key)
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidMetadata(f"metadata {key!r}: {value!r} does not round-trip through JSON")
        return value
    if isinstance(value, datetime):
        return {_DATETIME: value.isoformat()}
    if isinstance(value, date):
        return {_DATE: value.isoformat()}
    if isinstance(value, list):
        return [encode_value(item, key) for item in value]
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise InvalidMetadata(
                    f"metadata {key!r}: dict key {k!r} is not a string; JSON keys must be strings"
                )
            _check_text(k, key)
            if k in _TAGS and len(value) == 1:
                raise InvalidMetadata(f"metadata {key!r}: {k!r} is a reserved key")
            out[k] = encode_value(v, key)
        return out
    raise InvalidMetadata(
        f"metadata {key!r}: a {type(value).__name__} would not come back unchanged; use None, "
        "bool, int, float, str, datetime, date, or lists and str-keyed dicts of those"
    )


def decode_value(value: Any) -> Any:
    if isinstance(value, list):
        return [decode_value(item) for item in value]
    if isinstance(value, dict):
        if len(value) == 1:
            ((tag, text),) = value.items()
            try:
                if tag == _DATETIME:
                    return datetime.fromisoformat(text)
                if tag == _DATE:
                    return date.fromisoformat(text)
            except (TypeError, ValueError) as exc:
                raise CorruptSessionError(f"stored {tag} value {text!r} is invalid") from exc
        return {k: decode_value(v) for k, v in value.items()}
    return value


def _check_text(text: str, key: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidMetadata(
            f"metadata {key!r} holds a lone surrogate (such as '\\ud800'), which UTF-8 "
            "cannot encode"
        ) from None


def encode_entry(key: object, value: Any) -> Any:
    """The JSON form of the top-level metadata entry ``key``: ``value``; raises
    InvalidMetadata for a key that is not a non-empty str, or a ``user_id`` that is not a str
    (listing by user compares strings on every backend)."""
    if not isinstance(key, str) or not key:
        raise InvalidMetadata(f"metadata key {key!r} must be a non-empty string")
    _check_text(key, key)
    if key == USER_ID and not isinstance(value, str):
        raise InvalidMetadata(
            f"metadata {USER_ID!r} must be a str (listing by user compares strings), "
            f"got {type(value).__name__} {value!r}"
        )
    return encode_value(value, key)


def encode_metadata(metadata: Mapping[str, Any]) -> dict[str, Any]:
    return {key: encode_entry(key, value) for key, value in metadata.items()}


def decode_metadata(raw: Any) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise CorruptSessionError(f"stored metadata is a {type(raw).__name__}, expected an object")
    return {k: decode_value(v) for k, v in raw.items()}


#: One encoder for every write: ``json.dumps`` with options would build a new one per call.
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def dumps(value: Any) -> str:
    """Compact, deterministic JSON (the form every store writes)."""
    return _ENCODER.encode(value)


def loads(text: str | bytes, what: str = "stored data") -> Any:
    """Parse JSON written by :func:`dumps`; anything unreadable raises CorruptSessionError."""
    try:
        return json.loads(text)
    except (TypeError, ValueError) as exc:
        raise CorruptSessionError(f"{what} is not valid JSON: {exc}") from exc
