"""Tutorial 5 (session management) runs unchanged against ailib and does what its prose says.

Every code cell of ``../shared/spec/tutorial-5-session-management.txt`` (relative to the repo
root) runs in order in one namespace, in a temporary directory, with ``OPENAI_BASE_URL``
pointing at a local FakeOpenAIServer; the tests below then check each section's promises
against the requests the server received, the printed output and the objects left behind.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from ailib import Session
from ailib.client import OpenAIClient
from ailib.prompts import PromptBuilder, PromptTemplate
from ailib.testing.openai_server import FakeOpenAIServer

DUMMY_KEY = "sk-dummy-tutorial-key"
MODEL = "tutorial-fake-model"
CELL_MARK = "In [None]:"

SETUP = "Setup"
BASIC = "Basic Session Usage"
WITH_LLM = "Using Sessions with LLM Clients"
METADATA = "Session Metadata"
PERSISTENCE = "Session Persistence"
LONG = "Managing Long Conversations"
ANALYTICS = "Session Analytics"
MULTI_USER = "Multi-User Sessions"
TEMPLATES = "Session Templates"
MEMORY = "Real-World Example: Chatbot with Memory"
BEST = "Best Practices"
SECTIONS = [
    SETUP,
    BASIC,
    WITH_LLM,
    METADATA,
    PERSISTENCE,
    LONG,
    ANALYTICS,
    MULTI_USER,
    TEMPLATES,
    MEMORY,
    BEST,
]


def _tutorial_path() -> Path | None:
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "ailib_core").is_dir():
            return parent.parent / "shared" / "spec" / "tutorial-5-session-management.txt"
    return None


def extract_cells(text: str) -> list[tuple[str, str]]:
    """``(section heading, code)`` for every cell: the lines after ``In [None]:`` up to the
    next ``## `` heading."""
    cells: list[tuple[str, str]] = []
    heading = ""
    code: list[str] | None = None
    for line in text.splitlines():
        if line.startswith("## "):
            if code is not None:
                cells.append((heading, "\n".join(code).strip("\n") + "\n"))
                code = None
            heading = line[3:].strip()
        elif line.strip() == CELL_MARK and code is None:
            code = []
        elif code is not None:
            code.append(line)
    if code is not None:
        cells.append((heading, "\n".join(code).strip("\n") + "\n"))
    return cells


@dataclass
class TutorialRun:
    """What running the cells left: per section, stdout, the POST bodies the fake server got
    and a shallow copy of the namespace (later cells rebind names such as ``response1``)."""

    server_url: str
    workdir: Path
    output: dict[str, str] = field(default_factory=dict)
    requests: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    names: dict[str, dict[str, Any]] = field(default_factory=dict)
    failure: str | None = None
    server_errors: list[BaseException] = field(default_factory=list)

    def cell(self, section: str) -> tuple[str, list[dict[str, Any]], dict[str, Any]]:
        """``(stdout, requests, namespace)`` after ``section``; fails if it did not run."""
        if section not in self.names:
            pytest.fail(f"tutorial cell {section!r} did not run: {self.failure or 'missing'}")
        return self.output[section], self.requests[section], self.names[section]

    def messages(self, section: str) -> list[list[dict[str, Any]]]:
        return [body["messages"] for body in self.cell(section)[1]]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TutorialRun]:
    path = _tutorial_path()
    if path is None or not path.is_file():
        pytest.skip(f"tutorial not found at {path} (expected ../shared/spec beside the repo)")
    cells = extract_cells(path.read_text(encoding="utf-8"))
    workdir = tmp_path_factory.mktemp("tutorial5")
    with FakeOpenAIServer() as server, pytest.MonkeyPatch.context() as mp:
        mp.chdir(workdir)
        mp.setenv("OPENAI_BASE_URL", server.base_url)
        mp.setenv("OPENAI_API_KEY", DUMMY_KEY)
        mp.setenv("AILIB_MODEL", MODEL)
        mp.delenv("OPENAI_ORG_ID", raising=False)
        mp.delenv("OPENAI_PROJECT_ID", raising=False)
        result = TutorialRun(server.base_url, workdir)
        namespace: dict[str, Any] = {"__name__": "__tutorial__"}
        for index, (section, code) in enumerate(cells):
            # A real file, so tracebacks show the cell's lines and load_dotenv() searches from
            # the temporary directory rather than the repository.
            cell_file = workdir / f"cell_{index:02d}.py"
            cell_file.write_text(code, encoding="utf-8")
            before = len(server.requests)
            stdout = io.StringIO()
            try:
                with contextlib.redirect_stdout(stdout):
                    exec(compile(code, str(cell_file), "exec"), namespace)
            except Exception as exc:
                result.failure = f"cell {index} ({section}) raised {exc!r}"
                break
            finally:
                result.output[section] = stdout.getvalue()
                result.requests[section] = server.requests[before:]
            result.names[section] = dict(namespace)
        result.server_errors = server.errors
        yield result


