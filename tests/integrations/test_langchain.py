"""``AilibChatMessageHistory``: LangChain's chat history kept in ailib, on memory, SQLite,
PostgreSQL, Redis and S3 (moto), sync and async.

Besides its own cases, this module runs langchain-core's own test cases for chat histories
against the adapter, as equivalent invocations (cited on each test):
``libs/core/tests/unit_tests/chat_history/test_chat_history.py``,
``libs/core/tests/unit_tests/chat_history/test_file_chat_message_history.py`` and
``libs/core/tests/unit_tests/runnables/test_history.py`` of the langchain-ai/langchain
repository. ``langchain_tests`` (langchain's standard tests) has no chat-history suite.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from langchain_core.language_models.fake_chat_models import (
    FakeListChatModel,
    GenericFakeChatModel,
)
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    ChatMessage,
    FunctionMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.prompts import ChatPromptTemplate, MessagesPlaceholder
from langchain_core.runnables import RunnableConfig, RunnableLambda
from langchain_core.runnables.history import RunnableWithMessageHistory
from langchain_core.runnables.utils import ConfigurableFieldSpec

import ailib
from ailib import CorruptSessionError
from ailib.base import BaseStore
from ailib.errors import InvalidArgument, InvalidArgumentType
from ailib.integrations.langchain import AilibChatMessageHistory
from tests.integrations.conftest import backend_url

pytestmark = pytest.mark.filterwarnings(
    "ignore:RunnableWithMessageHistory is deprecated:DeprecationWarning"
)
BACKENDS = ["memory", "sqlite", "postgresql", "redis", "s3"]

#: One of each LangChain message type, with every field that must survive.
EVERY_KIND: list[BaseMessage] = [
    SystemMessage("You are terse.", id="sys-1", additional_kwargs={"cache": {"ttl": 5}}),
    HumanMessage(
        [
            {"type": "text", "text": "what is in it?"},
            {"type": "image_url", "image_url": {"url": "data:,x"}},
        ],
        id="h-1",
        name="alice",
        response_metadata={"received": "2026-11-28"},
    ),
    AIMessage(
        "",
        id="ai-1",
        name="bot",
        tool_calls=[{"name": "lookup", "args": {"q": "ünïcode", "n": 3}, "id": "call-1"}],
        invalid_tool_calls=[
            {"name": "broken", "args": "{not json", "id": "call-2", "error": "bad"}
        ],
        usage_metadata={
            "input_tokens": 10,
            "output_tokens": 4,
            "total_tokens": 14,
            "input_token_details": {"cache_read": 2},
        },
        additional_kwargs={"refusal": None, "nested": {"a": [1, 2.5, None, True]}},
        response_metadata={"model_name": "fake", "finish_reason": "tool_calls"},
    ),
    ToolMessage(
        "42", tool_call_id="call-1", artifact={"rows": [[1, "a"]]}, status="error", name="lookup"
    ),
    FunctionMessage(content='{"ok": true}', name="legacy_fn", id="fn-1"),
    ChatMessage(content="looks right", role="critic", id="chat-1"),
    AIMessageChunk(content="partial", id="chunk-1", response_metadata={"chunk": 1}),
    AIMessage("final answer", id="ai-2"),
]


@pytest.fixture(params=BACKENDS)
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return backend_url(request, request.param, tmp_path)


@pytest.fixture
def store(url: str) -> Iterator[BaseStore]:
    with ailib.open_store(url) as opened:
        yield opened


def same_messages(left: list[BaseMessage], right: list[BaseMessage]) -> None:
    assert [type(m) for m in left] == [type(m) for m in right]
    assert [m.model_dump() for m in left] == [m.model_dump() for m in right]


# -- ailib's own cases ---------------------------------------------------------------------


def test_every_message_kind_round_trips_exactly(url: str) -> None:
    with AilibChatMessageHistory("conv-1", url) as history:
        assert history.messages == []
        history.add_messages(EVERY_KIND[:3])
        history.add_messages(EVERY_KIND[3:])
    # Another history object, its own store connection: what a new process sees.
    with AilibChatMessageHistory("conv-1", url) as again:
        same_messages(again.messages, EVERY_KIND)
        assert again.messages == EVERY_KIND


def test_async_round_trip_with_a_url_is_native(url: str) -> None:
    async def main() -> list[BaseMessage]:
        async with AilibChatMessageHistory("conv-a", url) as history:
            assert await history.aget_messages() == []
            await history.aadd_messages(EVERY_KIND[:4])
            await history.aadd_messages(EVERY_KIND[4:])
            if not url.startswith("memory://"):
                assert history.async_store is not None
            return await history.aget_messages()

    same_messages(asyncio.run(main()), EVERY_KIND)
    with AilibChatMessageHistory("conv-a", url) as history:  # sync sees what async wrote
        assert history.messages == EVERY_KIND


def test_one_history_from_several_event_loops(url: str) -> None:
    history = AilibChatMessageHistory("conv-loops", url)

    async def turn(text: str) -> list[BaseMessage]:
        await history.aadd_messages([HumanMessage(text)])
        found = await history.aget_messages()
        await history.aclose()
        return found

    assert [m.content for m in asyncio.run(turn("one"))] == ["one"]
    assert [m.content for m in asyncio.run(turn("two"))] == ["one", "two"]


def test_given_an_async_store(url: str) -> None:
    async def main() -> None:
        async with ailib.open_async_store(url) as store:
            history = AilibChatMessageHistory("conv-s", store)
            await history.aadd_messages([HumanMessage("hi"), AIMessage("hello")])
            assert await history.aget_messages() == [HumanMessage("hi"), AIMessage("hello")]
            with pytest.raises(InvalidArgument, match="aget_messages"):
                _ = history.messages
            await history.aclear()
            assert await history.aget_messages() == []

    asyncio.run(main())


def test_stored_as_an_items_session_with_metadata_and_ttl(store: BaseStore) -> None:
    history = AilibChatMessageHistory("conv-m", store, metadata={"user_id": "u7"}, ttl="1h")
    history.add_messages([HumanMessage("hi")])
    session = store.load("conv-m")
    assert session.kind == "items"
    assert session.metadata == {"user_id": "u7"}
    assert session.expires_at is not None
    assert session.messages[0]["type"] == "human"
    assert [s.session_id for s in store.list(user_id="u7")] == ["conv-m"]


def test_clear_keeps_the_session_and_its_checkpoints(store: BaseStore) -> None:
    history = AilibChatMessageHistory("conv-c", store)
    history.add_messages([HumanMessage("one"), AIMessage("two")])
    store.checkpoint("conv-c", label="before clear")
    history.clear()
    assert history.messages == []
    assert store.exists("conv-c")
    store.restore("conv-c", 1)
    assert history.messages == [HumanMessage("one"), AIMessage("two")]
    AilibChatMessageHistory("never-written", store).clear()  # nothing to clear: no error


def test_last_reads_a_window(store: BaseStore) -> None:
    history = AilibChatMessageHistory("conv-w", store)
    history.add_messages([HumanMessage(str(i)) for i in range(10)])
    window = AilibChatMessageHistory("conv-w", store, last=3)
    assert [m.content for m in window.messages] == ["7", "8", "9"]
    assert AilibChatMessageHistory("absent", store, last=3).messages == []


def test_writers_racing_to_create_the_session_lose_nothing(url: str) -> None:
    def writer(name: str) -> None:
        with AilibChatMessageHistory("conv-race", url) as history:
            for i in range(5):
                history.add_messages([HumanMessage(f"{name}-{i}")])

    threads = [threading.Thread(target=writer, args=(f"w{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with AilibChatMessageHistory("conv-race", url) as history:
        contents = [str(m.content) for m in history.messages]
    assert sorted(contents) == sorted(f"w{n}-{i}" for n in range(4) for i in range(5))
    for n in range(4):  # each writer's messages in its order
        mine = [c for c in contents if c.startswith(f"w{n}-")]
        assert mine == [f"w{n}-{i}" for i in range(5)]


def test_bad_input_and_foreign_sessions_are_clear_errors(store: BaseStore) -> None:
    with pytest.raises(InvalidArgumentType, match="not a LangChain BaseMessage"):
        AilibChatMessageHistory("conv-x", store).add_messages([{"role": "user"}])  # type: ignore[list-item]
    with pytest.raises(InvalidArgumentType, match="url_or_store"):
        AilibChatMessageHistory("conv-x", 42)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match="last"):
        AilibChatMessageHistory("conv-x", store, last=-1)
    shown = repr(AilibChatMessageHistory("conv-x", "redis://app:hunter2-pw@127.0.0.1:6379/0"))
    assert "hunter2-pw" not in shown
    assert "conv-x" in shown
    store.create(session_id="chat-kind").add_message("user", "hi")
    with pytest.raises(InvalidArgument, match="'chat' session"):
        _ = AilibChatMessageHistory("chat-kind", store).messages
    store.create(session_id="odd-items", kind="items", messages=[{"foo": 1}])
    with pytest.raises(CorruptSessionError, match=r"odd-items.*item 0"):
        _ = AilibChatMessageHistory("odd-items", store).messages


def test_fake_chat_model_with_runnable_with_message_history(url: str) -> None:
    prompt = ChatPromptTemplate.from_messages(
        [("system", "Be brief."), MessagesPlaceholder("history"), ("human", "{question}")]
    )
    model = GenericFakeChatModel(
        messages=iter([AIMessage("Paris.", id="r1"), AIMessage("About 2.1 million.", id="r2")])
    )
    histories: list[AilibChatMessageHistory] = []

    def history_for(session_id: str) -> AilibChatMessageHistory:
        histories.append(AilibChatMessageHistory(session_id, url))
        return histories[-1]

    chain = RunnableWithMessageHistory(
        prompt | model,
        history_for,
        input_messages_key="question",
        history_messages_key="history",
    )
    config: RunnableConfig = {"configurable": {"session_id": "trip"}}
    assert chain.invoke({"question": "Capital of France?"}, config).content == "Paris."
    assert chain.invoke({"question": "Population?"}, config).content == "About 2.1 million."
    for history in histories:
        history.close()
    with AilibChatMessageHistory("trip", url) as stored:
        messages = stored.messages
    assert [(type(m), m.content) for m in messages] == [
        (HumanMessage, "Capital of France?"),
        (AIMessage, "Paris."),
        (HumanMessage, "Population?"),
        (AIMessage, "About 2.1 million."),
    ]
    assert [m.id for m in messages if isinstance(m, AIMessage)] == ["r1", "r2"]


def test_fake_chat_model_async_with_runnable_with_message_history(url: str) -> None:
    model = FakeListChatModel(responses=["first", "second"])
    histories: list[AilibChatMessageHistory] = []

    def history_for(session_id: str) -> AilibChatMessageHistory:
        histories.append(AilibChatMessageHistory(session_id, url))
        return histories[-1]

    chain = RunnableWithMessageHistory(model, history_for)
    config: RunnableConfig = {"configurable": {"session_id": "async-trip"}}

    async def main() -> list[BaseMessage]:
        assert (await chain.ainvoke([HumanMessage("one")], config)).content == "first"
        assert (await chain.ainvoke([HumanMessage("two")], config)).content == "second"
        for history in histories:
            await history.aclose()
        async with AilibChatMessageHistory("async-trip", url) as stored:
            return await stored.aget_messages()

    assert [m.content for m in asyncio.run(main())] == ["one", "first", "two", "second"]


# -- langchain-core's own cases, run against the adapter -----------------------------------
# From libs/core/tests/unit_tests/chat_history/test_chat_history.py


def test_lc_add_message_implementation_only(store: BaseStore) -> None:
    history = AilibChatMessageHistory("lc-1", store)
    history.add_message(HumanMessage(content="Hello"))
    assert len(history.messages) == 1
    assert history.messages[0] == HumanMessage(content="Hello")
    history.add_message(HumanMessage(content="World"))
    assert len(history.messages) == 2
    assert history.messages[1] == HumanMessage(content="World")
    history.add_messages([HumanMessage(content="Hello"), HumanMessage(content="World")])
    assert len(history.messages) == 4
    assert history.messages[2] == HumanMessage(content="Hello")
    assert history.messages[3] == HumanMessage(content="World")


def test_lc_async_interface(url: str) -> None:
    async def main() -> None:
        async with AilibChatMessageHistory("lc-2", url) as history:
            await history.aadd_messages(
                [HumanMessage(content="Hello"), HumanMessage(content="World")]
            )
            assert await history.aget_messages() == [
                HumanMessage(content="Hello"),
                HumanMessage(content="World"),
            ]
            await history.aadd_messages([HumanMessage(content="!")])
            assert await history.aget_messages() == [
                HumanMessage(content="Hello"),
                HumanMessage(content="World"),
                HumanMessage(content="!"),
            ]
            await history.aclear()
            assert await history.aget_messages() == []

    asyncio.run(main())


# From libs/core/tests/unit_tests/chat_history/test_file_chat_message_history.py


def test_lc_add_messages(store: BaseStore) -> None:
    history = AilibChatMessageHistory("lc-3", store)
    history.add_user_message("Hello!")
    history.add_ai_message("Hi there!")
    messages = history.messages
    assert len(messages) == 2
    assert isinstance(messages[0], HumanMessage)
    assert isinstance(messages[1], AIMessage)
    assert messages[0].content == "Hello!"
    assert messages[1].content == "Hi there!"


def test_lc_clear_messages(store: BaseStore) -> None:
    history = AilibChatMessageHistory("lc-4", store)
    history.add_user_message("Hello!")
    history.add_ai_message("Hi there!")
    history.clear()
    assert len(history.messages) == 0


def test_lc_multiple_sessions(url: str) -> None:
    expected = [
        "Hello, AI!",
        "Hello, how can I help you?",
        "Tell me a joke.",
        "Why did the chicken cross the road? To get to the other side!",
    ]
    with AilibChatMessageHistory("lc-5", url) as history:
        history.add_user_message(expected[0])
        history.add_ai_message(expected[1])
        history.add_user_message(expected[2])
        history.add_ai_message(expected[3])
        assert [m.content for m in history.messages] == expected
    # Second session (the history made anew over the same storage).
    with AilibChatMessageHistory("lc-5", url) as second:
        assert [m.content for m in second.messages] == expected


# From libs/core/tests/unit_tests/runnables/test_history.py


def factory(store: BaseStore) -> Callable[..., AilibChatMessageHistory]:
    def get_session_history(session_id: str, **_: Any) -> AilibChatMessageHistory:
        return AilibChatMessageHistory(session_id, store)

    return get_session_history


def you_said(messages: list[BaseMessage], extra: list[str] = []) -> str:  # noqa: B006
    said = [str(m.content) for m in messages if isinstance(m, HumanMessage)]
    return "you said: " + "\n".join(said + extra)


def test_lc_interfaces(store: BaseStore) -> None:
    history = AilibChatMessageHistory("lc-6", store)
    history.add_message(SystemMessage(content="system"))
    history.add_user_message("human 1")
    history.add_ai_message("ai")
    history.add_message(HumanMessage(content="human 2"))
    assert str(history) == "System: system\nHuman: human 1\nAI: ai\nHuman: human 2"


def test_lc_input_messages(store: BaseStore) -> None:
    with_history = RunnableWithMessageHistory(RunnableLambda(you_said), factory(store))
    config: RunnableConfig = {"configurable": {"session_id": "1"}}
    assert with_history.invoke([HumanMessage(content="hello")], config) == "you said: hello"
    output = with_history.invoke([HumanMessage(content="good bye")], config)
    assert output == "you said: hello\ngood bye"


def test_lc_input_dict(store: BaseStore) -> None:
    runnable: RunnableLambda[Any, Any] = RunnableLambda(lambda data: you_said(data["messages"]))
    with_history = RunnableWithMessageHistory(
        runnable, factory(store), input_messages_key="messages"
    )
    config: RunnableConfig = {"configurable": {"session_id": "2"}}
    output = with_history.invoke({"messages": [HumanMessage(content="hello")]}, config)
    assert output == "you said: hello"
    output = with_history.invoke({"messages": [HumanMessage(content="good bye")]}, config)
    assert output == "you said: hello\ngood bye"


def test_lc_input_dict_with_history_key(store: BaseStore) -> None:
    runnable: RunnableLambda[Any, Any] = RunnableLambda(
        lambda data: you_said(data["history"], [data["input"]])
    )
    with_history = RunnableWithMessageHistory(
        runnable,
        factory(store),
        input_messages_key="input",
        history_messages_key="history",
    )
    config: RunnableConfig = {"configurable": {"session_id": "3"}}
    assert with_history.invoke({"input": "hello"}, config) == "you said: hello"
    assert with_history.invoke({"input": "good bye"}, config) == "you said: hello\ngood bye"


def test_lc_output_message(store: BaseStore) -> None:
    runnable: RunnableLambda[Any, Any] = RunnableLambda(
        lambda data: AIMessage(you_said(data["history"], [data["input"]]))
    )
    with_history = RunnableWithMessageHistory(
        runnable,
        factory(store),
        input_messages_key="input",
        history_messages_key="history",
    )
    config: RunnableConfig = {"configurable": {"session_id": "4"}}
    assert with_history.invoke({"input": "hello"}, config) == AIMessage("you said: hello")
    output = with_history.invoke({"input": "good bye"}, config)
    assert output == AIMessage(content="you said: hello\ngood bye")


def test_lc_output_messages(store: BaseStore) -> None:
    runnable: RunnableLambda[Any, Any] = RunnableLambda(
        lambda data: [AIMessage(you_said(data["history"], [data["input"]]))]
    )
    with_history = RunnableWithMessageHistory(
        runnable,
        factory(store),
        input_messages_key="input",
        history_messages_key="history",
    )
    config: RunnableConfig = {"configurable": {"session_id": "5"}}
    assert with_history.invoke({"input": "hello"}, config) == [AIMessage("you said: hello")]
    output = with_history.invoke({"input": "good bye"}, config)
    assert output == [AIMessage(content="you said: hello\ngood bye")]


def test_lc_output_dict(store: BaseStore) -> None:
    runnable: RunnableLambda[Any, Any] = RunnableLambda(
        lambda data: {"output": [AIMessage(you_said(data["history"], [data["input"]]))]}
    )
    with_history = RunnableWithMessageHistory(
        runnable,
        factory(store),
        input_messages_key="input",
        history_messages_key="history",
        output_messages_key="output",
    )
    config: RunnableConfig = {"configurable": {"session_id": "6"}}
    output = with_history.invoke({"input": "hello"}, config)
    assert output == {"output": [AIMessage(content="you said: hello")]}
    output = with_history.invoke({"input": "good bye"}, config)
    assert output == {"output": [AIMessage(content="you said: hello\ngood bye")]}


def test_lc_using_custom_config_specs(store: BaseStore) -> None:
    def fake_llm(data: dict[str, Any]) -> list[BaseMessage]:
        return [AIMessage(you_said(data["messages"]))]

    def get_session_history(user_id: str, conversation_id: str) -> AilibChatMessageHistory:
        return AilibChatMessageHistory(f"{user_id}.{conversation_id}", store)

    with_message_history = RunnableWithMessageHistory(
        RunnableLambda(fake_llm),
        get_session_history=get_session_history,
        input_messages_key="messages",
        history_messages_key="history",
        history_factory_config=[
            ConfigurableFieldSpec(
                id="user_id", annotation=str, name="User ID", default="", is_shared=True
            ),
            ConfigurableFieldSpec(
                id="conversation_id",
                annotation=str,
                name="Conversation ID",
                default=None,
                is_shared=True,
            ),
        ],
    )

    def ask(text: str, user_id: str) -> Any:
        config: RunnableConfig = {"configurable": {"user_id": user_id, "conversation_id": "1"}}
        return with_message_history.invoke({"messages": [HumanMessage(content=text)]}, config)

    assert ask("hello", "user1") == [AIMessage(content="you said: hello")]
    assert AilibChatMessageHistory("user1.1", store).messages == [
        HumanMessage(content="hello"),
        AIMessage(content="you said: hello"),
    ]
    assert ask("goodbye", "user1") == [AIMessage(content="you said: goodbye")]
    assert ask("meow", "user2") == [AIMessage(content="you said: meow")]
    assert AilibChatMessageHistory("user1.1", store).messages == [
        HumanMessage(content="hello"),
        AIMessage(content="you said: hello"),
        HumanMessage(content="goodbye"),
        AIMessage(content="you said: goodbye"),
    ]
    assert AilibChatMessageHistory("user2.1", store).messages == [
        HumanMessage(content="meow"),
        AIMessage(content="you said: meow"),
    ]
