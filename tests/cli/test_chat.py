"""``ailib chat`` driven through piped stdin, in this process and across processes."""

from __future__ import annotations

import re
import subprocess
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import Result

from ailib import BaseStore, open_store
from ailib.testing.fake_client import FakeChatClient
from ailib.testing.openai_server import FakeOpenAIServer

Invoke = Callable[..., Result]
Run = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def url() -> str:
    return f"memory://chat-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def store(url: str) -> BaseStore:
    return open_store(url)


def _new_id(output: str) -> str:
    found = re.search(r"new session (\S+) in ", output)
    assert found, output
    return found.group(1)


def test_piped_chat_stores_every_turn(cli: Invoke, store: BaseStore, url: str) -> None:
    result = cli(
        "chat", "--offline", "--system", "Be brief.", "--user", "ann", "--store", url,
        input="Hello there\nWhat now?\n",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    session = store.load(_new_id(result.stdout))
    assert session.get_metadata("user_id") == "ann"
    assert session.messages == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hello there"},
        {"role": "assistant", "content": "[offline] reply #1 to: Hello there"},
        {"role": "user", "content": "What now?"},
        {"role": "assistant", "content": "[offline] reply #2 to: What now?"},
    ]
    assert "OFFLINE (--offline)" in result.stdout
    assert "you> What now?\nassistant> [offline] reply #2 to: What now?" in result.stdout
    assert f"resume later with: ailib chat --session {session.session_id}" in result.stdout


def test_without_an_api_key_chat_is_offline_and_says_why(cli: Invoke, url: str) -> None:
    result = cli("chat", "--store", url, input="hi\n")
    assert result.exit_code == 0, result.output
    assert "OFFLINE (OPENAI_API_KEY is not set)" in result.stdout
    assert "assistant> [offline] reply #1 to: hi" in result.stdout


def test_commands_inside_chat(cli: Invoke, store: BaseStore, url: str) -> None:
    script = "one\n/checkpoint after one\ntwo\n/checkpoints\n/restore 1\n/history\nthree\n"
    script += "/exit\nnot read\n"
    result = cli("chat", "--offline", "--session", "cmds", "-s", url, input=script)
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "checkpoint 1 (after one) saved at 2 messages" in out
    assert "1\tafter one\t2\t" in out
    assert "restored checkpoint 1: 2 messages (the state before is checkpoint 2)" in out
    assert "[1] user: one\n[2] assistant: [offline] reply #1 to: one\n" in out
    contents = [m["content"] for m in store.load("cmds").messages]
    assert contents == ["one", "[offline] reply #1 to: one", "three", contents[3]]
    assert contents[3] == "[offline] reply #2 to: three"
    assert "not read" not in out
    assert [c.label for c in store.checkpoints("cmds")] == ["after one", "before restore to 1"]


def test_bad_commands_are_reported_and_the_exit_status_is_1(
    cli: Invoke, store: BaseStore, url: str
) -> None:
    result = cli(
        "chat", "--offline", "--session", "bad", "-s", url, input="hi\n/restore 9\n/nope\n"
    )
    assert result.exit_code == 1
    errors = result.stderr.splitlines()
    assert errors[0] == "error: session 'bad' has no checkpoint 9; /checkpoints lists them"
    assert errors[1] == "error: unknown command /nope; /help lists them"
    assert "store.checkpoints" not in result.stderr
    assert len(store.load("bad")) == 2


def test_a_new_session_is_stored_with_its_first_exchange(
    cli: Invoke, store: BaseStore, url: str
) -> None:
    result = cli(
        "chat", "--offline", "--session", "later", "--system", "Be brief.", "-s", url,
        input="/checkpoint early\n/history\n",
    )  # fmt: skip
    assert result.exit_code == 1
    assert "error: /checkpoint: session later is not stored yet" in result.stderr
    assert "[1] system: Be brief." in result.stdout
    assert "nothing was saved" in result.stdout
    assert not store.exists("later")


def test_resume_in_a_new_process_shows_and_uses_the_history(run_ailib: Run, tmp_path: Path) -> None:
    env = {"AILIB_STORE_URL": f"jsonfile://{tmp_path / 'sessions'}"}
    first = run_ailib(
        "chat", "--offline", "--system", "Be brief.", input="My name is Ann.\n", env=env
    )
    assert first.returncode == 0, first.stderr
    session_id = _new_id(first.stdout)

    second = run_ailib("chat", "--offline", "--session", session_id, input="And mine?\n", env=env)
    assert second.returncode == 0, second.stderr
    assert f"resumed session {session_id}" in second.stdout
    assert "3 messages" in second.stdout
    assert "[2] user: My name is Ann." in second.stdout
    # The offline responder counts the user messages it was sent: the history arrived.
    assert "assistant> [offline] reply #2 to: And mine?" in second.stdout
    assert len(open_store(env["AILIB_STORE_URL"]).load(session_id)) == 5


