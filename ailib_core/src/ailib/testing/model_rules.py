"""The rules of the model-based case: random histories of store calls, each checked against a
model made of plain lists and dicts (``ModelSession``), never against another store.

What the model holds is what the documentation promises (docs/stores.md, docs/sessions.md):

- a session's messages, exactly, in append order; ``load(last=k)`` returns the last ``k``, for
  a chat session widened backwards so that the tail never opens with ``tool`` results whose
  assistant call was cut off (an items session's tail is exact);
- its metadata after merges and unsets; its checkpoints (number, label, message count, and the
  messages and metadata a ``fork`` at the checkpoint starts from);
- versions only as far as they are documented: they only grow; ``append`` and
  ``update_metadata`` return a version above any seen before, which a load then shows;
- listing: every live session of the user once, across pages, most recently updated first;
- TTL: a session past its TTL is gone for every read; ``purge_expired`` leaves live ones.

Imported only when the case runs, so that ``ailib.testing`` works without Hypothesis.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

import pytest
from hypothesis import HealthCheck, Phase, note, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    precondition,
    rule,
    run_state_machine_as_test,
)

from ailib.errors import CheckpointNotFound, ConflictError, SessionNotFound
from ailib.session import Session
from ailib.store import SessionStore

__all__ = ("ModelSession", "expected_tail", "run_model")

Message = dict[str, Any]
MakeStore = Callable[..., SessionStore]

USERS: Final = ("ann", "bob")
#: A label the model does not know (the one ``restore`` gives the checkpoint it makes).
UNKNOWN: Final = object()
#: A TTL that never runs out during a case (``expires_at`` is checked against it).
LONG_TTL: Final = 3600.0
#: How long the short-lived session lives, and the slack after it for a server's clock and
#: expiry sweep: small, because every example that makes one waits for it (shrinking a
#: failure runs hundreds).
SHORT_TTL: Final = 0.02
EXPIRY_SLACK: Final = 0.1
#: How long a failure is shrunk, at most (the suite's per-test timeout is 300 s).
SHRINK_SECONDS: Final = 60


@dataclass
class ModelCheckpoint:
    number: int
    label: object
    messages: list[Message]
    metadata: dict[str, Any]


@dataclass
class ModelSession:
    """What one stored session must be."""

    kind: str
    messages: list[Message]
    metadata: dict[str, Any]
    #: The last version seen; ``exact``: no write since, ``grown``: a write since that must
    #: have raised it.
    version: int
    exact: bool = True
    grown: bool = False
    checkpoints: list[ModelCheckpoint] = field(default_factory=list)
    ttl: float | None = None
    ttl_known: bool = True
    #: Write counters: the last write that surely moved ``updated_at``, and the last that
    #: may have (a checkpoint, a pop of nothing).
    touched: int = 0
    maybe_touched: int = 0

    @property
    def user_id(self) -> str | None:
        user = self.metadata.get("user_id")
        return user if isinstance(user, str) else None

    def observe(self, version: int, where: str) -> None:
        """Check a version the store reports against what the model knows, then learn it."""
        if self.exact:
            assert version == self.version, f"{where}: version {version}, expected {self.version}"
        elif self.grown:
            assert version > self.version, f"{where}: version {version} not above {self.version}"
        else:
            assert version >= self.version, f"{where}: version {version} below {self.version}"
        self.version, self.exact, self.grown = version, True, False

    def wrote(self, version: int | None, tick: int, *, surely: bool = True) -> None:
        """A write happened; ``version`` is what it returned, if it returns one."""
        if version is not None:
            assert version > self.version, f"write returned {version}, not above {self.version}"
            self.version, self.exact, self.grown = version, True, False
        else:
            self.exact = False
            self.grown = self.grown or surely
        self.maybe_touched = tick
        if surely:
            self.touched = tick


def expected_tail(kind: str, messages: list[Message], last: int | None) -> list[Message]:
    """The messages ``load(last=last)`` returns (docs/stores.md, "Tails")."""
    if last is None:
        return messages
    start = max(0, len(messages) - last)
    if kind == "chat":
        while 0 < start < len(messages) and messages[start].get("role") == "tool":
            start -= 1
    return messages[start:]


# -- data ------------------------------------------------------------------------------------

texts = st.text(max_size=6)
metadata_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**6), 10**6),
    st.sampled_from([0.5, -1.25, 1e-3]),
    texts,
    st.lists(st.integers(0, 9), max_size=3),
    st.dictionaries(st.sampled_from(["a", "b"]), st.integers(0, 9), max_size=2),
    st.just(datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)),
)
metadata_keys = st.sampled_from(["topic", "n", "flag", "nested"])
plain_roles = st.sampled_from(["user", "assistant", "system", "developer"])
#: Messages in one append; the size that finds more bugs first, where Hypothesis starts.
sizes = st.sampled_from([3, 1, 2])
#: Messages a session is created with.
opening = st.sampled_from([3, 0, 6, 1])


@st.composite
def chat_batches(draw: st.DrawFn, calls: Iterator[int]) -> list[Message]:
    """One to three messages for one append: plain ones, or an assistant tool call with or
    without (then a later append brings them) the tool results answering it."""
    shape = draw(st.sampled_from(["plain", "exchange", "plain", "call"]))
    if shape == "plain":
        count = draw(sizes)
        return [{"role": draw(plain_roles), "content": draw(texts)} for _ in range(count)]
    ids = [f"call_{next(calls)}" for _ in range(draw(st.sampled_from([2, 1])))]
    call: Message = {
        "role": "assistant",
        "tool_calls": [
            {"id": i, "type": "function", "function": {"name": "f", "arguments": draw(texts)}}
            for i in ids
        ],
    }
    if shape == "call":
        return [call]
    return [call] + [{"role": "tool", "tool_call_id": i, "content": draw(texts)} for i in ids]


items = st.one_of(
    st.builds(lambda t: {"type": "message", "role": "user", "content": t}, texts),
    st.builds(
        lambda t: {"type": "function_call", "call_id": "c", "name": "f", "arguments": t}, texts
    ),
    st.builds(lambda t: {"role": "tool", "tool_call_id": "c", "content": t}, texts),
)


# -- the machine -----------------------------------------------------------------------------


def has_sessions(machine: StoreModel) -> bool:
    return bool(machine.sessions)


def sessions_with_checkpoints(machine: StoreModel) -> bool:
    return machine.has_checkpoints and bool(machine.sessions)


def has_chat_sessions(machine: StoreModel) -> bool:
    return any(s.kind == "chat" for s in machine.sessions.values())


class StoreModel(RuleBasedStateMachine):
    """One example: a store in a fresh namespace, driven by random rules."""

    make_store: MakeStore
    has_checkpoints: bool = True
    has_ttl: bool = True
    #: Examples that get a store (and namespace) of their own; later ones (Hypothesis
    #: shrinking a failure, hundreds of examples) share the last, emptied after each, so
    #: that a failing case does not open a connection pool per example.
    fresh_stores: int = 0
    examples_run: int = 0
    last_store: SessionStore | None = None

    def __init__(self) -> None:
        super().__init__()
        cls = type(self)
        cls.examples_run += 1
        if cls.last_store is None or cls.examples_run <= cls.fresh_stores:
            cls.last_store = cls.make_store(f"m{cls.examples_run}")
        self.store = cls.last_store
        self.sessions: dict[str, ModelSession] = {}
        #: Ids of sessions deleted or expired, in that order (the keys; values unused).
        self.gone: dict[str, None] = {}
        self.tick = 0
        self.calls = iter(range(1, 10**9))
        self.doomed: tuple[str, float] | None = None
        self.doomed_once = False

    def teardown(self) -> None:
        """Check a short-lived session not yet checked, then delete what the example stored."""
        from ailib.testing.pytest_plugin import empty

        try:
            if self.doomed is not None:
                self.check_expired()
        finally:
            empty(self.store)

    # -- helpers ------------------------------------------------------------------------

    def _next_tick(self) -> int:
        self.tick += 1
        return self.tick

    def _pick(self, index: int, *, kind: str | None = None) -> str:
        ids = [i for i, s in self.sessions.items() if kind is None or s.kind == kind]
        chosen = ids[index % len(ids)]
        note(f"session {chosen!r}: {self.sessions[chosen]}")
        return chosen

    def _opening(self, kind: str, size: int) -> list[Message]:
        """``size`` messages a session is created with: for chat, turns of a question, a tool
        call, its result and an answer."""
        turn: list[Message] = [
            {"role": "user", "content": "question"},
            {"role": "assistant", "tool_calls": []},
            {"role": "tool", "tool_call_id": "", "content": "result"},
            {"role": "assistant", "content": "answer"},
        ]
        if kind != "chat":
            turn = [{"type": "message", "role": "user", "content": "item"}]
        messages = [copy.deepcopy(turn[n % len(turn)]) for n in range(size)]
        for message in messages:
            if message.get("tool_calls") is not None:
                call_id = f"call_{next(self.calls)}"
                arguments = {"name": "f", "arguments": "{}"}
                message["tool_calls"] = [{"id": call_id, "type": "function", "function": arguments}]
            elif message.get("tool_call_id") is not None:
                message["tool_call_id"] = call_id
        return self._stamped(messages)

    def _stamped(self, batch: list[Message]) -> list[Message]:
        """``batch`` with every message made unique (a serial number in its text, or for an
        item in a key of its own), so that a lost, repeated or reordered one shows."""
        for message in batch:
            serial = next(self.calls)
            if isinstance(message.get("content"), str):
                message["content"] = f"#{serial} {message['content']}"
            elif "type" in message:
                message["serial"] = serial
        return batch

    def _add(self, made: Session, model: ModelSession, tick: int) -> None:
        assert made.session_id not in self.sessions
        assert made.version > 0, f"a new session has version {made.version}"
        model.version, model.touched, model.maybe_touched = made.version, tick, tick
        self.sessions[made.session_id] = model
        self.gone.pop(made.session_id, None)
        self._check_expiry(made, model, "create")

    def _check_expiry(self, loaded: Session, model: ModelSession, where: str) -> None:
        if not self.has_ttl or not model.ttl_known:
            return
        if model.ttl is None:
            assert loaded.expires_at is None, f"{where}: a session without TTL expires"
            return
        assert loaded.expires_at is not None, f"{where}: a session with a TTL never expires"
        lives = (loaded.expires_at - loaded.updated_at).total_seconds()
        assert abs(lives - model.ttl) < 0.05, f"{where}: expires {lives} s after its last write"

    def _compare(self, session_id: str, last: int | None = None) -> None:
        model = self.sessions[session_id]
        loaded = self.store.load(session_id, last=last)
        where = f"load({session_id!r}, last={last})"
        assert loaded.session_id == session_id
        assert loaded.kind == model.kind, where
        assert loaded.messages == expected_tail(model.kind, model.messages, last), where
        assert loaded.metadata == model.metadata, where
        model.observe(loaded.version, where)
        self._check_expiry(loaded, model, where)

    def _check_gone(self, session_id: str) -> None:
        assert not self.store.exists(session_id)
        assert self.store.get(session_id) is None
        with pytest.raises(SessionNotFound):
            self.store.load(session_id)
        with pytest.raises(SessionNotFound):
            self.store.load(session_id, last=1)
        with pytest.raises(SessionNotFound):
            self.store.append(session_id, {"role": "user", "content": "late"})

    def _listed_checkpoints(self, session_id: str) -> list[tuple[int, object, int]]:
        return [(c.version, c.label, c.message_count) for c in self.store.checkpoints(session_id)]

    # -- rules: writes ------------------------------------------------------------------

    @initialize(
        sessions=st.lists(
            st.tuples(st.sampled_from([None, *USERS]), opening), min_size=2, max_size=4
        )
    )
    def start(self, sessions: list[tuple[str | None, int]]) -> None:
        assert self.store.list().items == [], "a fresh namespace lists sessions"
        for user, size in sessions:
            self.create(user, {}, "chat", with_ttl=False, reuse=False, size=size)

    @rule(
        user=st.sampled_from([None, *USERS]),
        extra=st.dictionaries(metadata_keys, metadata_values, max_size=2),
        kind=st.sampled_from(["chat", "chat", "items"]),
        with_ttl=st.booleans(),
        reuse=st.booleans(),
        size=opening,
    )
    def create(
        self,
        user: str | None,
        extra: dict[str, Any],
        kind: str,
        with_ttl: bool,
        reuse: bool,
        size: int,
    ) -> None:
        metadata = dict(extra) if user is None else {**extra, "user_id": user}
        ttl = LONG_TTL if with_ttl and self.has_ttl else None
        session_id = next(iter(self.gone)) if reuse and self.gone else None
        messages = self._opening(kind, size)
        made = self.store.create(
            metadata, ttl, session_id=session_id, kind=kind, messages=copy.deepcopy(messages)
        )
        if session_id is not None:
            assert made.session_id == session_id
        model = ModelSession(kind, messages, copy.deepcopy(metadata), 0, ttl=ttl)
        self._add(made, model, self._next_tick())

    @precondition(has_sessions)
    @rule(index=st.integers(0, 99))
    def create_taken_id_conflicts(self, index: int) -> None:
        session_id = self._pick(index)
        with pytest.raises(ConflictError):
            self.store.create({"user_id": "intruder"}, session_id=session_id)

    @precondition(has_sessions)
    @rule(index=st.integers(0, 99), times=st.integers(1, 3), data=st.data())
    def append(self, index: int, times: int, data: st.DataObject) -> None:
        """``times`` appends (the main write, so more of them than of the others)."""
        session_id = self._pick(index)
        model = self.sessions[session_id]
        for _ in range(times):
            if model.kind == "chat":
                batch = self._stamped(data.draw(chat_batches(self.calls), label="messages"))
            else:
                count = data.draw(sizes, label="how many items")
                batch = self._stamped([data.draw(items, label="item") for _ in range(count)])
            version = self.store.append(session_id, *copy.deepcopy(batch))
            model.messages += batch
            model.wrote(version, self._next_tick())
        size = len(model.messages)
        self._compare(session_id, data.draw(st.integers(0, size), label="then load(last=)"))
        self._compare(session_id, size + data.draw(st.integers(1, 3), label="and beyond it"))

    @precondition(has_chat_sessions)
    @rule(index=st.integers(0, 99), contents=st.lists(texts, min_size=1, max_size=2))
    def answer_tool_calls(self, index: int, contents: list[str]) -> None:
        """Tool results in an append of their own, after the one that made the calls."""
        session_id = self._pick(index, kind="chat")
        model = self.sessions[session_id]
        last = model.messages[-1] if model.messages else {}
        ids = [c["id"] for c in last.get("tool_calls", ())]
        if not ids:
            return
        batch = self._stamped(
            [
                {"role": "tool", "tool_call_id": i, "content": contents[n % len(contents)]}
                for n, i in enumerate(ids)
            ]
        )
        version = self.store.append(session_id, *copy.deepcopy(batch))
        model.messages += batch
        model.wrote(version, self._next_tick())

    @precondition(has_chat_sessions)
    @rule(index=st.integers(0, 99), stale=st.booleans())
    def append_expecting_version(self, index: int, stale: bool) -> None:
        session_id = self._pick(index, kind="chat")
        model = self.sessions[session_id]
        if not model.exact:
            self._compare(session_id, 0)
        message = {"role": "user", "content": f"expecting {model.version}"}
        if stale:
            with pytest.raises(ConflictError):
                self.store.append(session_id, message, expected_version=model.version - 1)
            return
        version = self.store.append(session_id, message, expected_version=model.version)
        model.messages.append(message)
        model.wrote(version, self._next_tick())

    @precondition(has_sessions)
    @rule(
        index=st.integers(0, 99),
        values=st.dictionaries(metadata_keys, metadata_values, max_size=2),
        user=st.sampled_from([None, *USERS]),
        unset=st.lists(st.sampled_from(["topic", "n", "flag", "nested", "user_id"]), max_size=2),
    )
    def update_metadata(
        self, index: int, values: dict[str, Any], user: str | None, unset: list[str]
    ) -> None:
        session_id = self._pick(index)
        values = dict(values) if user is None else {**values, "user_id": user}
        unset = [key for key in unset if key not in values]
        version = self.store.update_metadata(session_id, copy.deepcopy(values), unset=unset)
        model = self.sessions[session_id]
        for key in unset:
            model.metadata.pop(key, None)
        model.metadata.update(copy.deepcopy(values))
        model.wrote(version, self._next_tick())

    @precondition(has_sessions)
    @rule(index=st.integers(0, 99), count=st.sampled_from([2, 1, 4, 3]))
    def pop(self, index: int, count: int) -> None:
        session_id = self._pick(index)
        model = self.sessions[session_id]
        keep = max(0, len(model.messages) - count)
        expected = model.messages[keep:]
        assert self.store.pop(session_id, count) == expected
        del model.messages[keep:]
        model.wrote(None, self._next_tick(), surely=bool(expected))

    @precondition(has_sessions)
    @rule(index=st.integers(0, 99))
    def clear(self, index: int) -> None:
        session_id = self._pick(index)
        model = self.sessions[session_id]
        assert self.store.clear(session_id) == len(model.messages)
        model.wrote(None, self._next_tick(), surely=bool(model.messages))
        model.messages = []

    @precondition(has_sessions)
    @rule(index=st.integers(0, 99))
    def delete(self, index: int) -> None:
        session_id = self._pick(index)
        assert self.store.delete(session_id) is True
        del self.sessions[session_id]
        self.gone[session_id] = None
        self._check_gone(session_id)
        assert self.store.delete(session_id) is False

    # -- rules: checkpoints -------------------------------------------------------------

    def _newest_checkpoint(self, model: ModelSession) -> int:
        return max((c.number for c in model.checkpoints), default=0)

    @precondition(sessions_with_checkpoints)
    @rule(index=st.integers(0, 99), label=st.one_of(st.none(), st.text(min_size=1, max_size=6)))
    def checkpoint(self, index: int, label: str | None) -> None:
        session_id = self._pick(index)
        model = self.sessions[session_id]
        number = self.store.checkpoint(session_id, label=label)
        assert number > self._newest_checkpoint(model), f"checkpoint number {number} reused"
        model.checkpoints.append(
            ModelCheckpoint(
                number, label, copy.deepcopy(model.messages), copy.deepcopy(model.metadata)
            )
        )
        model.wrote(None, self._next_tick(), surely=False)

    @precondition(sessions_with_checkpoints)
    @rule(index=st.integers(0, 99))
    def list_checkpoints(self, index: int) -> None:
        session_id = self._pick(index)
        model = self.sessions[session_id]
        listed = self._listed_checkpoints(session_id)
        assert len(listed) == len(model.checkpoints), listed
        for (number, label, count), kept in zip(listed, model.checkpoints, strict=True):
            assert number == kept.number, listed
            assert count == len(kept.messages), listed
            if kept.label is not UNKNOWN:
                assert label == kept.label, listed

    @precondition(sessions_with_checkpoints)
    @rule(index=st.integers(0, 99), which=st.integers(0, 99))
    def restore(self, index: int, which: int) -> None:
        session_id = self._pick(index)
        model = self.sessions[session_id]
        if not model.checkpoints:
            with pytest.raises(CheckpointNotFound):
                self.store.restore(session_id, 1)
            return
        target = model.checkpoints[which % len(model.checkpoints)]
        self.store.restore(session_id, target.number)
        listed = self._listed_checkpoints(session_id)
        assert len(listed) == len(model.checkpoints) + 1, "restore saves the current state first"
        number, _, count = listed[-1]
        assert number > self._newest_checkpoint(model), listed
        assert count == len(model.messages), listed
        model.checkpoints.append(
            ModelCheckpoint(number, UNKNOWN, model.messages, copy.deepcopy(model.metadata))
        )
        model.messages = copy.deepcopy(target.messages)
        model.metadata = copy.deepcopy(target.metadata)
        model.wrote(None, self._next_tick())

    @precondition(has_sessions)
    @rule(index=st.integers(0, 99), which=st.integers(-1, 99))
    def fork(self, index: int, which: int) -> None:
        """``which`` < 0 (or a store without checkpoints): from the current state."""
        session_id = self._pick(index)
        model = self.sessions[session_id]
        if which < 0 or not model.checkpoints or not self.has_checkpoints:
            made = self.store.fork(session_id)
            messages, metadata = model.messages, model.metadata
        else:
            target = model.checkpoints[which % len(model.checkpoints)]
            made = self.store.fork(session_id, target.number)
            messages, metadata = target.messages, target.metadata
        assert made.session_id != session_id
        copied = ModelSession(
            model.kind, copy.deepcopy(messages), copy.deepcopy(metadata), 0, ttl_known=False
        )
        self._add(made, copied, self._next_tick())
        self._compare(made.session_id)

    @precondition(sessions_with_checkpoints)
    @rule(index=st.integers(0, 99))
    def unknown_checkpoint(self, index: int) -> None:
        session_id = self._pick(index)
        bogus = self._newest_checkpoint(self.sessions[session_id]) + 1000
        with pytest.raises(CheckpointNotFound):
            self.store.restore(session_id, bogus)
        with pytest.raises(CheckpointNotFound):
            self.store.fork(session_id, bogus)

    # -- rules: reads -------------------------------------------------------------------

    @precondition(has_sessions)
    @rule(index=st.integers(0, 99), k=st.integers(0, 99), beyond=st.booleans())
    def load_tail(self, index: int, k: int, beyond: bool) -> None:
        """``load(last=k)`` for k from 0 to the length, or (``beyond``) up to 3 more."""
        session_id = self._pick(index)
        size = len(self.sessions[session_id].messages)
        self._compare(session_id, size + 1 + k % 3 if beyond else k % (size + 1))

    @precondition(has_sessions)
    @rule(index=st.integers(0, 99))
    def load(self, index: int) -> None:
        session_id = self._pick(index)
        self._compare(session_id)
        assert self.store.exists(session_id)

    @rule()
    def load_everything(self) -> None:
        for session_id in list(self.sessions):
            self._compare(session_id)
        for session_id in self.gone:
            self._check_gone(session_id)

    @rule(user=st.sampled_from([None, None, *USERS]), limit=st.integers(1, 2))
    def list_pages(self, user: str | None, limit: int) -> None:
        """Every page, ``limit`` sessions a page, of all sessions or one user's."""
        listed = []
        pages: list[list[str]] = []
        cursor = None
        while True:
            page = self.store.list(user_id=user, limit=limit, cursor=cursor)
            assert len(page.items) <= limit
            listed += page.items
            pages.append([s.session_id for s in page.items])
            if page.next_cursor is None:
                break
            assert len(page.items) == limit, "a page short of the limit has a next page"
            cursor = page.next_cursor
        ids = [s.session_id for s in listed]
        assert len(ids) == len(set(ids)), f"listed twice: {ids}"
        doomed = self._doomed_maybe_alive()
        expected = {i for i, s in self.sessions.items() if user is None or s.user_id == user}
        assert set(ids) - doomed == expected, (
            f"list(user_id={user!r}, limit={limit}) gave pages {pages}, expected "
            f"{sorted(expected)}; updated_at of those listed: "
            f"{[(s.session_id, s.updated_at.timestamp()) for s in listed]}"
        )
        keys = [(s.updated_at, s.session_id) for s in listed]
        assert keys == sorted(keys, reverse=True), "not most recently updated first"
        models = [self.sessions[i] for i in ids if i in self.sessions]
        for n, newer in enumerate(models):
            for older in models[n + 1 :]:
                assert older.touched <= newer.maybe_touched, f"order {ids}"
        for summary in listed:
            if summary.session_id in doomed:
                continue
            model = self.sessions[summary.session_id]
            assert summary.kind == model.kind
            assert summary.message_count == len(model.messages), summary
            assert summary.metadata == model.metadata, summary
            assert summary.user_id == model.user_id, summary
            model.observe(summary.version, f"list: {summary.session_id}")

    # -- rules: TTL ---------------------------------------------------------------------

    def _doomed_maybe_alive(self) -> set[str]:
        return set() if self.doomed is None else {self.doomed[0]}

    @precondition(lambda self: self.has_ttl and not self.doomed_once)
    @rule(user=st.sampled_from([None, *USERS]))
    def create_short_lived(self, user: str | None) -> None:
        """A session with a TTL of a fraction of a second, checked once it is past it, and
        one with an hour, which must outlive it and ``purge_expired``."""
        self.doomed_once = True
        self.create(user, {}, "chat", with_ttl=True, reuse=False, size=1)
        made = self.store.create(
            {} if user is None else {"user_id": user},
            SHORT_TTL,
            messages=[{"role": "user", "content": "soon gone"}],
        )
        self.doomed = (made.session_id, time.monotonic() + SHORT_TTL + EXPIRY_SLACK)
        self._next_tick()

    @precondition(lambda self: self.doomed is not None)
    @rule()
    def check_expired(self) -> None:
        assert self.doomed is not None
        session_id, expired_by = self.doomed
        time.sleep(max(0.0, expired_by - time.monotonic()))
        self.doomed = None
        self.gone[session_id] = None
        self._check_gone(session_id)
        listed = self.store.list(limit=1000).items
        assert session_id not in {s.session_id for s in listed}
        self.store.purge_expired()
        for kept in self.sessions:
            assert self.store.exists(kept), f"purge_expired removed live session {kept!r}"


