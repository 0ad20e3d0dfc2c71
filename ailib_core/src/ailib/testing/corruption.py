"""Conformance cases on damaged stored data: the damaged session is reported, every other
session keeps working.

A test class that can damage what its backend stored implements
:meth:`CorruptionCases.corrupt_session` with the backend's raw driver; one that cannot
declares ``lacks = {Capability.CORRUPTION}``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import ClassVar

import pytest

from ailib.errors import CorruptSessionError
from ailib.store import SessionStore
from ailib.testing.capabilities import Capability, Damage

__all__ = ("CorruptionCases",)


class CorruptionCases:
    """Loads of a damaged session raise CorruptSessionError naming it; nothing else breaks."""

    lacks: ClassVar[frozenset[Capability]] = frozenset()

    def need(self, capability: Capability) -> None:
        if capability in self.lacks:
            pytest.skip(f"the store declares it lacks {capability.value!r}")

    def corrupt_session(self, store: SessionStore, session_id: str, damage: Damage) -> None:
        """Damage what the backend stored for ``session_id`` behind the store's back (see
        :class:`Damage`), with the backend's own driver. ``store`` is the store under test
        (a :class:`~ailib.testing.blocking.BlockingStore` in async mode)."""
        raise NotImplementedError(
            "implement corrupt_session for this store, or declare lacks = {Capability.CORRUPTION}"
        )

    @pytest.mark.parametrize("damage", list(Damage))
    def test_corrupt_session_is_reported_and_isolated(
        self, store: SessionStore, damage: Damage, caplog: pytest.LogCaptureFixture
    ) -> None:
        self.need(Capability.CORRUPTION)
        victim = store.create({"user_id": "corrupt-owner", "topic": "victim"})
        for n in range(4):
            victim.add_message("user", f"victim {n}")
        others: dict[str, list[str]] = {}
        for n, user in enumerate(("corrupt-owner", "corrupt-owner", "someone-else")):
            other = store.create({"user_id": user})
            for m in range(n + 1):
                other.add_message("user", f"other {n}.{m}")
            others[other.session_id] = [f"other {n}.{m}" for m in range(n + 1)]
        self.corrupt_session(store, victim.session_id, damage)

        reads: dict[str, Callable[[], object]] = {
            "load": lambda: store.load(victim.session_id),
            "get": lambda: store.get(victim.session_id),
            "load(last=3)": lambda: store.load(victim.session_id, last=3),
            "export_session": lambda: store.export_session(victim.session_id),
        }
        for what, read in reads.items():
            with pytest.raises(CorruptSessionError) as info:
                read()
            assert victim.session_id in str(info.value), f"{what}: {info.value}"

        with caplog.at_level(logging.WARNING, logger="ailib"):
            listed = _all_listed(store, None)
            by_user = _all_listed(store, "corrupt-owner")
        assert set(others) <= listed <= set(others) | {victim.session_id}
        owned = {i for i in others if others[i][0] != "other 2.0"}
        assert owned <= by_user <= owned | {victim.session_id}
        if victim.session_id not in listed:
            assert victim.session_id in caplog.text, "a session left out must be logged"
        for session_id, contents in others.items():
            assert [m["content"] for m in store.load(session_id).messages] == contents
            assert store.load(session_id, last=1).messages[0]["content"] == contents[-1]
        assert store.delete(victim.session_id) is True, "a damaged session can be deleted"
        assert not store.exists(victim.session_id)


def _all_listed(store: SessionStore, user_id: str | None) -> set[str]:
    """Every session id the listing shows, over all pages of two."""
    seen: set[str] = set()
    cursor = None
    while True:
        page = store.list(user_id, limit=2, cursor=cursor)
        seen |= {s.session_id for s in page}
        if page.next_cursor is None:
            return seen
        cursor = page.next_cursor
