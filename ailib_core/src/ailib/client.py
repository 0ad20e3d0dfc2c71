"""Chat clients for any OpenAI-compatible server, built on the official ``openai`` package.

``OpenAIClient()`` with no arguments reads ``OPENAI_API_KEY``, ``OPENAI_BASE_URL`` and
``AILIB_MODEL`` from the environment, so the same code talks to OpenAI or to a local server
(Ollama, vLLM, llama.cpp, ...) by pointing ``OPENAI_BASE_URL`` at it. The ``openai`` package
insists on a key even for servers that ignore it: any non-empty value (``OPENAI_API_KEY=local``)
works there.

``chat`` takes a list of Chat Completions message dicts or a :class:`~ailib.Session` and returns
the assistant's text; ``chat_message`` returns the whole assistant message (with ``tool_calls``),
ready for ``session.add``. Errors from the server (``openai.APIError`` and subclasses) propagate
unchanged; only a missing key is reported, when the client is built (before any request), as
``ConfigurationError``, whose message says how to run offline instead.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any, Final, Protocol, TypeAlias, cast
from urllib.parse import urlsplit, urlunsplit

import openai
from openai.types.chat import ChatCompletion, ChatCompletionMessageParam

from ailib.errors import ConfigurationError
from ailib.messages import CHAT, Message
from ailib.session import Session

__all__ = (
    "DEFAULT_MODEL",
    "DEFAULT_TIMEOUT",
    "AsyncOpenAIClient",
    "ChatClient",
    "ChatInput",
    "OpenAIClient",
    "as_messages",
)

DEFAULT_MODEL: Final = "gpt-4o-mini"
DEFAULT_TIMEOUT: Final = 60.0

ChatInput: TypeAlias = Session | Iterable[Mapping[str, Any]]
"""What ``chat`` accepts: a session, or Chat Completions message dicts in order."""


class ChatClient(Protocol):
    """The synchronous surface shared by :class:`OpenAIClient` and the offline fakes."""

    model: str

    def chat(self, messages: ChatInput, **kwargs: Any) -> str: ...

    def chat_message(self, messages: ChatInput, **kwargs: Any) -> Message: ...


def as_messages(messages: ChatInput) -> list[Message]:
    """The message dicts to send: a session's messages, or a copy of the given dicts."""
    if isinstance(messages, Session):
        if messages.kind != CHAT:
            raise ValueError(
                f"session {messages.session_id} holds {messages.kind!r} (Responses API items), "
                "not chat messages; chat() needs a session of kind 'chat'"
            )
        return messages.get_messages()
    if isinstance(messages, str | bytes | Mapping):
        raise TypeError(
            "chat() takes a list of message dicts or a Session, e.g. "
            "[{'role': 'user', 'content': 'Hello'}]"
        )
    return [dict(m) for m in messages]


class _Config:
    """Settings resolution shared by the sync and async clients."""

    model: str
    base_url: str | None

    def _configure(self, model: str | None, api_key: str | None, base_url: str | None) -> str:
        self.model = model or os.environ.get("AILIB_MODEL") or DEFAULT_MODEL
        self.base_url = base_url or os.environ.get("OPENAI_BASE_URL") or None
        key = api_key or os.environ.get("OPENAI_API_KEY")
        if not key:
            where = (
                f"; the server at {_display_url(self.base_url)} may ignore it, but the openai "
                "package needs one, so any non-empty value (OPENAI_API_KEY=local) works there"
                if self.base_url
                else ""
            )
            raise ConfigurationError(
                "no OpenAI API key: set the OPENAI_API_KEY environment variable (or a .env file "
                f"read by load_dotenv()), or pass api_key=...{where}. To run offline, use "
                "ailib.testing.FakeChatClient() in place of this client (deterministic replies, "
                "no network), or point OPENAI_BASE_URL (base_url=...) at a local "
                "OpenAI-compatible server such as Ollama with OPENAI_API_KEY=local"
            )
        return key

    def _request(
        self, messages: ChatInput, kwargs: dict[str, Any]
    ) -> tuple[str, list[ChatCompletionMessageParam], dict[str, Any]]:
        """``(model, messages, other create() arguments)`` for one call."""
        if kwargs.pop("stream", None):
            raise TypeError("chat() does not stream; use client.openai.chat.completions.create")
        model = kwargs.pop("model", None) or self.model
        return model, cast(list[ChatCompletionMessageParam], as_messages(messages)), kwargs

    def __repr__(self) -> str:
        where = f", base_url={_display_url(self.base_url)!r}" if self.base_url else ""
        return f"{type(self).__name__}(model={self.model!r}{where})"


