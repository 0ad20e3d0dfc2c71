"""``json_copy``: the one walk that checks a message is JSON and copies it, against the naming
check it stands for."""

from __future__ import annotations

import enum
import math
from collections import OrderedDict
from typing import Any

import pytest

from ailib.errors import InvalidMessage
from ailib.messages import check_json_object, copy_json, json_copy


class Colour(enum.IntEnum):
    RED = 1


class Text(str):
    pass


ACCEPTED: list[Any] = [
    {"role": "user", "content": "plain"},
    {"role": "user", "content": "é ☃ 😀", "clé": [1, 2.5, True, None, {"n": -0.0}]},
    {"nested": [[[{"deep": ["x"]}]]], "big": 10**40, "empty": {}, "none": []},
    {"enum": Colour.RED, "text": Text("sub"), "ordered": OrderedDict(a=[1])},
    OrderedDict(role="user", content="top-level subclass"),
]

REFUSED: list[Any] = [
    "not a dict",
    [{"role": "user"}],
    {"x": math.nan},
    {"x": [1, math.inf]},
    {"x": {"y": -math.inf}},
    {"x": "\ud800"},
    {"\udfff": 1},
    {1: "int key"},
    {"x": (1, 2)},
    {"x": {1, 2}},
    {"x": b"bytes"},
    {"x": object()},
    {"x": [{"y": Text("ok"), "z": {2: 3}}]},
]


@pytest.mark.parametrize("message", ACCEPTED)
def test_accepted_messages_come_back_equal_and_unshared(message: Any) -> None:
    check_json_object(message)
    copied = json_copy(message)
    assert copied == message
    assert type(copied) is dict
    assert _containers(copied).isdisjoint(_containers(message))


@pytest.mark.parametrize("message", REFUSED)
def test_refused_messages_raise_the_naming_checks_error(message: Any) -> None:
    with pytest.raises(InvalidMessage) as expected:
        check_json_object(message)
    with pytest.raises(InvalidMessage) as raised:
        json_copy(message)
    assert str(raised.value) == str(expected.value)


@pytest.mark.parametrize("value", [*ACCEPTED, [{"x": (1, [2])}, {"y": {3}}], {"k": [math.nan]}])
def test_copy_json_copies_anything_deeply(value: Any) -> None:
    copied = copy_json(value)
    assert copied == value
    assert type(copied) is type(value)
    assert _containers(copied).isdisjoint(_containers(value))


def _containers(value: Any) -> set[int]:
    """The ids of every dict and list inside ``value``, itself included."""
    found: set[int] = set()
    if isinstance(value, dict):
        found.add(id(value))
        for item in value.values():
            found |= _containers(item)
    elif isinstance(value, list):
        found.add(id(value))
        for item in value:
            found |= _containers(item)
    return found
