"""Durations as options take them: seconds, or text such as ``90s``, ``15m``, ``1h``, ``7d``."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Final

from ailib.errors import ConfigurationError

__all__ = ("parse_duration",)

_UNITS: Final = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_PATTERN: Final = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*", re.IGNORECASE)


def parse_duration(value: float | int | str | timedelta | None, name: str = "ttl") -> float | None:
    """Seconds as a float, or None for "no expiry" (None, "", "0", "none")."""
    if value is None:
        return None
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str):
        if value.strip().lower() in ("", "none", "0"):
            return None
        match = _PATTERN.fullmatch(value)
        if not match:
            raise ConfigurationError(
                f"invalid {name} {value!r}; give seconds or a number with s, m, h, d or w "
                "(for example 90s, 15m, 1h, 7d)"
            )
        seconds = float(match.group(1)) * _UNITS[match.group(2).lower()]
    else:
        raise ConfigurationError(f"invalid {name} {value!r}; give seconds or text such as '1h'")
    if seconds < 0:
        raise ConfigurationError(f"invalid {name} {value!r}; it must not be negative")
    return seconds or None