def test_resume_across_processes_on_sqlite(
    run_ailib: Run, tmp_path: Path, require_scheme: Callable[[str], None]
) -> None:
    require_scheme("sqlite")
    url = f"sqlite:///{tmp_path / 'chat.db'}"
    first = run_ailib("chat", "--offline", "--session", "s1", "-s", url, input="one\n")
    assert first.returncode == 0, first.stderr
    second = run_ailib("chat", "--offline", "--session", "s1", "-s", url, input="two\n/history\n")
    assert second.returncode == 0, second.stderr
    assert "[3] user: two" in second.stdout.split("you> /history")[1]
    assert [m["content"] for m in open_store(url).load("s1").messages][::2] == ["one", "two"]


def test_system_prompt_applies_to_new_sessions_only(
    cli: Invoke, store: BaseStore, url: str
) -> None:
    cli("chat", "--offline", "--session", "sys", "--system", "First.", "-s", url, input="hi\n")
    again = cli("chat", "--offline", "--session", "sys", "--system", "Other.", "-s", url, input="")
    assert "--system applies to new sessions only" in again.stderr
    assert store.load("sys").messages[0] == {"role": "system", "content": "First."}
    assert len(store.load("sys")) == 3


def test_chat_talks_to_an_openai_compatible_server(
    cli: Invoke, store: BaseStore, url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with FakeOpenAIServer() as server:
        monkeypatch.setenv("OPENAI_API_KEY", "local")
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        result = cli("chat", "--model", "tiny", "--session", "real", "-s", url, input="hi\nagain\n")
        sent = server.requests
    assert result.exit_code == 0, result.output
    assert "model tiny at 127.0.0.1" in result.stdout
    assert "OFFLINE" not in result.stdout
    assert "assistant> echo: again (history: 3 messages)" in result.stdout
    assert sent[-1]["model"] == "tiny"
    assert len(store.load("real")) == 4


def test_a_failed_model_call_saves_nothing(
    cli: Invoke, store: BaseStore, url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(messages: list[dict[str, Any]]) -> str:
        raise RuntimeError("model crashed")

    monkeypatch.setattr(
        "ailib.cli.chat._client", lambda model, offline: (FakeChatClient(broken), "broken")
    )
    result = cli("chat", "--session", "fails", "-s", url, input="hello\n")
    assert result.exit_code == 1
    assert "error: the model request failed, nothing was saved: RuntimeError: model crashed" in (
        result.stderr
    )
    assert "saved (0 messages)" not in result.stdout
    assert "nothing was saved: a new session (fails) is stored with its first exchange" in (
        result.stdout
    )
    assert not store.exists("fails")
    assert store.list().items == []


def test_a_failed_model_call_leaves_a_resumed_session_as_it_was(
    cli: Invoke, store: BaseStore, url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.create(session_id="kept", messages=[{"role": "user", "content": "earlier"}])

    def broken(messages: list[dict[str, Any]]) -> str:
        raise RuntimeError("model crashed")

    monkeypatch.setattr(
        "ailib.cli.chat._client", lambda model, offline: (FakeChatClient(broken), "broken")
    )
    result = cli("chat", "--session", "kept", "-s", url, input="hello\n")
    assert result.exit_code == 1
    assert "session kept holds 1 message\n" in result.stdout
    assert store.load("kept").messages == [{"role": "user", "content": "earlier"}]


def test_a_turn_racing_another_writer_is_refused_not_interleaved(
    cli: Invoke, store: BaseStore, url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.create(session_id="race")

    def meddling(messages: list[dict[str, Any]]) -> str:
        if len(messages) == 1:
            store.append("race", {"role": "user", "content": "from elsewhere"})
        return "reply"

    monkeypatch.setattr(
        "ailib.cli.chat._client", lambda model, offline: (FakeChatClient(meddling), "meddling")
    )
    result = cli("chat", "--session", "race", "-s", url, input="mine\nmine again\n")
    assert result.exit_code == 1
    assert "changed by someone else meanwhile" in result.stderr
    contents = [m["content"] for m in store.load("race").messages]
    assert contents == ["from elsewhere", "mine again", "reply"]


def test_a_new_session_created_elsewhere_during_the_first_turn_is_left_alone(
    cli: Invoke, store: BaseStore, url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def meddling(messages: list[dict[str, Any]]) -> str:
        if not store.exists("twin"):
            store.create(session_id="twin", messages=[{"role": "user", "content": "elsewhere"}])
        return "reply"

    monkeypatch.setattr(
        "ailib.cli.chat._client", lambda model, offline: (FakeChatClient(meddling), "meddling")
    )
    result = cli("chat", "--session", "twin", "-s", url, input="mine\nmine again\n")
    assert result.exit_code == 1
    assert "a session twin was created by someone else meanwhile" in result.stderr
    assert "the chat goes on in that session (1 messages)" in result.stderr
    assert [m["content"] for m in store.load("twin").messages] == [
        "elsewhere", "mine again", "reply",
    ]  # fmt: skip


def test_chat_on_an_unknown_store_fails_before_reading_input(cli: Invoke) -> None:
    result = cli("chat", "--offline", "--store", "nope://x", input="hello\n")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.startswith("error: no store is installed for nope://")
