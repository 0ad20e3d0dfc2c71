"""Redaction: a corpus of secrets that must go and look-alikes that must stay."""

from __future__ import annotations

from collections import Counter

import pytest

from ailib import ConfigurationError, open_store
from ailib.redaction import Redactor, luhn_valid

JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"

TRUE_POSITIVES = [
    (
        "my key is sk-proj-abcdefghijklmnopqrstuvwx123456",
        "api_key",
        "sk-proj-abcdefghijklmnopqrstuvwx123456",
    ),
    (
        "OPENAI_API_KEY=sk-1234567890abcdefghijABCDEFGHIJ",
        "api_key",
        "sk-1234567890abcdefghijABCDEFGHIJ",
    ),
    ("aws id AKIAIOSFODNN7EXAMPLE ok", "aws_access_key", "AKIAIOSFODNN7EXAMPLE"),
    (
        "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "aws_secret_key",
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    ),
    (
        "token ghp_abcdefghijklmnopqrstuvwxyz0123456789AB",
        "github_token",
        "ghp_abcdefghijklmnopqrstuvwxyz0123456789AB",
    ),
    (
        "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz",
        "github_token",
        "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz",
    ),
    (
        "Authorization: Bearer abcdef0123456789abcdef0123",
        "bearer_token",
        "abcdef0123456789abcdef0123",
    ),
    (f"jwt {JWT}", "jwt", JWT),
    ("my password is hunter2!", "password", "hunter2!"),
    ("Password: 'c0rrect-horse'", "password", "c0rrect-horse"),
    ("pwd=Tr0ub4dor&3 thanks", "password", "Tr0ub4dor&3"),
    ("my password is hunter2, thanks", "password", "hunter2"),
    ("write to alice.smith+work@example.co.uk please", "email", "alice.smith+work@example.co.uk"),
    ("card 4111 1111 1111 1111 exp 12/29", "card_number", "4111 1111 1111 1111"),
    ("amex 378282246310005.", "card_number", "378282246310005"),
    ("visa 4012-8888-8888-1881", "card_number", "4012-8888-8888-1881"),
]

FALSE_POSITIVES = [
    "I forgot my password, how do I reset it?",
    "The password field must be at least 12 characters.",
    "order number 1234 5678 9012 3456",  # fails the card checksum
    "call me on 555-0100 or +44 20 7946 0958",
    "the sk- prefix marks OpenAI keys",
    "use the @example handle on social media",
    "version 1.2.3-beta, build 20260501",
    "ISBN 978-3-16-148410-0",
    "the bearer of this letter",
    "AKIA is the prefix of AWS access key ids",
    "a UUID 123e4567-e89b-12d3-a456-426614174000",
]


@pytest.mark.parametrize(("text", "kind", "secret"), TRUE_POSITIVES)
def test_secrets_are_replaced_by_a_typed_marker(text: str, kind: str, secret: str) -> None:
    counts: Counter[str] = Counter()
    redacted = Redactor().redact_text(text, counts)
    assert secret not in redacted
    assert f"[REDACTED:{kind}]" in redacted
    assert redacted == text.replace(secret, f"[REDACTED:{kind}]")
    assert counts == {kind: 1}


@pytest.mark.parametrize("text", FALSE_POSITIVES)
def test_look_alikes_are_left_alone(text: str) -> None:
    counts: Counter[str] = Counter()
    assert Redactor().redact_text(text, counts) == text
    assert counts == {}


def test_luhn() -> None:
    assert luhn_valid("4111111111111111")
    assert not luhn_valid("4111111111111112")
    assert not luhn_valid("1234")


def test_custom_patterns_and_callables() -> None:
    redactor = Redactor(
        patterns={"employee_id": r"\bEMP-\d{6}\b"},
        callables=[lambda text: text.replace("Project Falcon", "[REDACTED:codename]")],
    )
    counts: Counter[str] = Counter()
    text = redactor.redact_text("EMP-123456 works on Project Falcon", counts)
    assert text == "[REDACTED:employee_id] works on [REDACTED:codename]"
    assert counts == {"employee_id": 1, "custom": 1}


def test_url_option_redacts_before_the_store_sees_it() -> None:
    with open_store("memory://redact-url?redact=default") as store:
        session = store.create({"user_id": "u1"})
        session.add_message("user", "my password is hunter2 and key sk-abcdefghijklmnopqrstuvwx")
        session.add_message(
            "user",
            [{"type": "text", "text": "mail bob@example.com"}],
        )
        stored = store.load(session.session_id)
        assert stored.messages[0]["content"] == (
            "my password is [REDACTED:password] and key [REDACTED:api_key]"
        )
        assert stored.messages[1]["content"][0]["text"] == "mail [REDACTED:email]"
        assert stored.get_metadata("redactions") == {"password": 1, "api_key": 1, "email": 1}
        assert stored.get_metadata("user_id") == "u1"


def test_tool_call_arguments_and_saved_sessions_are_redacted() -> None:
    with open_store("memory://redact-save", redact="default") as store:
        from ailib import Session

        session = Session()
        session.add_message(
            "assistant",
            None,
            tool_calls=[
                {
                    "id": "c1",
                    "type": "function",
                    "function": {"name": "login", "arguments": '{"password": "s3cretpass"}'},
                }
            ],
        )
        store.save(session)
        stored = store.load(session.session_id)
        assert "s3cretpass" not in str(stored.messages)
        assert stored.get_metadata("redactions") == {"password": 1}


def test_unknown_policy_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="unknown redact policy 'strict'"):
        open_store("memory://?redact=strict")
