"""``ailib stores`` and ``ailib sessions ls/show/rm/prune/checkpoints/restore/fork``, and how
every command picks its store and reports errors."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path

import pytest
from typer.testing import Result

from ailib import BaseStore, open_store
from ailib.registry import StoreInfo

CORE_VERSION = version("ailib-core")

Invoke = Callable[..., Result]


@pytest.fixture
def url() -> str:
    """A memory store shared by the test and the CLI, both running in this process."""
    return f"memory://cli-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def store(url: str) -> BaseStore:
    return open_store(url)


def _chatted(store: BaseStore, user: str = "ann", turns: int = 2) -> str:
    session = store.create({"user_id": user, "topic": "trip"})
    session.add_message("system", "Be brief.")
    for n in range(turns):
        session.add_message("user", f"question {n}")
        session.add_message("assistant", f"answer {n}")
    return session.session_id


# -- stores and the choice of store -------------------------------------------------------


def test_stores_lists_schemes_with_their_distribution(cli: Invoke) -> None:
    result = cli("stores")
    assert result.exit_code == 0, result.output
    rows = [line.split("\t") for line in result.stdout.splitlines() if "\t" in line]
    assert rows[0] == ["SCHEME", "DISTRIBUTION", "VERSION", "CLASS"]
    found = {row[0]: row for row in rows[1:]}
    assert found["memory"][1:] == ["ailib-core", CORE_VERSION, "ailib.stores.memory:MemoryStore"]
    assert found["jsonfile"][1] == "ailib-store-jsonfile"
    assert "default store:" in result.stdout


def test_default_store_is_sqlite_in_the_user_data_directory(
    cli: Invoke, tmp_path: Path, require_scheme: Callable[[str], None]
) -> None:
    require_scheme("sqlite")
    created = cli("chat", "--offline", "--session", "kept", input="hello\n")
    assert created.exit_code == 0, created.output
    database = tmp_path / "xdg-data" / "ailib" / "sessions.db"
    assert database.is_file()
    listed = cli("sessions", "ls")
    assert "kept" in listed.stdout
    assert "warning" not in listed.stderr
    assert f"sqlite:///{database}" in cli("stores").stdout


def test_default_store_without_sqlite_is_memory_with_a_warning(
    cli: Invoke, monkeypatch: pytest.MonkeyPatch
) -> None:
    memory_only = [StoreInfo("memory", "ailib.stores.memory:MemoryStore", "ailib-core", "0.1.0")]
    monkeypatch.setattr("ailib.registry.available_stores", lambda: memory_only)
    result = cli("sessions", "ls")
    assert result.exit_code == 0
    assert "warning: no persistent store is installed" in result.stderr
    assert "no sessions in memory://" in result.stderr


def test_store_option_beats_environment(
    cli: Invoke, store: BaseStore, url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    session_id = _chatted(store)
    monkeypatch.setenv("AILIB_STORE_URL", url)
    assert session_id in cli("sessions", "ls").stdout
    assert session_id not in cli("sessions", "ls", "--store", "memory://other").stdout
    assert session_id not in cli("--store", "memory://other", "sessions", "ls").stdout
    assert session_id in cli("--store", "memory://other", "sessions", "ls", "-s", url).stdout


# -- reading ------------------------------------------------------------------------------


def test_ls_filters_by_user_and_limits(cli: Invoke, store: BaseStore, url: str) -> None:
    ann = [_chatted(store, "ann") for _ in range(3)]
    bob = _chatted(store, "bob")
    everyone = cli("sessions", "ls", "--store", url)
    assert everyone.exit_code == 0
    lines = everyone.stdout.splitlines()
    assert lines[0].split("\t")[:4] == ["ID", "USER", "MESSAGES", "VERSION"]
    assert [line.split("\t")[0] for line in lines[1:]] == [bob, *reversed(ann)]
    assert lines[1].split("\t")[1:3] == ["bob", "5"]
    only_ann = cli("sessions", "ls", "--user", "ann", "--store", url).stdout
    assert bob not in only_ann
    assert all(session_id in only_ann for session_id in ann)
    limited = cli("sessions", "ls", "--limit", "2", "--store", url)
    assert len(limited.stdout.splitlines()) == 3
    assert "raise --limit" in limited.stderr


def test_ls_json(cli: Invoke, store: BaseStore, url: str) -> None:
    session_id = _chatted(store)
    rows = [
        json.loads(line) for line in cli("sessions", "ls", "--json", "-s", url).stdout.splitlines()
    ]
    assert rows[0]["session_id"] == session_id
    assert rows[0]["user_id"] == "ann"
    assert rows[0]["message_count"] == 5


def test_show_prints_a_readable_transcript(cli: Invoke, store: BaseStore, url: str) -> None:
    session = store.create({"user_id": "ann"})
    session.add_message("user", "What's the weather in Oslo?")
    session.add(
        {
            "role": "assistant",
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "weather", "arguments": '{"city":"Oslo"}'},
                }
            ],
        }
    )
    session.add({"role": "tool", "tool_call_id": "call_1", "content": "3°C"})
    session.add_message("assistant", "It is 3°C.")
    result = cli("sessions", "show", session.session_id, "--store", url)
    assert result.exit_code == 0, result.output
    assert f"session {session.session_id}" in result.stdout
    assert '"user_id": "ann"' in result.stdout
    assert "[1] user: What's the weather in Oslo?" in result.stdout
    assert 'calls weather({"city":"Oslo"}) [call_1]' in result.stdout
    assert "[3] tool (result of call_1): 3°C" in result.stdout
    assert "[4] assistant: It is 3°C." in result.stdout


def test_show_json_is_the_export_form(cli: Invoke, store: BaseStore, url: str) -> None:
    session_id = _chatted(store)
    store.checkpoint(session_id, "start")
    raw = json.loads(cli("sessions", "show", session_id, "--json", "-s", url).stdout)
    assert raw == store.export_session(session_id)
    assert raw["checkpoints"][0]["label"] == "start"


# -- changing -----------------------------------------------------------------------------


def test_rm_deletes_and_reports_missing_ids(cli: Invoke, store: BaseStore, url: str) -> None:
    first, second = _chatted(store), _chatted(store)
    result = cli("sessions", "rm", first, "-s", url)
    assert result.exit_code == 0
    assert result.stdout == f"deleted {first}\n"
    assert not store.exists(first)
    missing = cli("sessions", "rm", second, "gone-id", "-s", url)
    assert missing.exit_code == 1
    assert not store.exists(second)
    assert missing.stderr.startswith(
        f"error: no session 'gone-id' in {url} (never created, deleted, or expired); "
        "`ailib sessions ls` lists the live ones\n"
    )


def test_prune_purges_expired_sessions(cli: Invoke, store: BaseStore, url: str) -> None:
    store.create(ttl=0.05)
    store.create(ttl=0.05)
    kept = store.create()
    time.sleep(0.1)
    result = cli("sessions", "prune", "-s", url)
    assert result.exit_code == 0, result.output
    assert result.stdout == f"purged 2 expired sessions from {url}\n"
    assert "purging expired sessions" in result.stderr
    assert [s.session_id for s in store.list()] == [kept.session_id]


def test_checkpoints_restore_and_fork(cli: Invoke, store: BaseStore, url: str) -> None:
    session_id = _chatted(store, turns=1)
    store.checkpoint(session_id, "one turn")
    store.append(session_id, {"role": "user", "content": "more"})
    listed = cli("sessions", "checkpoints", session_id, "-s", url)
    assert listed.exit_code == 0
    assert listed.stdout.splitlines()[1].split("\t")[:3] == ["1", "one turn", "3"]

    restored = cli("sessions", "restore", session_id, "1", "-s", url)
    assert restored.exit_code == 0, restored.output
    assert "3 messages; the previous state is checkpoint 2" in restored.stdout
    assert len(store.load(session_id)) == 3

    forked = cli("sessions", "fork", session_id, "2", "-s", url)
    assert forked.exit_code == 0, forked.output
    new_id = forked.stdout.strip()
    assert len(store.load(new_id)) == 4
    assert "forked checkpoint 2" in forked.stderr
    current = cli("sessions", "fork", session_id, "-s", url).stdout.strip()
    assert len(store.load(current)) == 3


def test_checkpoints_of_a_session_without_any(cli: Invoke, store: BaseStore, url: str) -> None:
    result = cli("sessions", "checkpoints", _chatted(store), "-s", url)
    assert result.exit_code == 0
    assert result.stdout == ""
    assert "has no checkpoints" in result.stderr


# -- errors -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["sessions", "show", "no-such-id"],
        ["sessions", "checkpoints", "no-such-id"],
        ["sessions", "restore", "no-such-id", "1"],
        ["sessions", "fork", "no-such-id"],
        ["sessions", "rm", "no-such-id"],
        ["sessions", "show", "../etc/passwd"],
    ],
)
def test_missing_or_bad_session_is_one_line_and_exit_1(
    cli: Invoke, url: str, args: list[str]
) -> None:
    result = cli(*args, "--store", url)
    assert result.exit_code == 1
    assert result.stdout == ""
    first, *rest = result.stderr.splitlines()
    assert first.startswith("error: ")
    assert rest == ["(run with --debug to see the traceback)"]
    assert "Traceback" not in result.output


def test_missing_checkpoint(cli: Invoke, store: BaseStore, url: str) -> None:
    result = cli("sessions", "restore", _chatted(store), "7", "-s", url)
    assert result.exit_code == 1
    assert "has no checkpoint 7" in result.stderr


def test_unknown_scheme_names_the_installed_ones(cli: Invoke) -> None:
    result = cli("sessions", "ls", "--store", "mongo://127.0.0.1/x")
    assert result.exit_code == 1
    assert result.stderr.splitlines()[0].startswith("error: no store is installed for mongo://")
    assert "memory" in result.stderr


def test_errors_never_show_a_password(cli: Invoke) -> None:
    result = cli("sessions", "ls", "--store", "mongo://ann:hunter2@127.0.0.1/x")
    assert result.exit_code == 1
    assert "hunter2" not in result.output
    assert "ann:***@127.0.0.1" in result.stderr


def test_debug_shows_the_traceback(cli: Invoke) -> None:
    result = cli("--debug", "sessions", "ls", "--store", "mongo://127.0.0.1/x")
    assert result.exit_code == 1
    assert "Traceback (most recent call last)" in result.stderr
    assert "UnknownStoreError" in result.stderr


def test_not_a_url(cli: Invoke) -> None:
    result = cli("sessions", "ls", "--store", "sessions.db")
    assert result.exit_code == 1
    assert "not a store URL" in result.stderr


def test_version_and_help(cli: Invoke) -> None:
    assert cli("--version").stdout == f"ailib {CORE_VERSION}\n"
    help_text = cli("sessions", "--help").stdout
    for command in ("ls", "show", "rm", "prune", "checkpoints", "restore", "fork", "export"):
        assert command in help_text


def test_on_a_terminal_tables_and_transcripts_are_drawn_by_rich(
    cli: Invoke, store: BaseStore, url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    session = store.create({"user_id": "ann"})
    session.add_message("user", "is [bold]this[/bold] markup?")
    monkeypatch.setattr("ailib.cli.output.is_terminal", lambda stderr=False: True)
    monkeypatch.setenv("COLUMNS", "120")
    listed = cli("sessions", "ls", "-s", url)
    assert listed.exit_code == 0
    assert "\t" not in listed.stdout
    assert session.session_id in listed.stdout
    shown = cli("sessions", "show", session.session_id, "-s", url)
    assert "[1] user: is [bold]this[/bold] markup?" in shown.stdout
    pruned = cli("sessions", "prune", "-s", url)
    assert pruned.exit_code == 0
    assert "purged 0 expired sessions" in pruned.stdout
