"""Redaction before persist: secrets are replaced by typed markers before any store sees them.

Turn it on per store with ``?redact=default`` in the URL, or in code with
``store.hooks.register(Redactor())``. Only the matched text is replaced
(``[REDACTED:api_key]``), never the whole message; how many of each kind were replaced is
added up in the session's ``redactions`` metadata.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from ailib.hookspecs import hookimpl
from ailib.messages import Message

__all__ = ("DEFAULT_RULES", "Redactor", "Rule", "luhn_valid", "marker")

COUNT_KEY: Final = "redactions"


def marker(kind: str) -> str:
    return f"[REDACTED:{kind}]"


def luhn_valid(text: str) -> bool:
    """The payment-card checksum, so that order numbers and phone numbers are left alone."""
    digits = [int(c) for c in text if c.isdigit()]
    if not 13 <= len(digits) <= 19:
        return False
    total = 0
    for index, digit in enumerate(reversed(digits)):
        if index % 2:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return total % 10 == 0


@dataclass(frozen=True)
class Rule:
    """Replace what ``pattern`` matches (its ``secret`` group if it has one) with a marker of
    ``kind``, where ``check`` (if given) accepts the match."""

    kind: str
    pattern: re.Pattern[str]
    check: Callable[[str], bool] | None = None

    @classmethod
    def of(cls, kind: str, pattern: str, check: Callable[[str], bool] | None = None) -> Rule:
        return cls(kind, re.compile(pattern), check)

    def apply(self, text: str, counts: Counter[str]) -> str:
        def replace(match: re.Match[str]) -> str:
            group = "secret" if "secret" in self.pattern.groupindex else 0
            secret = match.group(group)
            if self.check is not None and not self.check(secret):
                return match.group(0)
            counts[self.kind] += 1
            start, end = match.start(group) - match.start(), match.end(group) - match.start()
            whole = match.group(0)
            return whole[:start] + marker(self.kind) + whole[end:]

        return self.pattern.sub(replace, text)


DEFAULT_RULES: Final = (
    Rule.of(
        "private_key", r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]+?-----END [A-Z ]*PRIVATE KEY-----"
    ),
    Rule.of("jwt", r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"),
    Rule.of("api_key", r"\bsk-(?:proj-|svcacct-|admin-|ant-)?[A-Za-z0-9_-]{20,}"),
    Rule.of("aws_access_key", r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
    Rule.of(
        "aws_secret_key",
        r"(?i)aws_?secret_?(?:access_?)?key\W{0,3}(?P<secret>[A-Za-z0-9/+=]{40})(?![A-Za-z0-9/+=])",
    ),
    Rule.of("github_token", r"\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,})"),
    Rule.of("bearer_token", r"(?i)\bbearer\s+(?P<secret>[A-Za-z0-9._~+/-]{16,}=*)"),
    Rule.of(
        "password",
        r"(?i)\b(?:password|passwd|pwd|passphrase)\b['\"]?(?:\s+is|\s*[:=])\s*['\"]?"
        r"(?P<secret>[^\s'\"]{2,}[^\s'\",.;:)])",
    ),
    Rule.of("email", r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b"),
    Rule.of("card_number", r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-])", luhn_valid),
)


class Redactor:
    """A redaction policy: the default rules, plus ``patterns`` ({kind: regex}) and
    ``callables`` (text -> text) of your own."""

    def __init__(
        self,
        rules: Sequence[Rule] = DEFAULT_RULES,
        *,
        patterns: dict[str, str] | None = None,
        callables: Iterable[Callable[[str], str]] = (),
    ) -> None:
        self.rules = [*rules, *(Rule.of(k, p) for k, p in (patterns or {}).items())]
        self.callables = list(callables)

    def redact_text(self, text: str, counts: Counter[str] | None = None) -> str:
        counts = Counter() if counts is None else counts
        for rule in self.rules:
            text = rule.apply(text, counts)
        for function in self.callables:
            changed = function(text)
            if changed != text:
                counts["custom"] += 1
            text = changed
        return text

    def redact_message(self, message: Message, counts: Counter[str]) -> None:
        content = message.get("content")
        if isinstance(content, str):
            message["content"] = self.redact_text(content, counts)
        elif isinstance(content, list):
            for part in content:
                if isinstance(part, dict) and isinstance(part.get("text"), str):
                    part["text"] = self.redact_text(part["text"], counts)
        for call in message.get("tool_calls") or ():
            function = call.get("function") if isinstance(call, dict) else None
            if isinstance(function, dict) and isinstance(function.get("arguments"), str):
                function["arguments"] = self.redact_text(function["arguments"], counts)
        for key in ("output", "arguments"):
            if isinstance(message.get(key), str):
                message[key] = self.redact_text(message[key], counts)

    @hookimpl
    def ailib_before_write(
        self,
        store: Any,
        session_id: str,
        messages: list[Message],
        metadata: dict[str, Any],
        counts: dict[str, Counter[str]],
    ) -> None:
        for message in messages:
            self.redact_message(message, counts[COUNT_KEY])
