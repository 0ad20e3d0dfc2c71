"""The load-time fast path: a message ``is_plain_text`` passes is one the full shape check
accepts, so skipping that check for it changes nothing a load raises."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ailib.errors import InvalidMessage
from ailib.messages import (
    CHAT,
    all_objects,
    check_stored_message,
    is_plain_text,
    plain_text_prefix,
)

_VALUES = st.one_of(
    st.none(),
    st.integers(),
    st.text(max_size=5),
    st.lists(st.fixed_dictionaries({"type": st.just("text"), "text": st.text(max_size=3)})),
    st.sampled_from(["system", "developer", "user", "assistant", "tool", "function", ""]),
)
_KEYS = st.sampled_from(["role", "content", "name", "tool_call_id", "tool_calls", "x"])


@given(st.dictionaries(_KEYS, _VALUES, max_size=4))
def test_a_plain_text_message_is_a_valid_chat_message(message: dict[str, Any]) -> None:
    if is_plain_text(message):
        check_stored_message(message, CHAT)


def test_what_is_plain_text() -> None:
    for role in ("system", "developer", "user", "assistant"):
        assert is_plain_text({"role": role, "content": "hi"})
    refused: list[dict[str, Any]] = [
        {"role": "tool", "content": "x"},
        {"role": "user", "content": [{"type": "text", "text": "x"}]},
        {"role": "user", "content": "x", "name": "n"},
        {"role": ["user"], "content": "x"},
        {"content": "x", "text": "y"},
    ]
    for message in refused:
        assert not is_plain_text(message)


def test_the_full_check_still_refuses_what_is_not_plain() -> None:
    with pytest.raises(InvalidMessage, match="tool_call_id"):
        check_stored_message({"role": "tool", "content": "x"}, CHAT)


_MESSAGES = st.lists(st.one_of(st.dictionaries(_KEYS, _VALUES, max_size=3), _VALUES), max_size=6)


@given(_MESSAGES)
def test_the_prefix_is_where_the_first_message_that_is_not_plain_text_stands(
    messages: list[Any],
) -> None:
    not_plain = [n for n, m in enumerate(messages) if not _plain_by_definition(m)]
    assert plain_text_prefix(messages) == (not_plain[0] if not_plain else len(messages))
    assert [is_plain_text(m) for m in messages] == [_plain_by_definition(m) for m in messages]


def _plain_by_definition(message: Any) -> bool:
    """The definition of plain text, written out as a reader would (the oracle)."""
    return (
        isinstance(message, dict)
        and sorted(message) == ["content", "role"]
        and isinstance(message["role"], str)
        and message["role"] in ("system", "developer", "user", "assistant")
        and isinstance(message["content"], str)
    )


@given(_MESSAGES)
def test_all_objects_is_every_value_a_dict(messages: list[Any]) -> None:
    assert all_objects(messages) == all(isinstance(m, dict) for m in messages)