def _pairs(messages: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(m["role"], m["content"]) for m in messages]


def test_tutorial_cells_are_extracted() -> None:
    path = _tutorial_path()
    if path is None or not path.is_file():
        pytest.skip(f"tutorial not found at {path}")
    cells = extract_cells(path.read_text(encoding="utf-8"))

    assert [section for section, _ in cells] == SECTIONS
    assert all(CELL_MARK not in code and "\n## " not in code for _, code in cells)
    assert cells[0][1].startswith("from ailib import OpenAIClient, Session")


def test_every_cell_runs(run: TutorialRun) -> None:
    assert run.failure is None, run.failure
    assert list(run.names) == SECTIONS
    assert run.server_errors == []


def test_every_llm_call_went_to_the_fake_server(run: TutorialRun) -> None:
    bodies = [body for section in SECTIONS for body in run.cell(section)[1]]

    assert len(bodies) == 7, "2 in 'with LLM', 1 each in metadata/persistence/templates, 2 bot"
    assert {body["model"] for body in bodies} == {MODEL}
    assert all(DUMMY_KEY not in text for text in run.output.values())


def test_setup(run: TutorialRun) -> None:
    output, requests, names = run.cell(SETUP)

    assert output == "Ready to manage sessions!\n"
    assert requests == []
    assert isinstance(names["client"], OpenAIClient)
    assert names["client"].base_url == run.server_url
    assert names["client"].model == MODEL
    assert names["PromptTemplate"] is PromptTemplate
    assert names["PromptBuilder"] is PromptBuilder


def test_basic_session_usage(run: TutorialRun) -> None:
    output, _, names = run.cell(BASIC)
    session = names["session"]

    assert _pairs(session.get_messages()) == [
        ("system", "You are a helpful assistant."),
        ("user", "What's the weather like?"),
        ("assistant", "I don't have access to real-time weather data."),
    ]
    assert "- user: What's the weather like?..." in output
    assert f"Session ID: {session.session_id}" in output
    assert "Message count: 3" in output


def test_sessions_with_llm_clients_send_the_whole_history(run: TutorialRun) -> None:
    output, _, names = run.cell(WITH_LLM)
    first, second = run.messages(WITH_LLM)
    system = ("system", "You are a Python coding assistant.")
    user1 = ("user", "How do I read a CSV file in Python?")
    user2 = ("user", "How do I filter rows where the 'age' column is greater than 30?")

    assert _pairs(first) == [system, user1]
    assert _pairs(second) == [system, user1, ("assistant", names["response1"]), user2]
    assert names["response1"] == f"echo: {user1[1]} (history: 2 messages)"
    assert names["response2"] == f"echo: {user2[1]} (history: 4 messages)"
    assert _pairs(names["coding_session"].get_messages()) == [
        *_pairs(second),
        ("assistant", names["response2"]),
    ]
    assert f"Response 2 (with context):\n{names['response2']}\n" in output


def test_session_metadata(run: TutorialRun) -> None:
    output, _, names = run.cell(METADATA)
    session = names["customer_session"]
    ((system, user),) = run.messages(METADATA)

    assert session.get_all_metadata().keys() == {
        "user_id",
        "user_name",
        "account_type",
        "session_purpose",
        "created_at",
    }
    assert session.get_metadata("user_name") == "John Doe"
    assert system["role"] == "system"
    assert "Customer: John Doe\nAccount Type: premium" in system["content"]
    assert user == {"role": "user", "content": "I'm having trouble with my API key"}
    assert "  account_type: premium" in output
    assert "Support Response for John Doe:" in output
    assert len(session) == 3


def test_session_persistence_round_trips_through_json(run: TutorialRun) -> None:
    output, _, names = run.cell(PERSISTENCE)
    original, loaded = names["persistent_session"], names["loaded_session"]
    saved = json.loads((run.workdir / "session_backup.json").read_text(encoding="utf-8"))
    (sent,) = run.messages(PERSISTENCE)

    assert saved["session_id"] == original.session_id
    assert loaded.session_id == original.session_id
    assert loaded.get_all_metadata() == original.get_all_metadata()
    assert original.get_all_metadata() == {"topic": "AI blog post", "word_count_target": 1000}
    assert loaded.get_messages()[:3] == original.get_messages()
    assert len(original) == 3
    assert len(loaded) == 5, "the loaded session continued: +1 user, +1 assistant"
    assert sent == [*original.get_messages(), loaded.get_messages()[3]]
    assert loaded.get_messages()[3] == {
        "role": "user",
        "content": "What should the introduction focus on?",
    }
    assert "Loaded Messages: 3" in output
    assert "Loaded Metadata: AI blog post" in output


