"""What every command shares: stores that must exist, ``--json``, shell completion, wording,
``--version`` and how little ``ailib --help`` imports."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path

import pytest
from typer.testing import Result

from ailib import BaseStore, open_store

Invoke = Callable[..., Result]
Run = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def url() -> str:
    return f"memory://surface-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def store(url: str) -> BaseStore:
    return open_store(url)


def _everything_under(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*"))


# -- a store that does not exist is not created by a command that does not write ----------

NEEDS_AN_EXISTING_STORE = [
    ("sessions", "ls"),
    ("sessions", "ls", "--json"),
    ("sessions", "show", "s1"),
    ("sessions", "show", "s1", "--json"),
    ("sessions", "checkpoints", "s1"),
    ("sessions", "export"),
    ("sessions", "rm", "s1"),
    ("sessions", "prune"),
    ("sessions", "restore", "s1", "1"),
    ("sessions", "fork", "s1"),
    ("sessions", "reencrypt", "--backup", "backup.jsonl"),
]


@pytest.mark.parametrize("command", NEEDS_AN_EXISTING_STORE, ids=" ".join)
def test_a_missing_sqlite_store_is_no_such_store_and_nothing_is_created(
    cli: Invoke, tmp_path: Path, require_scheme: Callable[[str], None], command: tuple[str, ...]
) -> None:
    require_scheme("sqlite")
    place = tmp_path / "place"
    place.mkdir()
    database = place / "nonexistent" / "dir" / "x.db"
    result = cli("--store", f"sqlite:///{database}", *command)
    assert result.exit_code == 1, result.output
    assert result.stdout == ""
    assert result.stderr.startswith(f"error: no such store: sqlite:///{database} does not exist")
    assert _everything_under(place) == []


def test_the_issue_example_creates_no_folder_and_says_no_such_store(
    run_ailib: Run, tmp_path: Path, require_scheme: Callable[[str], None]
) -> None:
    require_scheme("sqlite")
    result = run_ailib("--store", "sqlite:///nonexistent/dir/x.db", "sessions", "ls")
    assert result.returncode == 1
    assert "no such store" in result.stderr
    assert "no sessions" not in result.stderr + result.stdout
    assert not (tmp_path / "nonexistent").exists()


def test_the_default_store_is_not_created_by_reading_it(
    cli: Invoke, tmp_path: Path, require_scheme: Callable[[str], None]
) -> None:
    require_scheme("sqlite")
    result = cli("sessions", "ls")
    assert result.exit_code == 1
    assert "no such store: sqlite:///" in result.stderr
    assert not (tmp_path / "xdg-data").exists()
    written = cli("chat", "--offline", input="hello\n")
    assert written.exit_code == 0, written.output
    assert (tmp_path / "xdg-data" / "ailib" / "sessions.db").exists()
    listed = cli("sessions", "ls")
    assert listed.exit_code == 0
    assert listed.stdout.count("\n") == 2  # header and the one session


def test_reading_a_database_without_tables_creates_none(
    cli: Invoke, tmp_path: Path, require_scheme: Callable[[str], None]
) -> None:
    require_scheme("sqlite")
    database = tmp_path / "empty.db"
    sqlite3.connect(database).close()
    for command in (("sessions", "ls"), ("sessions", "export"), ("sessions", "show", "x")):
        result = cli("--store", f"sqlite:///{database}", *command)
        assert result.exit_code == 1
        assert "no such store" in result.stderr
        assert "holds no ailib tables" in result.stderr
    with sqlite3.connect(database) as conn:
        assert conn.execute("SELECT name FROM sqlite_master").fetchall() == []


SQL_SERVERS = {
    "postgresql": ("PostgreSQL", 5432, "postgresql://postgres@127.0.0.1:5432/test"),
    "mariadb": ("MariaDB", 3306, "mariadb://root@127.0.0.1:3306/test"),
}


@pytest.mark.parametrize("scheme", sorted(SQL_SERVERS))
def test_reading_a_sql_server_without_tables_creates_none(
    cli: Invoke, require_scheme: Callable[[str], None], scheme: str
) -> None:
    import sqlalchemy as sa

    from ailib.testing.servers import require_server

    require_scheme(scheme)
    name, port, base = SQL_SERVERS[scheme]
    require_server(name, "127.0.0.1", port, "start it (.ci/run starts the local servers)")
    prefix = f"ro_{uuid.uuid4().hex[:8]}_"
    result = cli("--store", f"{base}?table_prefix={prefix}", "sessions", "ls")
    assert result.exit_code == 1
    assert result.stderr.startswith(f"error: no such store: {base}?table_prefix={prefix} holds")
    driver = {"postgresql": "postgresql+psycopg", "mariadb": "mysql+pymysql"}[scheme]
    engine = sa.create_engine(base.replace(scheme, driver, 1))
    try:
        tables = sa.inspect(engine).get_table_names()
    finally:
        engine.dispose()
    assert [t for t in tables if t.startswith(prefix)] == []


def test_copy_reads_its_source_without_creating_it(
    cli: Invoke, tmp_path: Path, url: str, require_scheme: Callable[[str], None]
) -> None:
    require_scheme("sqlite")
    result = cli("sessions", "copy", f"sqlite:///{tmp_path / 'missing.db'}", url)
    assert result.exit_code == 1
    assert "no such store" in result.stderr
    assert _everything_under(tmp_path) == []


def test_writing_commands_still_create_their_store(
    cli: Invoke, tmp_path: Path, require_scheme: Callable[[str], None]
) -> None:
    require_scheme("sqlite")
    database = tmp_path / "new" / "chat.db"
    result = cli("--store", f"sqlite:///{database}", "chat", "--offline", input="hi\n")
    assert result.exit_code == 0, result.output
    assert len(open_store(f"sqlite:///{database}").list()) == 1


# -- --json ----------------------------------------------------------------------------------


def test_stores_json(cli: Invoke, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AILIB_STORE_URL", "redis://app:hunter2@cache:6379/0")
    result = cli("stores", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert set(data) == {"ailib_core", "stores", "default_url", "env_url", "url_in_use"}
    assert data["ailib_core"] == version("ailib-core")
    memory = next(s for s in data["stores"] if s["scheme"] == "memory")
    assert memory == {
        "scheme": "memory",
        "distribution": "ailib-core",
        "version": version("ailib-core"),
        "class": "ailib.stores.memory:MemoryStore",
    }
    assert data["env_url"] == data["url_in_use"] == "redis://app:***@cache:6379/0"
    assert "hunter2" not in result.stdout


def test_ls_json_one_object_per_session(cli: Invoke, store: BaseStore, url: str) -> None:
    session = store.create({"user_id": "ann", "topic": "trip"}, ttl="1d")
    session.add_message("user", "hello")
    result = cli("sessions", "ls", "--json", "-s", url)
    assert result.exit_code == 0, result.output
    (line,) = result.stdout.splitlines()
    data = json.loads(line)
    assert list(data) == [
        "session_id", "kind", "user_id", "message_count", "version",
        "created_at", "updated_at", "expires_at", "metadata",
    ]  # fmt: skip
    assert data["session_id"] == session.session_id
    assert data["user_id"] == "ann"
    assert data["message_count"] == 1
    assert data["metadata"] == {"user_id": "ann", "topic": "trip"}
    assert data["expires_at"] is not None
    assert data["expires_at"].endswith("+00:00")


def test_show_json_is_the_exported_form(cli: Invoke, store: BaseStore, url: str) -> None:
    session = store.create(session_id="shown")
    session.add_message("user", "hello")
    result = cli("sessions", "show", "shown", "--json", "-s", url)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == store.export_session("shown")


def test_checkpoints_json(cli: Invoke, store: BaseStore, url: str) -> None:
    session = store.create(session_id="cp")
    session.add_message("user", "one")
    store.checkpoint("cp", label="first")
    session.add_message("user", "two")
    store.checkpoint("cp")
    result = cli("sessions", "checkpoints", "cp", "--json", "-s", url)
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(r["number"], r["label"], r["message_count"]) for r in rows] == [
        (1, "first", 1),
        (2, None, 2),
    ]
    assert all(list(r) == ["number", "label", "message_count", "created_at"] for r in rows)
    empty = store.create(session_id="none")
    assert empty.session_id == "none"
    quiet = cli("sessions", "checkpoints", "none", "--json", "-s", url)
    assert quiet.exit_code == 0
    assert quiet.stdout == ""


def test_commands_that_change_sessions_report_in_json(
    cli: Invoke, store: BaseStore, url: str
) -> None:
    session = store.create(session_id="src")
    session.add_message("user", "one")
    store.checkpoint("src")
    session.add_message("user", "two")

    forked = json.loads(cli("sessions", "fork", "src", "1", "--json", "-s", url).stdout)
    assert forked["source"] == "src"
    assert forked["checkpoint"] == 1
    assert forked["message_count"] == 1
    assert store.load(forked["session_id"]).messages == [{"role": "user", "content": "one"}]

    restored = json.loads(cli("sessions", "restore", "src", "1", "--json", "-s", url).stdout)
    assert restored == {
        "session_id": "src", "restored": 1, "message_count": 1, "previous_state": 2,
    }  # fmt: skip

    store.create(session_id="old", ttl=0.01)
    time.sleep(0.05)  # the session has to expire; nothing waits on another thread
    assert json.loads(cli("sessions", "prune", "--json", "-s", url).stdout) == {"purged": 1}

    removed = cli("sessions", "rm", forked["session_id"], "ghost", "--json", "-s", url)
    assert removed.exit_code == 1
    assert json.loads(removed.stdout) == {"deleted": [forked["session_id"]], "missing": ["ghost"]}
    assert removed.stderr.startswith("error: no session 'ghost'")


def test_import_and_copy_report_their_counts_in_json(
    cli: Invoke, store: BaseStore, url: str, tmp_path: Path
) -> None:
    store.create(session_id="a").add_message("user", "hi")
    export = tmp_path / "all.jsonl"
    assert cli("sessions", "export", "-o", str(export), "-s", url).exit_code == 0
    other = f"memory://surface-copy-{uuid.uuid4().hex[:8]}"
    imported = cli("sessions", "import", str(export), "--json", "-s", other)
    assert imported.exit_code == 0, imported.output
    assert json.loads(imported.stdout) == {"copied": 1, "skipped": 0, "differs": 0, "failed": 0}
    copied = cli("sessions", "copy", url, other, "--json")
    assert copied.exit_code == 0, copied.output
    assert json.loads(copied.stdout) == {"copied": 0, "skipped": 1, "differs": 0, "failed": 0}


def test_json_is_plain_even_on_a_terminal(
    cli: Invoke, store: BaseStore, url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.create({"user_id": "[bold]x[/bold]"}, session_id="term")
    monkeypatch.setattr("ailib.cli.output.is_terminal", lambda stderr=False: True)
    monkeypatch.setenv("COLUMNS", "40")
    result = cli("sessions", "ls", "--json", "-s", url)
    assert json.loads(result.stdout)["user_id"] == "[bold]x[/bold]"


# -- wording -----------------------------------------------------------------------------


def test_errors_speak_of_commands_not_python(cli: Invoke, store: BaseStore, url: str) -> None:
    store.create(session_id="real")
    missing = cli("sessions", "show", "ghost", "-s", url)
    assert missing.exit_code == 1
    assert missing.stderr.startswith(
        f"error: no session 'ghost' in {url} (never created, deleted, or expired); "
        "`ailib sessions ls` lists the live ones"
    )
    no_checkpoint = cli("sessions", "restore", "real", "4", "-s", url)
    assert no_checkpoint.exit_code == 1
    assert no_checkpoint.stderr.startswith(
        "error: session 'real' has no checkpoint 4; `ailib sessions checkpoints real` lists them"
    )
    for result in (missing, no_checkpoint):
        assert "store." not in result.stderr


def test_a_mistyped_url_option_gets_a_did_you_mean(cli: Invoke) -> None:
    result = cli("--store", "memory://?tll=1d", "sessions", "ls")
    assert result.exit_code == 1
    assert result.stderr.startswith(
        "error: unknown option 'tll' for memory://; did you mean 'ttl'? known options: "
    )


def test_an_empty_store_url_is_an_error_not_the_default(cli: Invoke) -> None:
    result = cli("--store", "", "sessions", "ls")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: the store URL is empty")


# -- completion, version, start-up ------------------------------------------------------------


def test_show_completion_prints_a_script_for_the_shell(run_ailib: Run) -> None:
    result = run_ailib("--show-completion", "bash")
    assert result.returncode == 0, result.stderr
    assert "_AILIB_COMPLETE=complete_bash" in result.stdout
    assert "complete -o default -F _ailib_completion ailib" in result.stdout


def test_install_completion_writes_the_script_and_sources_it(
    run_ailib: Run, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    result = run_ailib("--install-completion", "bash", env={"HOME": str(home)})
    assert result.returncode == 0, result.stderr
    script = home / ".bash_completions" / "ailib.sh"
    assert "_AILIB_COMPLETE=complete_bash" in script.read_text()
    assert f"source '{script}'" in (home / ".bashrc").read_text()


@pytest.mark.parametrize(
    ("words", "expected"),
    [
        ("ailib sess", ["sessions"]),
        ("ailib sessions che", ["checkpoints"]),
        ("ailib sessions ls --js", ["--json"]),
        ("ailib --store mem", ["memory://"]),
    ],
)
def test_completion_answers_the_shell(run_ailib: Run, words: str, expected: list[str]) -> None:
    env = {
        "_AILIB_COMPLETE": "complete_bash",
        "COMP_WORDS": words,
        "COMP_CWORD": str(len(words.split()) - 1),
    }
    result = run_ailib(env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == expected


def _complete(run_ailib: Run, words: str) -> list[str]:
    env = {
        "_AILIB_COMPLETE": "complete_bash",
        "COMP_WORDS": words,
        "COMP_CWORD": str(len(words.split()) - (0 if words.endswith(" ") else 1)),
    }
    result = run_ailib(env=env)
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


def test_session_ids_complete_from_the_store_named_on_the_line(
    run_ailib: Run, tmp_path: Path, require_scheme: Callable[[str], None]
) -> None:
    require_scheme("sqlite")
    url = f"sqlite:///{tmp_path / 'c.db'}"
    with open_store(url) as store:
        for session_id in ("alpha1", "alpha2", "beta"):
            store.create(session_id=session_id)
    assert _complete(run_ailib, f"ailib sessions show --store {url} al") == ["alpha1", "alpha2"]
    assert _complete(run_ailib, f"ailib --store {url} sessions rm ") == [
        "alpha1", "alpha2", "beta",
    ]  # fmt: skip
    assert _complete(run_ailib, f"ailib --store {url} chat --session b") == ["beta"]


def test_completing_a_session_id_of_a_missing_store_offers_nothing_and_creates_nothing(
    run_ailib: Run, tmp_path: Path, require_scheme: Callable[[str], None]
) -> None:
    require_scheme("sqlite")
    url = f"sqlite:///{tmp_path / 'nothing' / 'here.db'}"
    assert _complete(run_ailib, f"ailib --store {url} sessions show ") == []
    assert not (tmp_path / "nothing").exists()


def test_version_is_the_installed_distributions(run_ailib: Run) -> None:
    result = run_ailib("--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"ailib {version('ailib-core')}\n"


_IMPORTED = """
import sys
sys.argv = ["ailib", *sys.argv[1:]]
from ailib.cli import main
try:
    main()
except SystemExit:
    pass
heavy = ("asyncio", "rich", "openai", "pluggy", "sqlalchemy", "redis", "boto3",
         "ailib.base", "ailib.session", "ailib.registry", "typer")
print(sorted(m for m in heavy if m in sys.modules), file=sys.stderr)
"""


@pytest.mark.parametrize(
    ("argv", "loaded"),
    [
        (["--help"], ["typer"]),
        (["sessions", "--help"], ["typer"]),
        (["--version"], []),  # answered before Typer is imported
    ],
)
def test_help_and_version_import_only_what_they_need(
    argv: list[str], loaded: list[str], tmp_path: Path
) -> None:
    result = subprocess.run(
        [sys.executable, "-c", _IMPORTED, *argv],
        capture_output=True,
        text=True,
        timeout=60,
        env={k: v for k, v in os.environ.items() if not k.startswith("AILIB_")},
        cwd=tmp_path,
    )
    assert result.stdout
    assert result.stderr.strip().splitlines()[-1] == str(loaded)
