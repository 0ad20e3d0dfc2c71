"""Durations as options take them: seconds, or text such as ``90s``, ``15m``, ``1h``, ``7d``."""

from __future__ import annotations

import math
import re
from datetime import timedelta
from typing import Final

from ailib.errors import AilibError, ConfigurationError, InvalidArgument, InvalidArgumentType

__all__ = ("MAX_DURATION", "parse_duration")

_UNITS: Final = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_PATTERN: Final = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*", re.IGNORECASE)

#: The longest duration accepted: 10 years (3650 days), in seconds. Longer TTLs overflow
#: some backends' expiry arithmetic, and "keep it" is said with no TTL at all.
MAX_DURATION: Final = 3650 * 86400.0

_RULE: Final = (
    "give seconds (0 < seconds <= 315360000, that is 10 years) or text such as "
    "90s, 15m, 1h, 7d, 52w; 0, '0', '' or 'none' mean no expiry"
)


def parse_duration(
    value: float | int | str | timedelta | None,
    name: str = "ttl",
    error: type[AilibError] = ConfigurationError,
) -> float | None:
    """Seconds as a float, or None for "no expiry" (None, 0, "", "0", "none").

    ``error`` is the class raised for a value out of range: ConfigurationError for an option
    of a URL, InvalidArgument for an argument of a method (whose wrong types raise
    InvalidArgumentType)."""
    if value is None:
        return None
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, int | float) and not isinstance(value, bool):
        try:
            seconds = float(value)
        except OverflowError:
            seconds = math.inf
    elif isinstance(value, str):
        if value.strip().lower() in ("", "none", "0"):
            return None
        match = _PATTERN.fullmatch(value)
        if not match:
            raise error(f"invalid {name} {value!r}; {_RULE}")
        seconds = float(match.group(1)) * _UNITS[match.group(2).lower()]
    else:
        kind = InvalidArgumentType if issubclass(error, InvalidArgument) else error
        raise kind(f"invalid {name} {value!r}: a {type(value).__name__} is not a duration; {_RULE}")
    if not math.isfinite(seconds) or seconds < 0 or seconds > MAX_DURATION:
        raise error(f"invalid {name} {value!r}; {_RULE}")
    return seconds or None
