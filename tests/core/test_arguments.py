"""One rule per input, in the core: detached sessions, durations and the error classes."""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

import pytest

import ailib
from ailib.durations import MAX_DURATION, parse_duration
from ailib.errors import (
    AilibError,
    ConfigurationError,
    CorruptSessionError,
    InvalidArgument,
    InvalidArgumentType,
    InvalidMessage,
    InvalidMetadata,
)
from ailib.session import Session


def test_argument_errors_are_ailib_errors_and_builtin_ones() -> None:
    assert issubclass(InvalidArgument, AilibError)
    assert issubclass(InvalidArgument, ValueError)
    assert issubclass(InvalidArgumentType, InvalidArgument)
    assert issubclass(InvalidArgumentType, TypeError)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [(0, None), ("0", None), ("", None), ("none", None), (90, 90.0), ("2h", 7200.0)],
)
def test_durations_in_range(value: Any, seconds: float | None) -> None:
    assert parse_duration(value) == seconds


def test_the_longest_duration_is_ten_years() -> None:
    assert parse_duration(timedelta(days=3650)) == MAX_DURATION
    assert parse_duration("520w") == 520 * 604800
    with pytest.raises(ConfigurationError, match="10 years"):
        parse_duration(MAX_DURATION + 1)
    with pytest.raises(InvalidArgument, match="10 years"):
        parse_duration("99999999w", "ttl", InvalidArgument)


@pytest.mark.parametrize("bad", [math.inf, math.nan, -1, 10**400, "-5m"])
def test_url_ttls_out_of_range_are_configuration_errors(bad: Any) -> None:
    with pytest.raises(ConfigurationError):
        ailib.open_store("memory://", ttl=bad)


def test_detached_sessions_refuse_bad_input() -> None:
    with pytest.raises(InvalidArgument):
        Session(kind="bogus")
    with pytest.raises(InvalidArgumentType):
        Session(metadata="x")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentType):
        Session(messages="hello")  # type: ignore[arg-type]
    with pytest.raises(InvalidMetadata):
        Session(metadata={"user_id": 7})
    session = Session()
    with pytest.raises(InvalidMessage):
        session.add_message("user", "\ud800")
    with pytest.raises(InvalidMessage):
        session.add({"role": "user", "content": "x", "extra": float("nan")})
    with pytest.raises(InvalidMetadata):
        session.set_metadata("user_id", 5)
    with pytest.raises(AilibError):
        session.save()
    assert session.messages == []
    assert session.metadata == {}


def test_items_sessions_take_any_json_object_but_only_json() -> None:
    items = Session(kind="items")
    items.add({"type": "reasoning", "summary": [], "n": 1.5})
    with pytest.raises(InvalidMessage, match="key"):
        items.add({"type": "x", 3: "three"})  # type: ignore[dict-item]
    assert len(items) == 1


@pytest.mark.parametrize(
    ("data", "said"),
    [
        ({"session_id": "s1", "messages": "x"}, "session 's1'"),
        ({"session_id": "s1", "messages": [], "metadata": "m"}, "session 's1': the metadata"),
        ({"session_id": "s1", "messages": [], "created_at": "noon"}, "'created_at'"),
        ({"session_id": "s1", "messages": [{"role": "robot"}]}, "session 's1': the messages"),
        ({"session_id": "bad id!", "messages": []}, "invalid session id"),
    ],
)
def test_from_dict_says_which_session_and_field(data: dict[str, Any], said: str) -> None:
    with pytest.raises(CorruptSessionError, match=said.replace("(", r"\(")):
        Session.from_dict(data)
