"""`FakeChatClient`: an offline, deterministic stand-in for :class:`ailib.OpenAIClient`.

The default reply depends only on the conversation, ``"[offline] reply #<n> to: <text>"``
where ``n`` counts the user messages and ``text`` is the last one (shortened), so a test can
tell from a reply which turn produced it and whether the history reached the client.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

from ailib.client import ChatInput, as_messages
from ailib.messages import Message
from ailib.window import message_text

__all__ = ("ChatCall", "FakeChatClient", "Responder", "offline_reply")

Responder = Callable[[list[Message]], str]

_MAX_ECHO: Final = 60


@dataclass(frozen=True)
class ChatCall:
    """One ``chat``/``chat_message`` call: the messages as sent, the keyword arguments and the
    reply given."""

    messages: list[Message]
    kwargs: dict[str, Any] = field(default_factory=dict)
    reply: str = ""


def offline_reply(messages: list[Message]) -> str:
    """The default deterministic reply to ``messages``."""
    users = [m for m in messages if m.get("role") == "user"]
    last = " ".join(message_text(users[-1]).split()) if users else ""
    if len(last) > _MAX_ECHO:
        last = last[: _MAX_ECHO - 1] + "…"
    return f"[offline] reply #{len(users)} to: {last}"


class FakeChatClient:
    """Same ``chat``/``chat_message`` surface as ``OpenAIClient``, with no network at all.

    Every call is recorded in :attr:`calls`; pass ``responder`` to choose the replies.
    """

    def __init__(self, responder: Responder | None = None, *, model: str = "fake-model") -> None:
        self.model = model
        self.responder: Responder = responder or offline_reply
        self.calls: list[ChatCall] = []

    def chat(self, messages: ChatInput, **kwargs: Any) -> str:
        sent = copy.deepcopy(as_messages(messages))
        reply = self.responder(copy.deepcopy(sent))
        self.calls.append(ChatCall(sent, dict(kwargs), reply))
        return reply

    def chat_message(self, messages: ChatInput, **kwargs: Any) -> Message:
        return {"role": "assistant", "content": self.chat(messages, **kwargs)}

    def __repr__(self) -> str:
        return f"FakeChatClient(model={self.model!r}, calls={len(self.calls)})"