class OpenAIClient(_Config):
    """A synchronous chat client; ``openai`` holds the underlying ``openai.OpenAI``.

    ``client_kwargs`` go to ``openai.OpenAI`` (``max_retries``, ``default_headers``, ...);
    keyword arguments of :meth:`chat` go to ``chat.completions.create`` (``temperature``,
    ``tools``, ``model`` to override the client's model for one call, ...).
    """

    def __init__(
        self,
        model: str | None = None,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        timeout: float | openai.Timeout | None = DEFAULT_TIMEOUT,
        **client_kwargs: Any,
    ) -> None:
        key = self._configure(model, api_key, base_url)
        self.openai: openai.OpenAI = openai.OpenAI(
            api_key=key, base_url=self.base_url, timeout=timeout, **client_kwargs
        )

    def complete(self, messages: ChatInput, **kwargs: Any) -> ChatCompletion:
        """The raw ``ChatCompletion`` for ``messages``."""
        model, sent, extra = self._request(messages, kwargs)
        completion: ChatCompletion = self.openai.chat.completions.create(
            model=model, messages=sent, stream=False, **extra
        )
        return completion

    def chat(self, messages: ChatInput, **kwargs: Any) -> str:
        """The assistant's reply text ("" when it answered only with tool calls)."""
        return _text(self.complete(messages, **kwargs))

    def chat_message(self, messages: ChatInput, **kwargs: Any) -> Message:
        """The assistant's reply as a message dict, ready for ``session.add``."""
        return _message(self.complete(messages, **kwargs))

    def close(self) -> None:
        self.openai.close()

    def __enter__(self) -> OpenAIClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class AsyncOpenAIClient(_Config):
    """The asyncio twin of :class:`OpenAIClient`, over ``openai.AsyncOpenAI``."""

    def __init__(
        self,
        model: str | None = None,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        timeout: float | openai.Timeout | None = DEFAULT_TIMEOUT,
        **client_kwargs: Any,
    ) -> None:
        key = self._configure(model, api_key, base_url)
        self.openai: openai.AsyncOpenAI = openai.AsyncOpenAI(
            api_key=key, base_url=self.base_url, timeout=timeout, **client_kwargs
        )

    async def complete(self, messages: ChatInput, **kwargs: Any) -> ChatCompletion:
        model, sent, extra = self._request(messages, kwargs)
        completion: ChatCompletion = await self.openai.chat.completions.create(
            model=model, messages=sent, stream=False, **extra
        )
        return completion

    async def chat(self, messages: ChatInput, **kwargs: Any) -> str:
        return _text(await self.complete(messages, **kwargs))

    async def chat_message(self, messages: ChatInput, **kwargs: Any) -> Message:
        return _message(await self.complete(messages, **kwargs))

    async def close(self) -> None:
        await self.openai.close()

    async def __aenter__(self) -> AsyncOpenAIClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


def _text(completion: ChatCompletion) -> str:
    if not completion.choices:
        return ""
    return completion.choices[0].message.content or ""


def _message(completion: ChatCompletion) -> Message:
    if not completion.choices:
        return {"role": "assistant", "content": ""}
    reply = completion.choices[0].message
    message: Message = {"role": "assistant", "content": reply.content}
    if reply.tool_calls:
        message["tool_calls"] = [call.model_dump(exclude_none=True) for call in reply.tool_calls]
    for name in ("refusal", "audio", "function_call"):
        value = getattr(reply, name)
        if value is not None:
            message[name] = value if isinstance(value, str) else value.model_dump()
    if message["content"] is None and len(message) == 2:
        message["content"] = ""
    return message


def _display_url(url: str | None) -> str:
    """``url`` without a password or query string, either of which may hold a credential."""
    if not url:
        return ""
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        netloc = f"{userinfo.split(':', 1)[0]}:***@{host}"
    query = "***" if parts.query else ""
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))
