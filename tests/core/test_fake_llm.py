"""The offline LLM doubles: FakeChatClient and FakeOpenAIServer (checked with the real openai
client, and with the Agents SDK when it is installed)."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import openai
import pytest
from openai.types.chat import ChatCompletion
from openai.types.responses import Response

from ailib import Session
from ailib.testing.fake_client import FakeChatClient, offline_reply
from ailib.testing.openai_server import FakeOpenAIServer, echo_reply

KEY = "sk-fake"


@pytest.fixture
def server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer() as running:
        yield running


@pytest.fixture
def sdk(server: FakeOpenAIServer) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(api_key=KEY, base_url=server.base_url, max_retries=0) as client:
        yield client


# -- FakeChatClient -----------------------------------------------------------------------


def test_fake_client_reply_depends_on_the_conversation() -> None:
    client = FakeChatClient()
    history = [{"role": "system", "content": "S"}, {"role": "user", "content": "First"}]

    first = client.chat(history)
    history += [{"role": "assistant", "content": first}, {"role": "user", "content": "Second"}]
    second = client.chat(history)

    assert first == "[offline] reply #1 to: First"
    assert second == "[offline] reply #2 to: Second"
    assert client.chat(history) == second, "same conversation, same reply"


def test_fake_client_records_calls_and_accepts_sessions() -> None:
    client = FakeChatClient()
    session = Session()
    session.add_message("user", "Hello " + "x" * 100)

    reply = client.chat(session, temperature=0)
    session.add_message("assistant", reply)

    assert len(reply) < 100
    assert reply.endswith("…")
    (call,) = client.calls
    assert call.messages == [{"role": "user", "content": "Hello " + "x" * 100}]
    assert call.kwargs == {"temperature": 0}
    assert call.reply == reply
    assert len(session) == 2
    assert len(call.messages) == 1, "a recorded call does not change with the session"


def test_fake_client_chat_message_and_responder() -> None:
    client = FakeChatClient(lambda messages: f"{len(messages)} seen")

    message = client.chat_message([{"role": "user", "content": "a"}])

    assert message == {"role": "assistant", "content": "1 seen"}
    Session().add(message)
    assert offline_reply([]) == "[offline] reply #0 to: "


# -- FakeOpenAIServer: chat completions ---------------------------------------------------


def test_chat_completion_echoes_the_history(sdk: openai.OpenAI, server: FakeOpenAIServer) -> None:
    messages: Any = [
        {"role": "system", "content": "S"},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello"},
        {"role": "user", "content": "Again"},
    ]

    completion = sdk.chat.completions.create(model="m", messages=messages)

    ChatCompletion.model_validate(completion.model_dump())
    assert completion.choices[0].message.content == "echo: Again (history: 4 messages)"
    assert completion.model == "m"
    assert server.requests == [{"model": "m", "messages": messages}]


def test_streamed_chat_completion_joins_to_the_same_reply(sdk: openai.OpenAI) -> None:
    messages: Any = [{"role": "user", "content": "Tell  me   a story"}]

    chunks = list(
        sdk.chat.completions.create(
            model="m", messages=messages, stream=True, stream_options={"include_usage": True}
        )
    )

    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == echo_reply(messages) == "echo: Tell  me   a story (history: 1 messages)"
    assert len([c for c in chunks if c.choices]) > 3
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == len(text.split())


def test_responder_replaces_the_echo() -> None:
    seen: list[list[dict[str, Any]]] = []

    def responder(messages: list[dict[str, Any]]) -> str:
        seen.append(messages)
        return "custom"

    with FakeOpenAIServer(responder) as server:
        client = openai.OpenAI(api_key=KEY, base_url=server.base_url)
        reply = client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "q"}]
        )
        assert reply.choices[0].message.content == "custom"
        assert seen == [[{"role": "user", "content": "q"}]]


# -- FakeOpenAIServer: Responses API ------------------------------------------------------


def test_response_reflects_instructions_and_input(
    sdk: openai.OpenAI, server: FakeOpenAIServer
) -> None:
    response = sdk.responses.create(
        model="m",
        instructions="Be brief.",
        input=[
            {"role": "user", "content": "One"},
            {"role": "assistant", "content": "Ok"},
            {"role": "user", "content": [{"type": "input_text", "text": "Two"}]},
        ],
    )

    Response.model_validate(response.model_dump())
    assert response.output_text == "echo: Two (history: 4 messages)"
    assert response.status == "completed"
    assert response.usage is not None
    assert server.requests[0]["instructions"] == "Be brief."


def test_previous_response_id_continues_the_conversation(sdk: openai.OpenAI) -> None:
    first = sdk.responses.create(model="m", input="One")
    second = sdk.responses.create(model="m", input="Two", previous_response_id=first.id)

    assert first.output_text == "echo: One (history: 1 messages)"
    assert second.output_text == "echo: Two (history: 3 messages)"
    assert second.previous_response_id == first.id
    with pytest.raises(openai.NotFoundError):
        sdk.responses.create(model="m", input="x", previous_response_id="resp_missing")


def test_streamed_response_events(sdk: openai.OpenAI) -> None:
    events = list(sdk.responses.create(model="m", input="Stream this please", stream=True))

    kinds = [event.type for event in events]
    assert kinds[:4] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ]
    assert kinds[-4:] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [event.sequence_number for event in events] == list(range(len(events)))
    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    final = events[-1]
    assert final.type == "response.completed"
    assert deltas == final.response.output_text == "echo: Stream this please (history: 1 messages)"


# -- FakeOpenAIServer: plumbing -----------------------------------------------------------


def test_models_and_request_log(sdk: openai.OpenAI, server: FakeOpenAIServer) -> None:
    assert [model.id for model in sdk.models.list()] == ["fake-model"]
    assert sdk.models.retrieve("llama3").id == "llama3"
    assert server.log == [("GET", "/models"), ("GET", "/models/llama3")]
    assert server.requests == []

    server.reset()
    assert server.log == []


def test_unknown_paths_and_bad_bodies_are_openai_style_errors(server: FakeOpenAIServer) -> None:
    def post(path: str, data: bytes) -> tuple[int, dict[str, Any]]:
        request = urllib.request.Request(server.base_url + path, data=data, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=5) as answer:
                return answer.status, json.load(answer)
        except urllib.error.HTTPError as error:
            return error.code, json.load(error)

    status, body = post("/nowhere", b"{}")
    assert status == 404
    assert "Unknown URL" in body["error"]["message"]

    status, body = post("/chat/completions", b"not json")
    assert status == 400
    assert "not valid JSON" in body["error"]["message"]

    status, body = post("/chat/completions", b'{"messages": "hi"}')
    assert status == 400


def test_server_requires_its_api_key_when_given() -> None:
    with FakeOpenAIServer(api_key="sk-right") as server:
        wrong = openai.OpenAI(api_key="sk-wrong", base_url=server.base_url, max_retries=0)
        with pytest.raises(openai.AuthenticationError):
            wrong.models.list()
        right = openai.OpenAI(api_key="sk-right", base_url=server.base_url)
        assert right.models.list().data[0].id == "fake-model"
        assert "sk-right" not in repr(server)


def test_base_url_needs_a_running_server() -> None:
    server = FakeOpenAIServer()
    with pytest.raises(RuntimeError, match="not running"):
        _ = server.base_url
    with server:
        assert server.base_url.startswith("http://127.0.0.1:")
        assert server.base_url.endswith("/v1")
    with pytest.raises(RuntimeError):
        _ = server.base_url


# -- the Agents SDK -----------------------------------------------------------------------


def test_agents_sdk_runner_completes_a_turn(server: FakeOpenAIServer) -> None:
    agents = pytest.importorskip("agents")

    async def main() -> tuple[Any, Any]:
        def agent() -> Any:
            client = openai.AsyncOpenAI(api_key=KEY, base_url=server.base_url)
            model = agents.OpenAIResponsesModel(model="fake-model", openai_client=client)
            return agents.Agent(name="helper", instructions="Be helpful.", model=model)

        config = agents.RunConfig(tracing_disabled=True)
        result = await agents.Runner.run(agent(), "Hello agent", run_config=config)
        streamed = agents.Runner.run_streamed(agent(), "Hello stream", run_config=config)
        async for _ in streamed.stream_events():
            pass
        return result.final_output, streamed.final_output

    plain, streamed = asyncio.run(main())

    assert plain == "echo: Hello agent (history: 2 messages)"
    assert streamed == "echo: Hello stream (history: 2 messages)"
    assert [body.get("stream", False) for body in server.requests] == [False, True]
    assert server.requests[0]["instructions"] == "Be helpful."