def test_managed_session_keeps_system_prompt_and_recent_messages(run: TutorialRun) -> None:
    output, requests, names = run.cell(LONG)
    messages = names["managed"].get_messages()
    everything = [("system", "You are a helpful assistant. Be concise.")]
    for user, assistant in names["exchanges"]:
        everything += [("user", user), ("assistant", assistant)]

    assert requests == []
    assert len(messages) <= 6
    assert _pairs(messages) == [everything[0], *everything[-5:]]
    assert names["managed"].get_summary()["truncated"] is True
    assert output.count("After exchange") == 5


def test_analytics_session_counts_messages(run: TutorialRun) -> None:
    output, _, names = run.cell(ANALYTICS)
    analytics = names["analytics"]
    session = names["analytics_session"]

    assert analytics["total_messages"] == 7
    assert analytics["user_messages"] == 3
    assert analytics["assistant_messages"] == 3
    users = ["What is machine learning?", "Give me an example", "How does it work?"]
    assert analytics["avg_user_msg_length"] == pytest.approx(sum(map(len, users)) / 3)
    assert session.get_metadata("msg_2_length") == len(users[0])
    assert all(session.get_metadata(f"msg_{n}_timestamp") for n in range(1, 8))
    assert "  total_messages: 7" in output


def test_session_manager_tracks_three_users(run: TutorialRun) -> None:
    output, _, names = run.cell(MULTI_USER)
    active = names["manager"].get_active_sessions()

    assert [info["user_id"] for info in active] == ["user_123", "user_456", "user_789"]
    assert [info["message_count"] for info in active] == [3, 3, 3]
    alice = names["manager"].sessions["user_123"]
    assert alice.get_all_metadata() == {"user_id": "user_123", "name": "Alice", "role": "developer"}
    assert alice.get_messages()[2]["content"] == "Hello Alice! How can I help you today?"
    assert output.count("    Messages: 3") == 3


def test_session_templates(run: TutorialRun) -> None:
    output, _, names = run.cell(TEMPLATES)
    coding = names["coding_session"]
    ((system, user),) = run.messages(TEMPLATES)

    assert coding.get_all_metadata() == {"template": "coding_assistant", "language": "JavaScript"}
    assert names["support_session"].get_all_metadata() == {
        "template": "customer_support",
        "company": "TechCorp",
        "product": "CloudAPI",
    }
    assert names["writing_session"].get_metadata("genre") == "sci-fi"
    assert system["content"].startswith("You are an expert JavaScript developer.")
    assert user == {"role": "user", "content": "How do I handle async/await errors?"}
    assert len(coding) == 3
    assert "  language: JavaScript" in output


def test_memory_bot_remembers_preferences_and_history(run: TutorialRun) -> None:
    output, _, names = run.cell(MEMORY)
    bot = names["bot"]
    first, second = run.messages(MEMORY)

    assert first[0]["role"] == "system"
    assert "No previous interactions." in first[0]["content"]
    user1 = ("user", "Hi! My name is Alex and I like Python programming.")
    assert _pairs(first[1:]) == [user1]
    assert _pairs(second) == [
        _pairs(first)[0],
        user1,
        ("assistant", names["response1"]),
        ("user", "What's my favorite programming language?"),
    ]
    assert bot.memory["preferences"] == {"programming_language": "Python"}
    assert bot.memory["topics_discussed"] == ["Python programming"]
    assert len(bot.session) == 5
    printed = output.split("Bot's Memory:\n", 1)[1]
    assert json.loads(printed) == bot.memory


@pytest.mark.xfail(
    strict=True,
    reason="tutorial bug: _extract_memory checks 'my name is' in the lower-cased text but "
    "splits the original 'My name is Alex ...' on the lower-case phrase, so no fact is stored",
)
def test_memory_bot_remembers_the_name(run: TutorialRun) -> None:
    _, _, names = run.cell(MEMORY)

    assert "User's name is Alex" in names["bot"].memory["facts"]


def test_best_practices(run: TutorialRun) -> None:
    output, requests, names = run.cell(BEST)

    assert output == "Best practices examples created!\n"
    assert requests == []

    documented = names["create_documented_session"]("support", {"tier": "gold"})
    assert documented.get_metadata("user_info") == {"tier": "gold"}
    assert documented.get_metadata("version") == "1.0"

    assert names["AutoCleanupSession"](ttl_minutes=60).is_expired() is False

    leaky = Session()
    leaky.add_message("user", "My password is hunter2")
    leaky.add_message("user", "Nothing to hide")
    cleaned = names["sanitize_session"](leaky)
    assert _pairs(cleaned.get_messages()) == [("user", "[REDACTED]"), ("user", "Nothing to hide")]

    versioned = names["VersionedSession"]()
    versioned.add_message("user", "v1")
    versioned.checkpoint("first")
    versioned.add_message("user", "v2")
    versioned.restore(0)
    assert _pairs(versioned.get_messages()) == [("user", "v1")]
    assert re.match(r"\d{4}-\d\d-\d\dT", versioned.version_history[0]["timestamp"])
