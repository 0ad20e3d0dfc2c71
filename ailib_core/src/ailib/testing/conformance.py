"""The store conformance suite: subclass :class:`StoreConformance` and give it a URL.

Every first-party store runs it, and so can any third-party store::

    class TestMyStore(StoreConformance):
        lacks = frozenset({Capability.CONCURRENCY})   # reported as skips

        @pytest.fixture
        def store_url(self) -> str:
            return "mystore://127.0.0.1/test"

Override ``make_store`` instead when a URL alone cannot build the store. Each test opens its
stores in namespaces of its own and deletes what it stored.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any, ClassVar

import pytest

from ailib.errors import (
    CheckpointNotFound,
    ConflictError,
    InvalidMessage,
    InvalidSessionId,
    SessionNotFound,
)
from ailib.registry import open_store
from ailib.session import Session
from ailib.store import SessionStore
from ailib.testing.bad_input import BadInputCases
from ailib.testing.capabilities import Capability, Damage, MakeStore
from ailib.testing.corruption import CorruptionCases
from ailib.testing.model import StoreModelCases
from ailib.testing.pytest_plugin import empty

__all__ = ("Capability", "Damage", "MakeStore", "StoreConformance")

#: Slack past a deadline for a server's clock resolution and its expiry sweep.
EXPIRY_SLACK = 0.3


def sleep_until(deadline: float) -> None:
    """Sleep until ``time.monotonic()`` reaches ``deadline``; the TTL cases wait on deadlines
    taken around each store call, so a slow round trip shortens the wait instead of failing."""
    time.sleep(max(0.0, deadline - time.monotonic()))


def _tool_exchange(call_id: str) -> list[dict[str, Any]]:
    return [
        {
            "role": "assistant",
            "tool_calls": [
                {
                    "id": call_id,
                    "type": "function",
                    "function": {"name": "weather", "arguments": '{"city": "Oslo"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": call_id, "content": '{"temp": 3}'},
    ]


class StoreConformance(StoreModelCases, BadInputCases, CorruptionCases):
    """The behaviour every ``SessionStore`` must have."""

    lacks: ClassVar[frozenset[Capability]] = frozenset()
    #: The TTL, in seconds, the expiry cases give sessions; raise it for a slow backend.
    short_ttl: ClassVar[float] = 0.6

    # -- fixtures a store author overrides ------------------------------------------------

    @pytest.fixture
    def store_url(self) -> str:
        raise NotImplementedError("override the store_url fixture (or make_store)")

    @pytest.fixture
    def make_store(self, store_url: str) -> Iterator[MakeStore]:
        """Opens stores on the backend under test, each in a namespace of this test."""
        prefix = f"c{uuid.uuid4().hex[:10]}"
        opened: list[SessionStore] = []

        def make(namespace: str = "a", **options: Any) -> SessionStore:
            store = open_store(store_url, namespace=f"{prefix}-{namespace}", **options)
            opened.append(store)
            return store

        yield make
        for store in opened:
            empty(store)
            store.close()

    @pytest.fixture
    def store(self, make_store: MakeStore) -> SessionStore:
        return make_store()

    def need(self, capability: Capability) -> None:
        if capability in self.lacks:
            pytest.skip(f"the store declares it lacks {capability.value!r}")

    # -- round trips ----------------------------------------------------------------------

    def test_create_and_load_round_trip(self, store: SessionStore) -> None:
        session = store.create({"user_id": "u1", "topic": "Ünïcødé ✓"})
        session.add_message("system", "You are terse.")
        session.add_message("user", "Grüß dich 👋 — 你好")
        session.add_message("assistant", "Hallo!")
        loaded = store.load(session.session_id)
        assert loaded.session_id == session.session_id
        assert loaded.messages == session.messages
        assert loaded.get_all_metadata() == {"user_id": "u1", "topic": "Ünïcødé ✓"}
        assert len(loaded) == 3
        assert loaded.version == session.version
        assert loaded.store is None

    def test_message_shapes_round_trip(self, store: SessionStore) -> None:
        session = store.create()
        session.add_message(
            "user",
            [
                {"type": "text", "text": "What is in this image?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
            ],
        )
        for message in _tool_exchange("call_1"):
            session.add(message)
        session.add_message("developer", "Prefer metric units.", name="policy")
        assert store.load(session.session_id).messages == session.messages

    def test_large_content_round_trips(self, store: SessionStore) -> None:
        self.need(Capability.LARGE_VALUES)
        big = "ø" * 1_000_000
        session = store.create()
        session.add_message("user", big)
        assert store.load(session.session_id).messages[0]["content"] == big

    def test_metadata_values_round_trip(self, store: SessionStore) -> None:
        values = {
            "when": datetime(2026, 5, 1, 12, 30, tzinfo=UTC),
            "naive": datetime(2026, 5, 1, 12, 30, 15, 250),
            "day": date(2026, 5, 1),
            "count": 1000,
            "ratio": 0.25,
            "flag": False,
            "nothing": None,
            "nested": {"tags": ["a", "b"], "deep": {"at": datetime(2025, 1, 1, tzinfo=UTC)}},
        }
        session = store.create(values)
        assert store.load(session.session_id).get_all_metadata() == values
        session.set_metadata("later", datetime(2030, 1, 1, tzinfo=UTC))
        assert store.load(session.session_id).get_metadata("later") == datetime(
            2030, 1, 1, tzinfo=UTC
        )

    def test_items_session_stores_any_json_object(self, store: SessionStore) -> None:
        items: list[dict[str, Any]] = [
            {"type": "message", "role": "user", "content": "hi"},
            {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "c1", "output": "1.50"},
            {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": None},
        ]
        session = store.create(kind="items")
        store.append(session.session_id, *items)
        loaded = store.load(session.session_id)
        assert loaded.kind == "items"
        assert loaded.messages == items

    def test_chat_session_rejects_items(self, store: SessionStore) -> None:
        session = store.create()
        with pytest.raises(InvalidMessage):
            session.add({"type": "function_call", "name": "f"})
        assert len(store.load(session.session_id)) == 0

    # -- reads of what is absent ----------------------------------------------------------

    def test_missing_session(self, store: SessionStore) -> None:
        assert store.get("no-such-session") is None
        assert not store.exists("no-such-session")
        with pytest.raises(SessionNotFound):
            store.load("no-such-session")
        with pytest.raises(SessionNotFound):
            store.append("no-such-session", {"role": "user", "content": "x"})
        assert store.delete("no-such-session") is False

    @pytest.mark.parametrize(
        "bad", ["", "a b", "../etc/passwd", "x/y", "{tag}", "-x", "é", "a" * 129]
    )
    def test_bad_session_ids_rejected(self, store: SessionStore, bad: str) -> None:
        with pytest.raises(InvalidSessionId):
            store.load(bad)
        with pytest.raises(InvalidSessionId):
            store.create(session_id=bad)

    def test_create_with_existing_id_conflicts(self, store: SessionStore) -> None:
        session = store.create(session_id="fixed-id-1")
        with pytest.raises(ConflictError):
            store.create(session_id=session.session_id)

    # -- writes ---------------------------------------------------------------------------

    def test_append_versions_and_expected_version(self, store: SessionStore) -> None:
        session = store.create()
        v1 = store.append(session.session_id, {"role": "user", "content": "one"})
        v2 = store.append(session.session_id, {"role": "assistant", "content": "two"})
        assert v2 > v1 > 0
        with pytest.raises(ConflictError):
            store.append(session.session_id, {"role": "user", "content": "x"}, expected_version=v1)
        v3 = store.append(
            session.session_id,
            {"role": "user", "content": "three"},
            {"role": "assistant", "content": "four"},
            expected_version=v2,
        )
        assert v3 > v2
        loaded = store.load(session.session_id)
        assert [m["content"] for m in loaded.messages] == ["one", "two", "three", "four"]
        assert loaded.version == v3

    def test_append_with_the_same_idempotency_key_applies_once(self, store: SessionStore) -> None:
        writer: Any = store  # idempotency_key is not in every store's signature yet
        session = store.create()
        first = writer.append(
            session.session_id, {"role": "user", "content": "a"}, idempotency_key="k-1"
        )
        again = writer.append(
            session.session_id, {"role": "user", "content": "a"}, idempotency_key="k-1"
        )
        assert again == first
        other = writer.append(
            session.session_id, {"role": "user", "content": "b"}, idempotency_key="k-2"
        )
        assert other > first
        retried = writer.append(
            session.session_id, {"role": "user", "content": "a"}, idempotency_key="k-1"
        )
        assert retried == first
        loaded = store.load(session.session_id)
        assert [m["content"] for m in loaded.messages] == ["a", "b"]
        assert loaded.version == other
        second = store.create()
        elsewhere = writer.append(
            second.session_id, {"role": "user", "content": "a"}, idempotency_key="k-1"
        )
        assert len(store.load(second.session_id)) == 1
        assert elsewhere > 0

    def test_idempotency_key_of_metadata_updates(self, store: SessionStore) -> None:
        writer: Any = store
        session = store.create({"n": 0})
        first = writer.update_metadata(session.session_id, {"n": 1}, idempotency_key="m-1")
        store.update_metadata(session.session_id, {"n": 2})
        assert writer.update_metadata(session.session_id, {"n": 1}, idempotency_key="m-1") == first
        assert store.load(session.session_id).get_metadata("n") == 2

    def test_appends_without_a_key_are_each_applied(self, store: SessionStore) -> None:
        session = store.create()
        versions = [
            store.append(session.session_id, {"role": "user", "content": "same"}) for _ in range(3)
        ]
        assert versions == sorted(set(versions))
        assert len(store.load(session.session_id)) == 3

    def test_bound_session_writes_through(self, store: SessionStore) -> None:
        session = store.create()
        session.add_message("user", "hello")
        session.set_metadata("user_id", "u42")
        other = store.session(session.session_id)
        assert other.get_messages() == [{"role": "user", "content": "hello"}]
        assert other.get_metadata("user_id") == "u42"
        other.add_message("assistant", "hi")
        assert len(store.load(session.session_id)) == 2

    def test_session_get_or_create(self, store: SessionStore) -> None:
        with pytest.raises(SessionNotFound):
            store.session("made-on-demand")
        made = store.session("made-on-demand", create=True)
        made.add_message("user", "x")
        assert len(store.session("made-on-demand", create=True)) == 1

    def test_update_metadata_merges_and_unsets(self, store: SessionStore) -> None:
        session = store.create({"a": 1, "b": 2})
        store.update_metadata(session.session_id, {"c": 3}, unset=("a",))
        assert store.load(session.session_id).get_all_metadata() == {"b": 2, "c": 3}

    def test_save_upserts_and_detects_conflicts(self, store: SessionStore) -> None:
        session = Session(metadata={"user_id": "u-save"})
        session.add_message("user", "first")
        store.save(session)
        assert store.load(session.session_id).messages == session.messages
        mine = store.load(session.session_id)
        theirs = store.load(session.session_id)
        theirs.add_message("assistant", "theirs")
        store.save(theirs)
        mine.add_message("assistant", "mine")
        with pytest.raises(ConflictError):
            store.save(mine)
        assert [m["content"] for m in store.load(session.session_id).messages] == [
            "first",
            "theirs",
        ]

    def test_save_rewrites_history(self, store: SessionStore) -> None:
        session = store.create()
        for text in ("a", "b", "c"):
            session.add_message("user", text)
        loaded = store.load(session.session_id)
        loaded.messages[1]["content"] = "[REDACTED]"
        loaded.messages.pop()
        loaded.set_metadata("sanitized", True)
        store.save(loaded)
        again = store.load(session.session_id)
        assert [m["content"] for m in again.messages] == ["a", "[REDACTED]"]
        assert again.get_metadata("sanitized") is True

    def test_save_of_new_session_with_taken_id_conflicts(self, store: SessionStore) -> None:
        store.create(session_id="taken-id")
        with pytest.raises(ConflictError):
            store.save(Session("taken-id"))

    def test_delete(self, store: SessionStore) -> None:
        session = store.create()
        session.add_message("user", "bye")
        assert store.delete(session.session_id) is True
        assert not store.exists(session.session_id)
        assert store.delete(session.session_id) is False

    def test_concurrent_appends_lose_nothing(self, make_store: MakeStore) -> None:
        self.need(Capability.CONCURRENCY)
        first = make_store()
        session_id = first.create().session_id
        threads, per_thread = 8, 25
        errors: list[BaseException] = []

        def writer(worker: int) -> None:
            try:
                for n in range(per_thread):
                    first.append(session_id, {"role": "user", "content": f"{worker}:{n}"})
            except BaseException as exc:  # reported below
                errors.append(exc)

        pool = [threading.Thread(target=writer, args=(w,)) for w in range(threads)]
        for thread in pool:
            thread.start()
        for thread in pool:
            thread.join()
        assert errors == []
        contents = [m["content"] for m in first.load(session_id).messages]
        assert len(contents) == threads * per_thread
        assert len(set(contents)) == threads * per_thread
        for worker in range(threads):
            mine = [int(c.split(":")[1]) for c in contents if c.startswith(f"{worker}:")]
            assert mine == list(range(per_thread))

    def test_pop_and_clear(self, store: SessionStore) -> None:
        session = store.create({"keep": "me"})
        for text in ("a", "b", "c", "d"):
            session.add_message("user", text)
        assert store.pop(session.session_id) == [{"role": "user", "content": "d"}]
        assert [m["content"] for m in store.pop(session.session_id, 2)] == ["b", "c"]
        assert [m["content"] for m in store.load(session.session_id).messages] == ["a"]
        store.append(session.session_id, {"role": "user", "content": "e"})
        assert store.clear(session.session_id) == 2
        assert store.pop(session.session_id) == []
        emptied = store.load(session.session_id)
        assert emptied.messages == []
        assert emptied.get_metadata("keep") == "me"
        with pytest.raises(SessionNotFound):
            store.pop("no-such-session")

    def test_pop_keeps_what_checkpoints_need(self, store: SessionStore) -> None:
        self.need(Capability.CHECKPOINTS)
        session = store.create()
        for text in ("a", "b", "c"):
            session.add_message("user", text)
        number = store.checkpoint(session.session_id)
        store.pop(session.session_id, 2)
        store.append(session.session_id, {"role": "user", "content": "x"})
        store.restore(session.session_id, number)
        assert [m["content"] for m in store.load(session.session_id).messages] == ["a", "b", "c"]

    def test_concurrent_appends_from_separate_stores_lose_nothing(
        self, make_store: MakeStore
    ) -> None:
        """As from separate processes: each writer opens its own store on the same data."""
        self.need(Capability.CONCURRENCY)
        self.need(Capability.SHARED)
        stores = [make_store("shared") for _ in range(4)]
        session_id = stores[0].create().session_id
        errors: list[BaseException] = []

        def writer(worker: int) -> None:
            try:
                for n in range(15):
                    stores[worker].append(session_id, {"role": "user", "content": f"{worker}:{n}"})
            except BaseException as exc:  # reported below
                errors.append(exc)

        pool = [threading.Thread(target=writer, args=(w,)) for w in range(4)]
        for thread in pool:
            thread.start()
        for thread in pool:
            thread.join()
        assert errors == []
        contents = [m["content"] for m in stores[1].load(session_id).messages]
        assert sorted(contents) == sorted(f"{w}:{n}" for w in range(4) for n in range(15))
        for worker in range(4):
            mine = [int(c.split(":")[1]) for c in contents if c.startswith(f"{worker}:")]
            assert mine == list(range(15))

    # -- tails ----------------------------------------------------------------------------

    def test_load_last_reads_the_tail(self, store: SessionStore) -> None:
        session = store.create()
        for n in range(10):
            session.add_message("user", str(n))
        tail = store.load(session.session_id, last=3)
        assert [m["content"] for m in tail.messages] == ["7", "8", "9"]
        assert store.load(session.session_id, last=0).messages == []

    @pytest.mark.parametrize("kind", ["chat", "items"])
    def test_load_last_k_for_every_k(self, store: SessionStore, kind: str) -> None:
        """``load(last=k)`` against a plain list, for every k from 0 to the length + 3."""
        session = store.create(kind=kind)
        written: list[dict[str, Any]] = []
        for n in range(6):
            message = {"role": "user", "content": str(n)}
            store.append(session.session_id, message)
            written.append(message)
            for k in range(len(written) + 4):
                tail = store.load(session.session_id, last=k).messages
                expected = written[len(written) - k :] if k <= len(written) else written
                assert tail == (expected if k else []), f"last={k} of {len(written)}"

    def test_load_last_never_splits_a_tool_call(self, store: SessionStore) -> None:
        session = store.create()
        session.add_message("user", "weather?")
        for message in _tool_exchange("call_a"):
            session.add(message)
        session.add({"role": "tool", "tool_call_id": "call_a", "content": "second result"})
        tail = store.load(session.session_id, last=2)
        assert tail.messages[0]["role"] == "assistant"
        assert [m["role"] for m in tail.messages] == ["assistant", "tool", "tool"]

    # -- listing --------------------------------------------------------------------------

    def test_list_newest_first_and_by_user(self, store: SessionStore) -> None:
        made = []
        for n in range(5):
            s = store.create({"user_id": "alice" if n % 2 == 0 else "bob"})
            s.add_message("user", f"m{n}")
            made.append(s.session_id)
            time.sleep(0.01)
        listed = [s.session_id for s in store.list()]
        assert listed == list(reversed(made))
        alice = store.list(user_id="alice")
        assert [s.session_id for s in alice] == [made[4], made[2], made[0]]
        summary = alice.items[0]
        assert summary.message_count == 1
        assert summary.user_id == "alice"
        assert summary.updated_at >= summary.created_at

    def test_list_paginates(self, store: SessionStore) -> None:
        made = {store.create({"user_id": "pager"}).session_id for _ in range(7)}
        seen: list[str] = []
        cursor = None
        pages = 0
        while True:
            page = store.list(user_id="pager", limit=3, cursor=cursor)
            pages += 1
            seen += [s.session_id for s in page]
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        assert pages == 3
        assert sorted(seen) == sorted(made)

    def test_listing_follows_updates(self, store: SessionStore) -> None:
        old = store.create()
        time.sleep(0.01)
        new = store.create()
        time.sleep(0.01)
        old.add_message("user", "bump")
        assert [s.session_id for s in store.list(limit=2)] == [old.session_id, new.session_id]

    def test_namespaces_are_isolated(self, make_store: MakeStore) -> None:
        self.need(Capability.SHARED)
        a, b = make_store("left"), make_store("right")
        a.create(session_id="shared-id").add_message("user", "left")
        assert b.get("shared-id") is None
        b.create(session_id="shared-id").add_message("user", "right")
        assert a.load("shared-id").messages[0]["content"] == "left"
        assert [s.session_id for s in b.list()] == ["shared-id"]
        b.delete("shared-id")
        assert a.exists("shared-id")

    # -- TTL ------------------------------------------------------------------------------

    def test_expired_session_is_gone_for_every_read(self, store: SessionStore) -> None:
        self.need(Capability.TTL)
        ttl = self.short_ttl
        started = time.monotonic()
        doomed = store.create({"user_id": "ttl"}, ttl=ttl)
        expired_by = time.monotonic() + ttl + EXPIRY_SLACK
        keeper = store.create({"user_id": "ttl"})
        assert doomed.expires_at is not None
        alive = store.exists(doomed.session_id)
        if time.monotonic() - started < ttl:  # only then must it still be there
            assert alive
        sleep_until(expired_by)
        assert not store.exists(doomed.session_id)
        assert store.get(doomed.session_id) is None
        with pytest.raises(SessionNotFound):
            store.load(doomed.session_id)
        with pytest.raises(SessionNotFound):
            store.append(doomed.session_id, {"role": "user", "content": "late"})
        assert [s.session_id for s in store.list(user_id="ttl")] == [keeper.session_id]
        assert store.purge_expired() >= 1
        assert store.exists(keeper.session_id)

    def test_writes_refresh_expiry(self, store: SessionStore) -> None:
        """Two writes 0.6 TTL apart keep a session alive past its first expiry."""
        self.need(Capability.TTL)
        ttl = self.short_ttl * 3
        last_write = time.monotonic()
        session = store.create(ttl=ttl)
        for _ in range(2):
            sleep_until(last_write + ttl * 0.6)
            last_write = time.monotonic()
            session.add_message("user", "still here")
        assert len(store.load(session.session_id)) == 2

    def test_store_default_ttl(self, make_store: MakeStore) -> None:
        self.need(Capability.TTL)
        ttl = self.short_ttl
        store = make_store("ttl-default", ttl=ttl)
        session = store.create()
        expired_by = time.monotonic() + ttl + EXPIRY_SLACK
        assert session.expires_at is not None
        assert session.expires_at - session.updated_at == pytest.approx(
            timedelta(seconds=ttl), abs=timedelta(seconds=0.05)
        )
        sleep_until(expired_by)
        assert store.get(session.session_id) is None
        assert store.purge_expired() == 1

    # -- per-user memory ------------------------------------------------------------------

    def test_user_memory_round_trip(self, store: SessionStore) -> None:
        memory = store.memory("user@example.com")
        assert memory.all() == {}
        memory.set_preference("programming_language", "Python")
        memory.add_fact("User's name is Alex")
        memory.add_topic("Python programming")
        memory.add_topic("Python programming")
        memory.set("last_seen", datetime(2026, 1, 1, tzinfo=UTC))
        again = store.memory("user@example.com")
        assert again.preferences == {"programming_language": "Python"}
        assert again.facts == ["User's name is Alex"]
        assert again.topics == ["Python programming"]
        assert again.get("last_seen") == datetime(2026, 1, 1, tzinfo=UTC)
        again.delete("last_seen")
        assert "last_seen" not in memory.all()
        assert store.memory("someone-else").all() == {}

    def test_user_memory_is_not_listed(self, store: SessionStore) -> None:
        for n in range(4):
            store.memory(f"listed-{n}").set("x", n)
        made = {store.create({"user_id": "listed-0"}).session_id for _ in range(3)}
        seen: list[str] = []
        cursor = None
        while True:
            page = store.list(limit=2, cursor=cursor)
            seen += [s.session_id for s in page]
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        assert sorted(seen) == sorted(made)
        assert {s.session_id for s in store.list(user_id="listed-0")} == made
        memories = store.list(kind="memory")
        assert sorted(s.user_id for s in memories) == [f"listed-{n}" for n in range(4)]

    def test_user_memory_concurrent_updates_lose_nothing(self, store: SessionStore) -> None:
        self.need(Capability.CONCURRENCY)
        memory = store.memory("busy-user")
        errors: list[BaseException] = []

        def writer(worker: int) -> None:
            try:
                for n in range(5):
                    store.memory("busy-user").add_fact(f"{worker}:{n}")
            except BaseException as exc:  # reported below
                errors.append(exc)

        pool = [threading.Thread(target=writer, args=(w,)) for w in range(8)]
        for thread in pool:
            thread.start()
        for thread in pool:
            thread.join()
        assert errors == []
        assert sorted(memory.facts) == sorted(f"{w}:{n}" for w in range(8) for n in range(5))

    def test_user_memory_expires(self, store: SessionStore) -> None:
        self.need(Capability.TTL)
        ttl = self.short_ttl
        memory = store.memory("short-memory", ttl=ttl)
        started = time.monotonic()
        memory.set("mood", "curious")
        expired_by = time.monotonic() + ttl + EXPIRY_SLACK
        mood = memory.get("mood")
        if time.monotonic() - started < ttl:  # only then must it still be there
            assert mood == "curious"
        sleep_until(expired_by)
        assert memory.all() == {}

    def test_forget_user_erases_everything(self, store: SessionStore) -> None:
        for _ in range(3):
            session = store.create({"user_id": "erase-me"})
            session.add_message("user", "personal")
            store.checkpoint(
                session.session_id
            ) if Capability.CHECKPOINTS not in self.lacks else None
        keeper = store.create({"user_id": "keep-me"})
        store.memory("erase-me").add_fact("lives in Oslo")
        assert store.forget_user("erase-me") == 4
        assert store.list(user_id="erase-me").items == []
        assert store.memory("erase-me").all() == {}
        assert store.exists(keeper.session_id)

    # -- checkpoints ----------------------------------------------------------------------

    def test_checkpoints_restore_and_keep_current_state(self, store: SessionStore) -> None:
        self.need(Capability.CHECKPOINTS)
        session = store.create({"step": 0})
        session.add_message("user", "a")
        first = store.checkpoint(session.session_id, label="after a")
        session.add_message("user", "b")
        session.set_metadata("step", 2)
        second = store.checkpoint(session.session_id)
        session.add_message("user", "c")
        assert second > first
        infos = store.checkpoints(session.session_id)
        assert [(c.version, c.label, c.message_count) for c in infos] == [
            (first, "after a", 1),
            (second, None, 2),
        ]
        store.restore(session.session_id, first)
        restored = store.load(session.session_id)
        assert [m["content"] for m in restored.messages] == ["a"]
        assert restored.get_metadata("step") == 0
        saved = store.checkpoints(session.session_id)[-1]
        assert saved.message_count == 3
        store.restore(session.session_id, saved.version)
        assert [m["content"] for m in store.load(session.session_id).messages] == ["a", "b", "c"]

    def test_checkpoints_survive_history_rewrites(self, store: SessionStore) -> None:
        self.need(Capability.CHECKPOINTS)
        session = store.create()
        for text in ("a", "b", "c"):
            session.add_message("user", text)
        number = store.checkpoint(session.session_id)
        loaded = store.load(session.session_id)
        loaded.messages = [{"role": "user", "content": "rewritten"}]
        store.save(loaded)
        store.append(session.session_id, {"role": "user", "content": "more"})
        store.restore(session.session_id, number)
        assert [m["content"] for m in store.load(session.session_id).messages] == ["a", "b", "c"]

    def test_fork(self, store: SessionStore) -> None:
        self.need(Capability.CHECKPOINTS)
        session = store.create({"user_id": "forker"})
        session.add_message("user", "a")
        number = store.checkpoint(session.session_id)
        session.add_message("user", "b")
        at_checkpoint = store.fork(session.session_id, number)
        current = store.fork(session.session_id)
        assert at_checkpoint.session_id != session.session_id
        assert [m["content"] for m in store.load(at_checkpoint.session_id).messages] == ["a"]
        assert [m["content"] for m in store.load(current.session_id).messages] == ["a", "b"]
        current.add_message("user", "only in fork")
        assert len(store.load(session.session_id)) == 2
        assert store.load(current.session_id).get_metadata("user_id") == "forker"

    def test_unknown_checkpoint(self, store: SessionStore) -> None:
        self.need(Capability.CHECKPOINTS)
        session = store.create()
        with pytest.raises(CheckpointNotFound):
            store.restore(session.session_id, 99)
        with pytest.raises(SessionNotFound):
            store.checkpoints("no-such-session")

    def test_delete_removes_checkpoints(self, store: SessionStore) -> None:
        self.need(Capability.CHECKPOINTS)
        session = store.create(session_id="cp-delete")
        session.add_message("user", "a")
        store.checkpoint(session.session_id)
        store.delete(session.session_id)
        store.create(session_id="cp-delete")
        assert store.checkpoints("cp-delete") == []
