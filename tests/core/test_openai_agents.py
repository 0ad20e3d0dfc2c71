"""AilibSession: the Agents SDK's Session protocol over ailib stores."""

from __future__ import annotations

import asyncio
import json
import threading
import uuid
from typing import Any, cast

import openai
import pytest
from agents import (
    Agent,
    OpenAIResponsesModel,
    RunConfig,
    Runner,
    SessionSettings,
    TResponseInputItem,
)
from agents.memory import Session as AgentsSession

import ailib
from ailib.integrations.openai_agents import AilibSession
from ailib.testing import FakeOpenAIServer

# The SDK types items as a union of TypedDicts; these are plain dicts of those shapes.
ITEMS = cast(
    list[TResponseInputItem],
    [
        {"role": "user", "content": "What's 2+2?"},
        {"type": "function_call", "call_id": "c1", "name": "add", "arguments": '{"a":2,"b":2}'},
        {"type": "function_call_output", "call_id": "c1", "output": "4"},
        {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "sum"}]},
        {
            "role": "assistant",
            "content": [{"type": "output_text", "text": "4 ✓", "annotations": []}],
        },
    ],
)


@pytest.fixture
def url() -> str:
    return f"memory://agents-{uuid.uuid4().hex[:8]}"


def test_is_an_agents_session(url: str) -> None:
    assert isinstance(AilibSession("s1", url), AgentsSession)


def test_items_round_trip_exactly_and_in_order(url: str) -> None:
    async def main() -> list[Any]:
        session = AilibSession("exact", url)
        await session.add_items(ITEMS[:2])
        await session.add_items(ITEMS[2:])
        return await session.get_items()

    items = asyncio.run(main())
    assert json.dumps(items) == json.dumps(ITEMS)


def test_limits(url: str) -> None:
    async def main() -> None:
        session = AilibSession("limits", url)
        assert await session.get_items() == []
        await session.add_items(ITEMS)
        assert await session.get_items(limit=2) == ITEMS[-2:]
        assert await session.get_items(limit=0) == []
        assert await session.get_items(limit=99) == ITEMS
        limited = AilibSession("limits", url, session_settings={"limit": 3})
        assert limited.session_settings == SessionSettings(limit=3)
        assert await limited.get_items() == ITEMS[-3:]
        assert await limited.get_items(limit=1) == ITEMS[-1:]
        assert AilibSession("x", url).session_settings == SessionSettings()

    asyncio.run(main())


def test_pop_and_clear(url: str) -> None:
    async def main() -> None:
        session = AilibSession("popper", url)
        assert await session.pop_item() is None
        await session.add_items(ITEMS[:3])
        assert await session.pop_item() == ITEMS[2]
        assert await session.get_items() == ITEMS[:2]
        await session.clear_session()
        assert await session.get_items() == []
        assert await session.pop_item() is None
        await session.clear_session()

    asyncio.run(main())


def test_same_id_across_instances_threads_and_loops(url: str) -> None:
    first = AilibSession("shared", url)
    asyncio.run(first.add_items(ITEMS[:1]))
    asyncio.run(first.add_items(ITEMS[1:2]))

    seen: list[Any] = []

    def other_thread() -> None:
        seen.extend(asyncio.run(AilibSession("shared", url).get_items()))

    thread = threading.Thread(target=other_thread)
    thread.start()
    thread.join()
    assert seen == ITEMS[:2]


def test_sync_store_and_extras(url: str) -> None:
    store = ailib.open_store(url)

    async def main() -> None:
        session = AilibSession("extras", store, user_id="alice", ttl="1h")
        await session.add_items(ITEMS[:2])
        number = await session.checkpoint("two items")
        await session.add_items(ITEMS[2:])
        assert [c.label for c in await session.checkpoints()] == ["two items"]
        forked = await session.fork(number)
        assert await forked.get_items() == ITEMS[:2]
        await session.restore(number)
        assert await session.get_items() == ITEMS[:2]
        listed = await session.list_user_sessions()
        assert {s.session_id for s in listed} == {"extras", forked.session_id}

    asyncio.run(main())
    loaded = store.load("extras")
    assert loaded.kind == "items"
    assert loaded.expires_at is not None


def test_runner_second_turn_sees_the_first(url: str) -> None:
    with FakeOpenAIServer() as server:

        async def main() -> tuple[Any, Any]:
            client = openai.AsyncOpenAI(api_key="sk-test", base_url=server.base_url)
            model = OpenAIResponsesModel(model="fake-model", openai_client=client)
            agent = Agent(name="helper", instructions="Be brief.", model=model)
            config = RunConfig(tracing_disabled=True)
            session = AilibSession("runner", url)
            first = await Runner.run(agent, "My name is Ada.", session=session, run_config=config)
            again = AilibSession("runner", url)
            second = await Runner.run(agent, "What is my name?", session=again, run_config=config)
            return first.final_output, second.final_output

        first, second = asyncio.run(main())
        assert first == "echo: My name is Ada. (history: 2 messages)"
        sent = server.requests[-1]["input"]
        texts = json.dumps(sent)
        assert "My name is Ada." in texts
        assert first in texts
        assert second.startswith("echo: What is my name?")
        stored = ailib.open_store(url).load("runner")
        assert len(stored) == 4


def test_unknown_session_settings_are_refused_as_the_sdks_own_sessions_do(url: str) -> None:
    from agents.memory import SQLiteSession

    with pytest.raises(TypeError) as theirs:
        SQLiteSession("x", session_settings={"limitt": 1})
    with pytest.raises(ailib.errors.InvalidArgumentType) as ours:
        AilibSession("x", url, session_settings={"limitt": 1})
    assert isinstance(ours.value, TypeError)
    assert str(ours.value) == str(theirs.value) == "Unknown session settings: limitt"
    with pytest.raises(ailib.errors.InvalidArgumentType):
        AilibSession("x", url, session_settings="limit=3")  # type: ignore[arg-type]
    with pytest.raises(ailib.errors.InvalidArgument):
        AilibSession("x", url, session_settings={"limit": "many"})
    assert AilibSession("x", url, session_settings={"limit": 2}).session_settings == (
        SessionSettings(limit=2)
    )
