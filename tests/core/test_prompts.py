"""PromptTemplate and PromptBuilder."""

from __future__ import annotations

import pytest

from ailib import ConfigurationError, InvalidMessage, Session
from ailib.prompts import PromptBuilder, PromptTemplate


def test_variables_are_unique_and_in_order() -> None:
    template = PromptTemplate("{b} then {a}, {b} again; {user.name} {items[0]} {score:.2f}")

    assert template.variables == ("b", "a", "user", "items", "score")


def test_format_fills_every_variable() -> None:
    template = PromptTemplate("Translate {text!r} into {language}.")

    assert template.format(text="hi", language="French") == "Translate 'hi' into French."


def test_format_ignores_extra_values() -> None:
    assert PromptTemplate("Hi {name}").format(name="Ada", unused=1) == "Hi Ada"


def test_missing_variables_are_named() -> None:
    template = PromptTemplate("{greeting}, {name}! Today is {day}.")

    with pytest.raises(ConfigurationError) as caught:
        template.format(greeting="Hello")

    text = str(caught.value)
    assert "'name'" in text
    assert "'day'" in text
    assert "'greeting'" not in text
    assert isinstance(caught.value, ValueError)


def test_escaped_braces_are_literal() -> None:
    template = PromptTemplate('Reply as JSON like {{"answer": ...}} about {topic}.')

    assert template.variables == ("topic",)
    assert template.format(topic="cats") == 'Reply as JSON like {"answer": ...} about cats.'


def test_partial_fills_some_variables() -> None:
    template = PromptTemplate("{greeting}, {name}! Score {score:.1f}. {{raw}}")

    partial = template.partial(greeting="Hi", score=2.345)

    assert partial.variables == ("name",)
    assert partial.format(name="Bo") == "Hi, Bo! Score 2.3. {raw}"
    assert template.variables == ("greeting", "name", "score"), "the original is unchanged"


def test_partial_values_with_braces_stay_literal() -> None:
    partial = PromptTemplate("{a} and {b}").partial(a="{b}")

    assert partial.variables == ("b",)
    assert partial.format(b="B") == "{b} and B"


def test_partial_with_everything_gives_a_constant_template() -> None:
    partial = PromptTemplate("{x}-{x}").partial(x=1)

    assert partial.variables == ()
    assert partial.format() == "1-1"
    assert str(partial) == "1-1"


def test_positional_fields_are_refused() -> None:
    for text in ("Hello {}", "Hello {0}", "Hello {0.name}"):
        with pytest.raises(ConfigurationError, match="positional"):
            PromptTemplate(text)


def test_malformed_templates_are_refused() -> None:
    for text in ("Hello {name", "Hello }", "{x!z}"):
        with pytest.raises(ConfigurationError, match="bad prompt template"):
            PromptTemplate(text).format(x=1, name="n")


def test_templates_compare_by_text() -> None:
    assert PromptTemplate("{a}") == PromptTemplate("{a}")
    assert PromptTemplate("{a}") != PromptTemplate("{b}")


def test_builder_builds_messages_in_order() -> None:
    messages = (
        PromptBuilder()
        .system("Be brief.")
        .user("What is 2+2?")
        .assistant("4")
        .message("user", "And 3+3?", name="alice")
        .build()
    )

    assert messages == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "What is 2+2?"},
        {"role": "assistant", "content": "4"},
        {"role": "user", "content": "And 3+3?", "name": "alice"},
    ]


def test_builder_tool_call_round() -> None:
    call = {"id": "c1", "type": "function", "function": {"name": "add", "arguments": "{}"}}
    builder = PromptBuilder().user("Add").assistant(tool_calls=[call])
    builder.message("tool", "5", tool_call_id="c1")

    messages = builder.build()

    assert messages[1] == {"role": "assistant", "tool_calls": [call]}
    assert messages[2] == {"role": "tool", "content": "5", "tool_call_id": "c1"}
    assert len(builder) == 3


def test_builder_checks_each_message_when_added() -> None:
    with pytest.raises(InvalidMessage, match="unknown role"):
        PromptBuilder().message("wizard", "hi")
    with pytest.raises(InvalidMessage, match="tool_call_id"):
        PromptBuilder().message("tool", "5")


def test_build_returns_copies() -> None:
    builder = PromptBuilder().user("Hi")

    builder.build()[0]["content"] = "changed"

    assert builder.build() == [{"role": "user", "content": "Hi"}]


def test_to_session_creates_or_extends_a_session() -> None:
    builder = PromptBuilder().system("S").user("U")

    fresh = builder.to_session()
    existing = Session(metadata={"k": "v"})
    existing.add_message("system", "Earlier")
    extended = builder.to_session(existing)

    assert fresh.get_messages() == builder.build()
    assert extended is existing
    assert [m["content"] for m in existing.get_messages()] == ["Earlier", "S", "U"]
    assert existing.get_metadata("k") == "v"


def test_template_and_builder_together() -> None:
    system = PromptTemplate("You are a {role} assistant.")
    messages = PromptBuilder().system(system.format(role="Python")).user("Hi").build()

    assert messages[0]["content"] == "You are a Python assistant."
