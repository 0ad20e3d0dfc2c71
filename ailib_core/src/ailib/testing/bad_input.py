"""Conformance cases feeding every public method input it must refuse.

Each bad call must raise the specific ailib error, before the backend is touched, and leave
the stored session exactly as it was: the cases load it afterwards and compare it with plain
lists and dicts kept by the test.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from ailib.errors import (
    AilibError,
    InvalidArgument,
    InvalidArgumentType,
    InvalidMessage,
    InvalidMetadata,
    InvalidSessionId,
)
from ailib.session import Session
from ailib.store import SessionStore

__all__ = ("BadInputCases",)

#: Messages a chat session must refuse, by what is wrong with them.
BAD_CHAT_MESSAGES: dict[str, Any] = {
    "wrong role": {"role": "robot", "content": "x"},
    "no role": {"content": "x"},
    "no content": {"role": "user"},
    "NaN": {"role": "user", "content": "x", "name": float("nan")},
    "NaN in a part": {"role": "user", "content": [{"type": "text", "text": math.nan}]},
    "infinity": {"role": "user", "content": [{"type": "text", "n": math.inf}]},
    "lone surrogate": {"role": "user", "content": "\ud800"},
    "lone surrogate in a key": {"role": "user", "content": [{"type": "t", "\udfff": 1}]},
    "non-str key": {"role": "user", "content": [{"type": "text", 1: "x"}]},
    "tuple": {"role": "user", "content": [{"type": "text", "text": ("a", "b")}]},
    "bytes": {"role": "user", "content": b"x"},
    "not a dict": "hello",
    "unknown field": {"role": "user", "content": "x", "colour": "red"},
}

#: Items an ``items`` session must refuse (any JSON object is fine there).
BAD_ITEMS: dict[str, Any] = {
    "NaN": {"type": "x", "value": math.nan},
    "-infinity": {"type": "x", "value": -math.inf},
    "lone surrogate": {"type": "x", "text": "a\ud800b"},
    "non-str key": {"type": "x", 7: "seven"},
    "set": {"type": "x", "tags": {"a"}},
    "not a dict": ["type", "x"],
}

BAD_TTLS: list[Any] = [math.inf, -math.inf, math.nan, -1, "99999999w", 10**12, 10**400, "soon"]
WRONG_TYPE_TTLS: list[Any] = [True, object(), [60]]


@dataclass
class Snapshot:
    """A stored session as plain data, to compare after a refused call."""

    messages: list[dict[str, Any]]
    metadata: dict[str, Any]
    version: int

    @classmethod
    def of(cls, store: SessionStore, session_id: str) -> Snapshot:
        loaded = store.load(session_id)
        return cls([dict(m) for m in loaded.messages], loaded.get_all_metadata(), loaded.version)


def refused(error: type[AilibError], call: Callable[[], object]) -> AilibError:
    """Run ``call``; it must raise exactly ``error`` (a range error is not a type error)."""
    with pytest.raises(error) as info:
        call()
    if error is InvalidArgument:
        assert not isinstance(info.value, InvalidArgumentType), info.value
    assert str(info.value), "an error must say what was wrong"
    return info.value


class BadInputCases:
    """Bad input to every public method: refused with the specific error, nothing stored."""

    def _victim(self, store: SessionStore, kind: str = "chat") -> tuple[str, Snapshot]:
        if kind == "chat":
            session = store.create({"user_id": "bad-input", "n": 1})
            session.add_message("user", "one")
            session.add_message("assistant", "two")
        else:
            session = store.create({"user_id": "bad-input"}, kind=kind)
            store.append(session.session_id, {"type": "message", "role": "user", "content": "a"})
        return session.session_id, Snapshot.of(store, session.session_id)

    @pytest.mark.parametrize("what", sorted(BAD_CHAT_MESSAGES))
    def test_append_refuses_bad_chat_messages(self, store: SessionStore, what: str) -> None:
        session_id, before = self._victim(store)
        bad = BAD_CHAT_MESSAGES[what]
        good = {"role": "user", "content": "fine"}
        refused(InvalidMessage, lambda: store.append(session_id, bad))
        refused(InvalidMessage, lambda: store.append(session_id, good, bad))
        refused(InvalidMessage, lambda: store.load(session_id).bind(store).add(bad))
        assert Snapshot.of(store, session_id) == before

    @pytest.mark.parametrize("what", sorted(BAD_ITEMS))
    def test_append_refuses_bad_items(self, store: SessionStore, what: str) -> None:
        session_id, before = self._victim(store, "items")
        refused(InvalidMessage, lambda: store.append(session_id, BAD_ITEMS[what]))
        assert Snapshot.of(store, session_id) == before
        store.append(session_id, {"type": "anything", "nested": {"ok": [1, 2.5, None]}})
        assert len(store.load(session_id)) == len(before.messages) + 1

    @pytest.mark.parametrize("what", ["wrong role", "NaN", "lone surrogate", "non-str key"])
    def test_whole_session_writes_refuse_bad_messages(self, store: SessionStore, what: str) -> None:
        bad = BAD_CHAT_MESSAGES[what]
        refused(InvalidMessage, lambda: store.create(session_id="never-made", messages=[bad]))
        assert not store.exists("never-made")
        session_id, before = self._victim(store)
        loaded = store.load(session_id)
        loaded.messages.append(bad)
        refused(InvalidMessage, lambda: store.save(loaded))
        assert Snapshot.of(store, session_id) == before
        exported = store.export_session(session_id)
        exported["session_id"] = "never-imported"
        exported["messages"] = [*exported["messages"], bad]
        refused(AilibError, lambda: store.import_session(exported))
        assert not store.exists("never-imported")

    @pytest.mark.parametrize(
        "values",
        [
            {"x": math.nan},
            {"x": [1, math.inf]},
            {"x": "\ud800"},
            {"x": {1: "one"}},
            {"x": (1, 2)},
            {"user_id": 42},
            {"user_id": None},
            {"user_id": ["u"]},
            {"": 1},
        ],
        ids=repr,
    )
    def test_bad_metadata_is_refused(self, store: SessionStore, values: dict[Any, Any]) -> None:
        session_id, before = self._victim(store)
        refused(InvalidMetadata, lambda: store.update_metadata(session_id, values))
        refused(InvalidMetadata, lambda: store.create(values, session_id="never-made"))
        assert not store.exists("never-made")
        loaded = store.load(session_id).bind(store)
        for key, value in values.items():

            def set_one(key: Any = key, value: Any = value) -> None:
                loaded.set_metadata(key, value)

            refused(InvalidMetadata, set_one)
        assert Snapshot.of(store, session_id) == before
        assert {s.session_id for s in store.list(user_id="bad-input")} == {session_id}

    @pytest.mark.parametrize("ttl", BAD_TTLS, ids=repr)
    def test_out_of_range_ttls_are_refused(self, store: SessionStore, ttl: Any) -> None:
        error = refused(InvalidArgument, lambda: store.create(ttl=ttl, session_id="never-made"))
        assert "10 years" in str(error)
        assert not store.exists("never-made")
        session_id, before = self._victim(store)
        refused(InvalidArgument, lambda: store.save(store.load(session_id), ttl=ttl))
        refused(InvalidArgument, lambda: store.memory("bad-ttl", ttl=ttl).set("x", 1))
        assert Snapshot.of(store, session_id) == before

    @pytest.mark.parametrize("ttl", WRONG_TYPE_TTLS, ids=repr)
    def test_ttls_of_the_wrong_type_are_refused(self, store: SessionStore, ttl: Any) -> None:
        refused(InvalidArgumentType, lambda: store.create(ttl=ttl, session_id="never-made"))
        assert not store.exists("never-made")

    def test_ttl_zero_means_no_expiry(self, store: SessionStore) -> None:
        for no_expiry in (0, 0.0, "0", ""):
            session = store.create(ttl=no_expiry)
            assert session.expires_at is None
            assert store.load(session.session_id).expires_at is None
        longest = store.create(ttl="520w")
        assert longest.expires_at is not None

    def test_bad_arguments_of_create_and_session(self, store: SessionStore) -> None:
        any_store: Any = store  # not every store's session() takes a kind yet
        bad: list[tuple[type[AilibError], Callable[[], object]]] = [
            (InvalidArgumentType, lambda: store.create("x")),  # type: ignore[arg-type]
            (InvalidArgumentType, lambda: store.create(["user_id", "u"])),  # type: ignore[arg-type]
            (InvalidArgument, lambda: store.create(kind="bogus")),
            (InvalidArgumentType, lambda: store.create(kind=5)),  # type: ignore[arg-type]
            (InvalidArgumentType, lambda: store.create(messages=None)),  # type: ignore[arg-type]
            (InvalidSessionId, lambda: store.create(session_id=5)),  # type: ignore[arg-type]
            (InvalidArgument, lambda: any_store.session("made-by-session", create=True, kind="x")),
            (InvalidArgumentType, lambda: store.save("not a session")),  # type: ignore[arg-type]
            (InvalidArgumentType, lambda: store.import_session("x")),  # type: ignore[arg-type]
        ]
        for error, call in bad:
            refused(error, call)
        assert store.list().items == []

    def test_bad_arguments_of_reads(self, store: SessionStore) -> None:
        session_id, before = self._victim(store)
        bad: list[tuple[type[AilibError], Callable[[], object]]] = [
            (InvalidArgument, lambda: store.load(session_id, last=-1)),
            (InvalidArgumentType, lambda: store.load(session_id, last="2")),  # type: ignore[arg-type]
            (InvalidArgumentType, lambda: store.load(session_id, last=1.5)),  # type: ignore[arg-type]
            (InvalidArgumentType, lambda: store.load(session_id, last=True)),
            (InvalidSessionId, lambda: store.load(5)),  # type: ignore[arg-type]
            (InvalidSessionId, lambda: store.get(None)),  # type: ignore[arg-type]
            (InvalidSessionId, lambda: store.exists(b"x")),  # type: ignore[arg-type]
            (InvalidArgument, lambda: store.list(limit=0)),
            (InvalidArgument, lambda: store.list(limit=-5)),
            (InvalidArgument, lambda: store.list(limit=10**6)),
            (InvalidArgumentType, lambda: store.list(limit="5")),  # type: ignore[arg-type]
            (InvalidArgumentType, lambda: store.list(limit=2.0)),  # type: ignore[arg-type]
            (InvalidArgumentType, lambda: store.list(user_id=5)),  # type: ignore[arg-type]
            (InvalidArgument, lambda: store.list(cursor="not-a-cursor")),
            (InvalidArgument, lambda: store.list(cursor="")),
            (InvalidArgumentType, lambda: store.list(cursor=5)),  # type: ignore[arg-type]
            (InvalidArgument, lambda: store.list(kind="bogus")),
            (InvalidArgumentType, lambda: store.memory(5)),  # type: ignore[arg-type]
            (InvalidArgument, lambda: store.memory("")),
            (InvalidArgumentType, lambda: store.forget_user(None)),  # type: ignore[arg-type]
        ]
        for error, call in bad:
            refused(error, call)
        limit_error = refused(InvalidArgument, lambda: store.list(limit=10**6))
        assert "1000" in str(limit_error)
        assert Snapshot.of(store, session_id) == before

    def test_bad_arguments_of_writes(self, store: SessionStore) -> None:
        session_id, before = self._victim(store)
        ok = {"role": "user", "content": "x"}
        writer: Any = store  # idempotency_key is not in every store's signature yet
        bad: list[tuple[type[AilibError], Callable[[], object]]] = [
            (InvalidMessage, lambda: store.append(session_id)),
            (InvalidSessionId, lambda: store.append(7, ok)),  # type: ignore[arg-type]
            (InvalidArgumentType, lambda: store.append(session_id, ok, expected_version="x")),  # type: ignore[arg-type]
            (InvalidArgument, lambda: store.append(session_id, ok, expected_version=-1)),
            (
                InvalidArgumentType,
                lambda: store.update_metadata(session_id, {"a": 1}, expected_version="1"),  # type: ignore[arg-type]
            ),
            (InvalidArgumentType, lambda: store.update_metadata(session_id, "x")),  # type: ignore[arg-type]
            (InvalidArgumentType, lambda: store.update_metadata(session_id, unset="n")),
            (InvalidArgumentType, lambda: store.update_metadata(session_id, unset=[1])),  # type: ignore[list-item]
            (InvalidArgument, lambda: writer.append(session_id, ok, idempotency_key="")),
            (InvalidArgument, lambda: writer.append(session_id, ok, idempotency_key="k" * 201)),
            (InvalidArgumentType, lambda: writer.append(session_id, ok, idempotency_key=5)),
            (InvalidArgument, lambda: store.pop(session_id, 0)),
            (InvalidArgument, lambda: store.pop(session_id, -1)),
            (InvalidArgumentType, lambda: store.pop(session_id, "1")),  # type: ignore[arg-type]
            (InvalidArgumentType, lambda: store.restore(session_id, "x")),  # type: ignore[arg-type]
            (InvalidArgumentType, lambda: store.restore(session_id, "1")),  # type: ignore[arg-type]
            (InvalidArgument, lambda: store.restore(session_id, 0)),
            (InvalidArgumentType, lambda: store.checkpoint(session_id, label=5)),  # type: ignore[arg-type]
            (InvalidArgument, lambda: store.checkpoint(session_id, label="")),
            (InvalidArgumentType, lambda: store.fork(session_id, "1")),  # type: ignore[arg-type]
            (InvalidArgument, lambda: store.memory("someone").update({"user_id": "other"})),
            (InvalidArgumentType, lambda: store.memory("someone").update("x")),  # type: ignore[arg-type]
        ]
        for error, call in bad:
            refused(error, call)
        assert Snapshot.of(store, session_id) == before
        assert [s.session_id for s in store.list()] == [session_id]

    def test_unbound_session_save_is_an_ailib_error(self) -> None:
        refused(AilibError, lambda: Session().save())
