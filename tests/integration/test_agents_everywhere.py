"""AilibSession, the Agents SDK's session protocol, on every backend."""

from __future__ import annotations

import asyncio
import json
from typing import Any, cast

import openai
from agents import Agent, OpenAIResponsesModel, RunConfig, Runner, TResponseInputItem

import ailib
from ailib.integrations.openai_agents import AilibSession
from ailib.testing import FakeOpenAIServer

# The SDK types items as a union of TypedDicts; these are plain dicts of those shapes.
ITEMS = cast(
    list[TResponseInputItem],
    [
        {"role": "user", "content": "What's 2+2? ✓"},
        {"type": "function_call", "call_id": "c1", "name": "add", "arguments": '{"a":2,"b":2}'},
        {"type": "function_call_output", "call_id": "c1", "output": "4"},
        {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "sum"}]},
        {"role": "assistant", "content": [{"type": "output_text", "text": "4", "annotations": []}]},
    ],
)


def test_protocol(backend: tuple[str, str]) -> None:
    _, url = backend

    async def main() -> None:
        session = AilibSession("agents-protocol", url, user_id="ada")
        assert await session.get_items() == []
        assert await session.pop_item() is None
        await session.add_items(ITEMS[:2])
        await session.add_items(ITEMS[2:])
        assert json.dumps(await session.get_items()) == json.dumps(ITEMS)
        assert await session.get_items(limit=2) == ITEMS[-2:]
        limited = AilibSession("agents-protocol", url, session_settings={"limit": 1})
        assert await limited.get_items() == ITEMS[-1:]
        assert await session.pop_item() == ITEMS[-1]
        number = await session.checkpoint("four")
        await session.clear_session()
        assert await session.get_items() == []
        await session.restore(number)
        assert await session.get_items() == ITEMS[:-1]
        listed = await session.list_user_sessions()
        assert [s.session_id for s in listed] == ["agents-protocol"]
        await session.aclose()
        await limited.aclose()

    async def read_again() -> list[Any]:
        again = AilibSession("agents-protocol", url)
        try:
            return await again.get_items()
        finally:
            await again.aclose()

    asyncio.run(main())
    # Another event loop, another object: the same history.
    assert asyncio.run(read_again()) == ITEMS[:-1]


def test_runner_second_turn_sees_the_first(backend: tuple[str, str]) -> None:
    _, url = backend
    with FakeOpenAIServer() as server:

        async def turn(text: str) -> Any:
            client = openai.AsyncOpenAI(api_key="sk-test", base_url=server.base_url)
            model = OpenAIResponsesModel(model="fake-model", openai_client=client)
            agent = Agent(name="helper", instructions="Be brief.", model=model)
            session = AilibSession("agents-runner", url)
            result = await Runner.run(
                agent, text, session=session, run_config=RunConfig(tracing_disabled=True)
            )
            await session.aclose()
            return result.final_output

        first = asyncio.run(turn("My name is Ada."))
        second = asyncio.run(turn("What is my name?"))
    sent = json.dumps(server.requests[-1]["input"])
    assert "My name is Ada." in sent
    assert first in sent
    assert second.startswith("echo: What is my name?")
    with ailib.open_store(url) as store:
        assert len(store.load("agents-runner")) == 4
        store.delete("agents-runner")
