"""Choosing which messages to send: context windows and tool-call-safe tails.

An assistant message with ``tool_calls`` and the ``tool`` messages answering it form one
group; the API rejects a request that carries one without the other, so nothing here ever
splits a group.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeAlias

from ailib.messages import Message

__all__ = ("TokenCounter", "approximate_tokens", "message_text", "safe_tail_start", "window")

TokenCounter: TypeAlias = Callable[[Message], int]


def message_text(message: Message) -> str:
    """The text of a message's content (text parts joined), for counting and display."""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return ""


def approximate_tokens(message: Message) -> int:
    """A tokenizer-free estimate (~4 characters a token plus per-message overhead).

    Pass a real counter (tiktoken's, say) as ``token_counter`` where precision matters.
    """
    text = message_text(message)
    for call in message.get("tool_calls") or ():
        function = call.get("function") or {}
        text += str(function.get("name", "")) + str(function.get("arguments", ""))
    return 4 + (len(text) + 3) // 4


def safe_tail_start(messages: Sequence[Message], start: int) -> int:
    """Move ``start`` back so the tail ``messages[start:]`` does not open with orphaned tool
    results: it then includes the assistant message that made the calls."""
    start = max(0, min(start, len(messages)))
    while 0 < start < len(messages) and messages[start].get("role") == "tool":
        start -= 1
    return start


def _groups(messages: Sequence[Message]) -> list[list[Message]]:
    groups: list[list[Message]] = []
    for message in messages:
        if message.get("role") == "tool" and groups and _is_call_group(groups[-1]):
            groups[-1].append(message)
        else:
            groups.append([message])
    return groups


def _is_call_group(group: list[Message]) -> bool:
    return bool(group[0].get("role") == "assistant" and group[0].get("tool_calls"))


def window(
    messages: Sequence[Message],
    *,
    max_messages: int | None = None,
    max_tokens: int | None = None,
    token_counter: TokenCounter = approximate_tokens,
    keep_system: bool = True,
) -> list[Message]:
    """The newest messages that fit both limits, after the leading system prompt(s).

    The leading ``system``/``developer`` messages are kept (and counted) when ``keep_system``;
    then whole groups are taken from the newest backwards until the next would not fit.
    """
    if max_messages is not None and max_messages < 0:
        raise ValueError("max_messages must be >= 0")
    head: list[Message] = []
    if keep_system:
        for message in messages:
            if message.get("role") not in ("system", "developer"):
                break
            head.append(message)
    rest = messages[len(head) :]
    used_messages = len(head)
    used_tokens = sum(token_counter(m) for m in head) if max_tokens is not None else 0
    chosen: list[list[Message]] = []
    for group in reversed(_groups(rest)):
        if max_messages is not None and used_messages + len(group) > max_messages:
            break
        cost = sum(token_counter(m) for m in group) if max_tokens is not None else 0
        if max_tokens is not None and used_tokens + cost > max_tokens:
            break
        chosen.append(group)
        used_messages += len(group)
        used_tokens += cost
    return head + [m for group in reversed(chosen) for m in group]
