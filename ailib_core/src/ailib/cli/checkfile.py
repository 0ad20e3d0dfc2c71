"""Reading one line of an export file, with mistakes said in words: which line, which field,
what was found and what was expected. The stores' own checks (message roles, ids, metadata)
run afterwards, on a throwaway store, and are quoted as they are."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from ailib.errors import CorruptSessionError, InvalidSessionId

__all__ = ("parse_line", "shape_problem")


def parse_line(number: int, line: str, where: str) -> dict[str, Any]:
    """Line ``number`` of ``where`` as a dict, or a CorruptSessionError saying what is wrong."""
    try:
        data = json.loads(line)
    except json.JSONDecodeError as exc:
        raise CorruptSessionError(
            f"{where} line {number} is not JSON: {_json_problem(exc)}"
        ) from exc
    if not isinstance(data, dict):
        raise CorruptSessionError(
            f"{where} line {number} is {_kind(data)}, not an exported session (a JSON object "
            "per line, as `ailib sessions export` writes)"
        )
    problem = shape_problem(data)
    if problem is not None:
        raise CorruptSessionError(f"{where} line {number}: {problem}")
    return data


def _json_problem(exc: json.JSONDecodeError) -> str:
    at = f"column {exc.colno}"
    message = exc.msg
    if message.startswith("Invalid control character"):
        return (
            f"a raw control character (tab, newline, ...) inside a string at {at}; "
            "JSON writes them as \\t, \\n, ..."
        )
    if message.startswith("Expecting value"):
        return f"a value is missing or is not JSON at {at}"
    if message.startswith("Expecting property name"):
        return f"a key in double quotes was expected at {at} (JSON has no single quotes)"
    if message.startswith("Unterminated string"):
        return f"the string starting at {at} is not closed"
    if message.startswith("Extra data"):
        return f"unexpected text after the session's object at {at} (one session per line)"
    if message.startswith("Expecting ',' delimiter") or message.startswith("Expecting ':'"):
        return f"a {message.split()[1]} was expected at {at}"
    return f"{message[0].lower()}{message[1:]} at {at}"


def _kind(value: Any) -> str:
    """What a JSON value is, in words."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list):
        return "a list"
    return "an object"


def _missing_or_wrong(
    data: Mapping[str, Any], name: str, expected: str, ok: bool, *, owner: str = ""
) -> str | None:
    if name not in data:
        return f"{owner}the field {name!r} is missing ({expected} expected)"
    if not ok:
        return f"{owner}the field {name!r} is {_kind(data[name])}; {expected} expected"
    return None


def _is_time(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def shape_problem(data: Mapping[str, Any]) -> str | None:
    """What is wrong with the fields of one exported session, in words, or None."""
    if data.get("format", "ailib.session") != "ailib.session":
        return (
            f"the field 'format' is {data['format']!r}; an exported ailib session has "
            "'ailib.session'"
        )
    checks = [
        ("session_id", "text", isinstance(data.get("session_id"), str)),
        ("messages", "a list of messages", isinstance(data.get("messages"), list)),
    ]
    for name, expected, ok in checks:
        problem = _missing_or_wrong(data, name, expected, ok)
        if problem:
            return problem
    from ailib.ids import check_session_id

    try:
        check_session_id(data["session_id"])
    except InvalidSessionId as exc:
        return f"the field 'session_id' holds an {exc}"
    for index, message in enumerate(data["messages"], 1):
        if not isinstance(message, dict):
            return f"message {index} is {_kind(message)}; an object expected"
    optional: list[tuple[str, str, Callable[[Any], bool]]] = [
        ("kind", "text", lambda v: isinstance(v, str)),
        ("metadata", "an object", lambda v: v is None or isinstance(v, dict)),
        ("version", "a whole number", _whole),
        ("created_at", "a date and time (ISO 8601)", lambda v: v is None or _is_time(v)),
        ("updated_at", "a date and time (ISO 8601)", lambda v: v is None or _is_time(v)),
        ("expires_at", "a date and time (ISO 8601) or null", lambda v: v is None or _is_time(v)),
        (
            "ttl",
            "a number of seconds, a duration such as '7d', or null",
            lambda v: v is None or isinstance(v, str | int | float),
        ),
        ("checkpoints", "a list of checkpoints", lambda v: isinstance(v, list)),
    ]
    for name, expected, test in optional:
        if name in data and not test(data[name]):
            return f"the field {name!r} is {_kind(data[name])}; {expected} expected"
    for index, checkpoint in enumerate(data.get("checkpoints") or (), 1):
        owner = f"checkpoint {index} of the list: "
        if not isinstance(checkpoint, dict):
            return f"{owner}it is {_kind(checkpoint)}; an object expected"
        for name, expected, ok in (
            ("number", "a whole number", _whole(checkpoint.get("number"))),
            ("created_at", "a number (seconds since 1970)", _number(checkpoint.get("created_at"))),
            ("message_count", "a whole number", _whole(checkpoint.get("message_count"))),
            ("metadata", "an object", isinstance(checkpoint.get("metadata"), dict)),
            ("messages", "a list of messages", isinstance(checkpoint.get("messages"), list)),
        ):
            problem = _missing_or_wrong(checkpoint, name, expected, ok, owner=owner)
            if problem:
                return problem
    return None


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
