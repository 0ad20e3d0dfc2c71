"""The Session model as the tutorial uses it, and its validation."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ailib import CorruptSessionError, InvalidMessage, InvalidMetadata, Session, SessionTemplate
from ailib.errors import ConfigurationError


def test_new_session_basics() -> None:
    a, b = Session(), Session()
    assert a.session_id != b.session_id
    assert len(a.session_id) == 32
    a.add_message("system", "You are helpful.")
    a.add_message("user", "Hi")
    assert len(a) == 2
    assert a.get_messages() == [
        {"role": "system", "content": "You are helpful."},
        {"role": "user", "content": "Hi"},
    ]


def test_get_messages_returns_the_sessions_own_dicts() -> None:
    session = Session()
    session.add_message("user", "my password is x")
    for message in session.get_messages():
        message["content"] = "[REDACTED]"
    assert session.messages[0]["content"] == "[REDACTED]"


@pytest.mark.parametrize(
    ("args", "kwargs", "match"),
    [
        (("robot", "x"), {}, "unknown role 'robot'"),
        (("user", 42), {}, "content must be a string or a list of parts"),
        (("user", [{"text": "no type"}]), {}, "part 0 must be a dict with a 'type'"),
        (("tool", "result"), {}, "tool_call_id"),
        (("assistant", None), {}, "needs content, tool_calls or a refusal"),
        (("user", "x"), {"tool_calls": []}, "unsupported field"),
        (("assistant", None), {"tool_calls": [{"id": "c"}]}, "function.name"),
    ],
)
def test_invalid_messages_are_rejected(
    args: tuple[Any, ...], kwargs: dict[str, Any], match: str
) -> None:
    session = Session()
    with pytest.raises(InvalidMessage, match=match):
        session.add_message(*args, **kwargs)
    assert len(session) == 0


def test_tool_call_messages() -> None:
    session = Session()
    call = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    session.add_message("assistant", None, tool_calls=[call])
    session.add_message("tool", "42", tool_call_id="c1")
    assert session.messages[0] == {"role": "assistant", "tool_calls": [call]}


@pytest.mark.parametrize(
    "value", [(1, 2), {1, 2}, float("nan"), object(), {1: "int key"}, b"bytes"]
)
def test_metadata_that_would_not_round_trip_is_refused(value: object) -> None:
    session = Session()
    with pytest.raises(InvalidMetadata, match="'bad'"):
        session.set_metadata("bad", value)
    assert session.get_all_metadata() == {}


def test_metadata_accessors() -> None:
    session = Session()
    session.set_metadata("user_id", "12345")
    assert session.get_metadata("user_id") == "12345"
    assert session.get_metadata("missing", "dflt") == "dflt"
    snapshot = session.get_all_metadata()
    snapshot["user_id"] = "changed"
    assert session.get_metadata("user_id") == "12345"


def test_to_dict_is_json_ready_and_round_trips() -> None:
    session = Session()
    session.add_message("user", "hello")
    session.set_metadata("created_at", datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC))
    session.set_metadata("word_count_target", 1000)
    data = json.loads(json.dumps(session.to_dict()))
    assert data["format"] == "ailib.session"
    assert data["format_version"] == 1
    loaded = Session.from_dict(data)
    assert loaded.session_id == session.session_id
    assert loaded.messages == session.messages
    assert loaded.get_all_metadata() == session.get_all_metadata()


@pytest.mark.parametrize(
    "data",
    [
        {"format": "other"},
        {"format": "ailib.session", "format_version": 99, "session_id": "x", "messages": []},
        {"format": "ailib.session", "format_version": 1, "messages": []},
        {"format": "ailib.session", "session_id": "x", "messages": [{"role": "robot"}]},
    ],
)
def test_from_dict_refuses_what_it_cannot_read(data: dict[str, Any]) -> None:
    with pytest.raises(CorruptSessionError):
        Session.from_dict(data)


json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.text()
    | st.floats(allow_nan=False, allow_infinity=False)
)
metadata_values = st.recursive(
    json_scalars | st.datetimes() | st.datetimes(timezones=st.just(UTC)),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text().filter(lambda k: not k.startswith("$")), inner, max_size=4)
    ),
    max_leaves=12,
)


@given(st.dictionaries(st.text(min_size=1), metadata_values, max_size=5))
def test_any_accepted_metadata_round_trips(metadata: dict[str, Any]) -> None:
    session = Session(metadata=metadata)
    back = Session.from_dict(json.loads(json.dumps(session.to_dict())))
    assert back.get_all_metadata() == metadata


def test_window_keeps_system_and_tool_groups() -> None:
    session = Session()
    session.add_message("system", "sys")
    for n in range(4):
        session.add_message("user", f"u{n}")
    call = {"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    session.add_message("assistant", None, tool_calls=[call])
    session.add_message("tool", "r", tool_call_id="c")
    session.add_message("assistant", "done")
    window = session.window(max_messages=4)
    assert [m["role"] for m in window] == ["system", "assistant", "tool", "assistant"]
    window = session.window(max_messages=3)
    assert [m["role"] for m in window] == ["system", "assistant"]
    assert session.window(max_tokens=10_000) == session.messages
    small = session.window(max_tokens=15, token_counter=lambda m: 5)
    assert small == [session.messages[0], session.messages[-1]]


def test_window_with_token_budget_counts_the_system_prompt() -> None:
    session = Session(messages=[{"role": "system", "content": "s"}])
    for n in range(5):
        session.add_message("user", str(n))
    picked = session.window(max_tokens=3, token_counter=lambda m: 1)
    assert [m["content"] for m in picked] == ["s", "3", "4"]


def test_stats() -> None:
    session = Session()
    session.add_message("system", "sys")
    session.add_message("user", "abcd")
    session.add_message("user", "ab")
    session.add_message("assistant", "123456")
    stats = session.stats()
    assert stats.message_count == 4
    assert stats.messages_by_role == {"system": 1, "user": 2, "assistant": 1}
    assert stats.average_length("user") == 3
    assert stats.average_length("tool") == 0.0
    assert stats.duration_seconds >= 0


def test_template() -> None:
    template = SessionTemplate(
        "coding_assistant", "You are an expert {language} developer.", {"level": "senior"}
    )
    session = template.create(language="Rust")
    assert session.messages == [{"role": "system", "content": "You are an expert Rust developer."}]
    assert session.get_all_metadata() == {
        "template": "coding_assistant",
        "level": "senior",
        "language": "Rust",
    }
    with pytest.raises(ConfigurationError, match="needs language"):
        template.create()


def test_subclass_with_extra_state_works() -> None:
    class VersionedSession(Session):
        def __init__(self) -> None:
            super().__init__()
            self.version_history: list[dict[str, Any]] = []

        def checkpoint(self) -> None:
            self.version_history.append(
                {"messages": self.messages.copy(), "metadata": self.metadata.copy()}
            )

        def restore(self, index: int) -> None:
            self.messages = self.version_history[index]["messages"].copy()
            self.metadata = self.version_history[index]["metadata"].copy()

    session = VersionedSession()
    session.add_message("user", "a")
    session.checkpoint()
    session.add_message("user", "b")
    session.restore(0)
    assert len(session) == 1
