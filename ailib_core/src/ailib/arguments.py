"""Checks of the arguments of the public store and session methods.

Each rule is applied in the core before any backend sees the call, so every backend refuses
the same inputs with the same error: :class:`~ailib.errors.InvalidArgumentType` for a wrong
type, :class:`~ailib.errors.InvalidArgument` for a value out of range, each naming the
argument and what it accepts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from ailib.errors import InvalidArgument, InvalidArgumentType
from ailib.messages import KINDS

__all__ = (
    "MAX_IDEMPOTENCY_KEY",
    "MAX_LABEL",
    "MAX_LIST_LIMIT",
    "check_count",
    "check_expected_version",
    "check_idempotency_key",
    "check_kind",
    "check_label",
    "check_limit",
    "check_mapping",
    "check_text",
    "check_unset",
)

#: The most sessions one ``list`` call returns; page with the cursor for more.
MAX_LIST_LIMIT: Final = 1000
#: The longest checkpoint label.
MAX_LABEL: Final = 1000
#: The longest idempotency key.
MAX_IDEMPOTENCY_KEY: Final = 200


def check_int(value: object, name: str, minimum: int, rule: str) -> int:
    """``value`` if it is an int (not a bool) of at least ``minimum``."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidArgumentType(f"{name} must be an int ({rule}), got {value!r}")
    if value < minimum:
        raise InvalidArgument(f"{name} must be {rule}, got {value!r}")
    return value


def check_count(value: object, name: str, minimum: int = 0) -> int:
    if type(value) is int and value >= minimum:
        return value
    return check_int(value, name, minimum, f">= {minimum}")


def check_limit(limit: object) -> int:
    if type(limit) is int and 1 <= limit <= MAX_LIST_LIMIT:
        return limit
    rule = f"between 1 and {MAX_LIST_LIMIT}; page with the cursor for more"
    check_int(limit, "limit", 1, rule)
    assert isinstance(limit, int)
    if limit > MAX_LIST_LIMIT:
        raise InvalidArgument(f"limit must be {rule}, got {limit!r}")
    return limit


def check_expected_version(value: object) -> int | None:
    if value is None:
        return None
    return check_int(value, "expected_version", 0, ">= 0, the version the session was read at")


def check_kind(kind: object) -> str:
    if not isinstance(kind, str):
        raise InvalidArgumentType(f"kind must be a str, one of {', '.join(KINDS)}; got {kind!r}")
    if kind not in KINDS:
        raise InvalidArgument(f"unknown session kind {kind!r}; use one of {', '.join(KINDS)}")
    return kind


def check_text(value: object, name: str, longest: int) -> str:
    """A non-empty str of at most ``longest`` characters that UTF-8 can encode."""
    if not isinstance(value, str):
        raise InvalidArgumentType(f"{name} must be a str, got {type(value).__name__}")
    if not value or len(value) > longest:
        raise InvalidArgument(f"{name} must be 1 to {longest} characters, got {len(value)}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidArgument(f"{name} holds a lone surrogate, which UTF-8 cannot encode") from None
    return value


def check_label(label: object) -> str | None:
    return None if label is None else check_text(label, "checkpoint label", MAX_LABEL)


def check_idempotency_key(key: object) -> str | None:
    return None if key is None else check_text(key, "idempotency_key", MAX_IDEMPOTENCY_KEY)


def check_mapping(value: object, name: str) -> Mapping[str, Any]:
    """``value`` if it is a mapping (None counts as empty)."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InvalidArgumentType(
            f"{name} must be a dict of str keys to values, got {type(value).__name__}"
        )
    return value


def check_unset(unset: object) -> tuple[str, ...]:
    if isinstance(unset, str | bytes) or not isinstance(unset, Sequence):
        raise InvalidArgumentType(
            f"unset must be a list or tuple of metadata keys, got {type(unset).__name__}"
        )
    for key in unset:
        if not isinstance(key, str):
            raise InvalidArgumentType(f"unset holds {key!r}; metadata keys are str")
    return tuple(unset)
