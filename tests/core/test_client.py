"""OpenAIClient / AsyncOpenAIClient against the local FakeOpenAIServer (never the real API)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import httpx2
import openai
import pytest

import ailib
from ailib import ConfigurationError, Session
from ailib.client import DEFAULT_MODEL, AsyncOpenAIClient, OpenAIClient
from ailib.testing.openai_server import FakeOpenAIServer

SECRET = "sk-test-do-not-leak-0123456789"
HISTORY = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "Hi"},
    {"role": "assistant", "content": "Hello."},
    {"role": "user", "content": "What is 2+2?"},
]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "OPENAI_API_KEY",
        "OPENAI_BASE_URL",
        "OPENAI_ADMIN_KEY",
        "OPENAI_CUSTOM_HEADERS",
        "AILIB_MODEL",
    ):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer() as running:
        yield running


@pytest.fixture
def client(server: FakeOpenAIServer) -> Iterator[OpenAIClient]:
    with OpenAIClient(api_key=SECRET, base_url=server.base_url, max_retries=0) as made:
        yield made


def test_chat_sends_the_whole_history_and_returns_the_text(
    client: OpenAIClient, server: FakeOpenAIServer
) -> None:
    reply = client.chat(HISTORY)

    assert reply == "echo: What is 2+2? (history: 4 messages)"
    (body,) = server.requests
    assert body["messages"] == HISTORY
    assert body["model"] == DEFAULT_MODEL
    assert server.log == [("POST", "/chat/completions")]


def test_chat_accepts_a_session_without_changing_it(
    client: OpenAIClient, server: FakeOpenAIServer
) -> None:
    session = Session()
    for message in HISTORY:
        session.add_message(message["role"], message["content"])

    reply = client.chat(session)

    assert reply.endswith("(history: 4 messages)")
    assert server.requests[0]["messages"] == session.get_messages() == HISTORY
    assert len(session) == 4, "chat() must not append the reply itself"


def test_chat_message_can_be_added_to_a_session(client: OpenAIClient) -> None:
    session = Session()
    session.add_message("user", "Ping")

    message = client.chat_message(session)
    session.add(message)

    assert message == {"role": "assistant", "content": "echo: Ping (history: 1 messages)"}
    assert [m["role"] for m in session.get_messages()] == ["user", "assistant"]


def test_chat_message_keeps_tool_calls() -> None:
    completion = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 0,
        "model": "m",
        "choices": [
            {
                "index": 0,
                "finish_reason": "tool_calls",
                "message": {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": "call_1",
                            "type": "function",
                            "function": {"name": "weather", "arguments": '{"city": "Paris"}'},
                        }
                    ],
                },
            }
        ],
    }
    transport = httpx2.MockTransport(lambda request: httpx2.Response(200, json=completion))
    client = OpenAIClient(
        api_key=SECRET,
        base_url="http://127.0.0.1:9/v1",
        http_client=httpx2.Client(transport=transport),
    )

    message = client.chat_message([{"role": "user", "content": "Weather in Paris?"}])

    assert message == {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "call_1",
                "type": "function",
                "function": {"name": "weather", "arguments": '{"city": "Paris"}'},
            }
        ],
    }
    Session().add(message)
    assert client.chat([{"role": "user", "content": "again"}]) == ""


def test_settings_come_from_the_environment(
    server: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
    monkeypatch.setenv("AILIB_MODEL", "llama3.2")

    client = OpenAIClient()
    client.chat([{"role": "user", "content": "hello"}])

    assert client.model == "llama3.2"
    assert client.base_url == server.base_url
    assert server.requests[0]["model"] == "llama3.2"


def test_arguments_beat_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-wrong")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("AILIB_MODEL", "env-model")
    strict = FakeOpenAIServer(api_key=SECRET).start()
    try:
        client = OpenAIClient("arg-model", api_key=SECRET, base_url=strict.base_url)
        assert client.chat([{"role": "user", "content": "x"}]).startswith("echo: x")
        assert strict.requests[0]["model"] == "arg-model"
    finally:
        strict.stop()


def test_default_model_without_argument_or_env() -> None:
    assert OpenAIClient(api_key=SECRET).model == DEFAULT_MODEL == "gpt-4o-mini"


def test_per_call_arguments_are_forwarded(client: OpenAIClient, server: FakeOpenAIServer) -> None:
    client.chat([{"role": "user", "content": "x"}], temperature=0.25, model="other", seed=7)

    body = server.requests[0]
    assert (body["temperature"], body["model"], body["seed"]) == (0.25, "other", 7)
    assert "stream" not in body or body["stream"] is False


def test_chat_refuses_streaming_and_plain_strings(client: OpenAIClient) -> None:
    with pytest.raises(TypeError, match="does not stream"):
        client.chat([{"role": "user", "content": "x"}], stream=True)
    with pytest.raises(TypeError, match="list of message dicts or a Session"):
        client.chat("Hello")  # type: ignore[arg-type]


def test_missing_key_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="OPENAI_API_KEY") as caught:
        OpenAIClient()
    assert "api_key" in str(caught.value)


def test_missing_key_says_how_to_run_offline() -> None:
    with pytest.raises(ConfigurationError) as caught:
        OpenAIClient()
    text = str(caught.value)
    assert "To run offline, use ailib.testing.FakeChatClient() in place of this client" in text
    assert "OPENAI_BASE_URL" in text
    # What the message names exists and stands in for the client as it says.
    import ailib.testing

    offline = ailib.testing.FakeChatClient()
    assert offline.chat(HISTORY) == "[offline] reply #2 to: What is 2+2?"


def test_missing_key_for_a_local_server_says_any_value_works() -> None:
    with pytest.raises(ConfigurationError) as caught:
        OpenAIClient(base_url="http://user:hunter2@127.0.0.1:11434/v1")
    text = str(caught.value)
    assert "OPENAI_API_KEY" in text
    assert "any non-empty value" in text
    assert "127.0.0.1:11434" in text
    assert "hunter2" not in text, "the URL's password must be masked"


def test_missing_key_from_async_client_too() -> None:
    with pytest.raises(ConfigurationError, match="OPENAI_API_KEY"):
        AsyncOpenAIClient()


def test_repr_shows_model_and_base_url_but_never_the_key(server: FakeOpenAIServer) -> None:
    client = OpenAIClient("m1", api_key=SECRET, base_url=server.base_url)
    text = repr(client)

    assert text == f"OpenAIClient(model='m1', base_url='{server.base_url}')"
    assert SECRET not in text
    assert SECRET not in str(client)

    masked = repr(OpenAIClient(api_key=SECRET, base_url="https://u:pw-9@proxy.test/v1?key=k-9"))
    assert "pw-9" not in masked
    assert "k-9" not in masked
    assert "proxy.test/v1" in masked


def test_the_key_is_sent_and_api_errors_propagate() -> None:
    strict = FakeOpenAIServer(api_key=SECRET).start()
    try:
        good = OpenAIClient(api_key=SECRET, base_url=strict.base_url, max_retries=0)
        assert good.chat([{"role": "user", "content": "x"}]).startswith("echo: x")

        bad = OpenAIClient(api_key="sk-other", base_url=strict.base_url, max_retries=0)
        with pytest.raises(openai.AuthenticationError):
            bad.chat([{"role": "user", "content": "x"}])
    finally:
        strict.stop()


def test_server_errors_are_openai_errors() -> None:
    def broken(messages: list[dict[str, object]]) -> str:
        raise RuntimeError("model crashed")

    with FakeOpenAIServer(broken) as failing:
        client = OpenAIClient(api_key=SECRET, base_url=failing.base_url, max_retries=0)
        with pytest.raises(openai.InternalServerError, match="model crashed"):
            client.chat([{"role": "user", "content": "x"}])
        assert [type(e) for e in failing.errors] == [RuntimeError]


def test_async_client_sends_the_session(server: FakeOpenAIServer) -> None:
    session = Session()
    session.add_message("system", "Be kind.")
    session.add_message("user", "Async hello")

    async def main() -> tuple[str, dict[str, object]]:
        async with AsyncOpenAIClient(api_key=SECRET, base_url=server.base_url) as client:
            return await client.chat(session), await client.chat_message(session)

    text, message = asyncio.run(main())

    assert text == "echo: Async hello (history: 2 messages)"
    assert message == {"role": "assistant", "content": text}
    assert [r["messages"] for r in server.requests] == [session.get_messages()] * 2
    assert "AsyncOpenAIClient(model=" in repr(AsyncOpenAIClient(api_key=SECRET))


def test_ailib_exposes_the_clients_lazily() -> None:
    assert ailib.OpenAIClient is OpenAIClient
    assert ailib.AsyncOpenAIClient is AsyncOpenAIClient


def test_requests_carry_json_serialisable_messages(
    client: OpenAIClient, server: FakeOpenAIServer
) -> None:
    parts = [{"type": "text", "text": "Describe"}, {"type": "text", "text": " this"}]
    client.chat([{"role": "user", "content": parts}])

    assert server.requests[0]["messages"] == [{"role": "user", "content": parts}]
    json.dumps(server.requests)