def run_model(
    make_store: MakeStore,
    *,
    checkpoints: bool,
    ttl: bool,
    examples: int,
    steps: int,
    shrink: bool = True,
) -> None:
    """Run the machine: ``examples`` random histories of up to ``steps`` calls each, the same
    ones on every run (derandomized), each against a store in a fresh namespace. A failure
    is shrunk to a short history unless ``shrink`` is false."""
    machine = type(
        "StoreModel",
        (StoreModel,),
        {
            "make_store": staticmethod(make_store),
            "has_checkpoints": checkpoints,
            "has_ttl": ttl,
            "fresh_stores": examples,
        },
    )
    with _shrinking_for_at_most(SHRINK_SECONDS):
        run_state_machine_as_test(
            machine,
            settings=settings(
                max_examples=examples,
                stateful_step_count=steps,
                deadline=None,
                derandomize=True,
                database=None,
                suppress_health_check=list(HealthCheck),
                phases=[Phase.explicit, Phase.generate, *([Phase.shrink] if shrink else [])],
            ),
        )


@contextmanager
def _shrinking_for_at_most(seconds: float) -> Iterator[None]:
    """Bound the time Hypothesis spends shrinking a failure (five minutes by default, with
    no setting for it), so that a slow backend reports its failure before a test timeout.
    Leaves Hypothesis alone if a future version no longer has the bound."""
    from hypothesis.internal.conjecture import engine

    if not isinstance(getattr(engine, "MAX_SHRINKING_SECONDS", None), int | float):
        yield
        return
    saved = engine.MAX_SHRINKING_SECONDS
    engine.MAX_SHRINKING_SECONDS = seconds  # type: ignore[assignment]
    try:
        yield
    finally:
        engine.MAX_SHRINKING_SECONDS = saved
