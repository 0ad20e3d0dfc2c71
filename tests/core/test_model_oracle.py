"""The model-based conformance case catches a store that breaks a promise: each store here
is the memory store with one bug put in through the backend operations, and the case must
fail on it (it passes on the real stores: see every conformance suite)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import pytest

import ailib
from ailib.records import Change, SessionRecord
from ailib.stores.memory import MemoryStore
from ailib.testing.model_rules import expected_tail, run_model


class AppendKeepsTwo(MemoryStore):
    """An append of three messages stores two and still reports success."""

    def _apply(self, session_id: str, change: Change, now: float) -> int:
        return super()._apply(session_id, replace(change, append=change.append[:2]), now)


class MetadataKeepsVersion(MemoryStore):
    """``update_metadata`` returns the version the session had before."""

    def _apply(self, session_id: str, change: Change, now: float) -> int:
        version = super()._apply(session_id, change, now)
        return version if change.append else version - 1


class PopNewestFirst(MemoryStore):
    def _pop(self, session_id: str, count: int, now: float) -> list[dict[str, object]]:
        return list(reversed(super()._pop(session_id, count, now)))


class PagesSkipOne(MemoryStore):
    """Every page after the first loses the session it should open with."""

    def _list(
        self, user_id: str | None, limit: int, after: tuple[float, str] | None, now: float
    ) -> Sequence[SessionRecord]:
        found = super()._list(user_id, limit, after, now)
        return found[1:] if after else found


class PurgeTooEager(MemoryStore):
    """``purge_expired`` deletes sessions that still have two hours to live."""

    def _purge(self, now: float) -> int:
        return super()._purge(now + 7200)


@pytest.mark.parametrize(
    "broken",
    [
        AppendKeepsTwo,
        MetadataKeepsVersion,
        PopNewestFirst,
        PagesSkipOne,
        PurgeTooEager,
    ],
)
def test_the_model_catches_a_broken_store(broken: type[MemoryStore]) -> None:
    scheme = f"broken-{uuid.uuid4().hex[:8]}"

    def make_store(namespace: str = "a", **options: object) -> ailib.BaseStore:
        return ailib.open_store(f"{scheme}://", namespace=namespace, **options)

    with ailib.register_store(scheme, broken), pytest.raises(AssertionError):
        run_model(make_store, checkpoints=True, ttl=True, examples=30, steps=30, shrink=False)


def test_expected_tail_widens_only_chat_tails_over_tool_results() -> None:
    call: dict[str, Any] = {"role": "assistant", "tool_calls": [{"id": "c1"}]}
    result: dict[str, Any] = {"role": "tool", "tool_call_id": "c1", "content": "r"}
    user: dict[str, Any] = {"role": "user", "content": "u"}
    messages = [user, call, result, result]
    assert expected_tail("chat", messages, 1) == [call, result, result]
    assert expected_tail("items", messages, 1) == [result]
    assert expected_tail("chat", messages, 0) == []
    assert expected_tail("chat", messages, 7) == messages
    assert expected_tail("chat", messages, None) == messages
    assert expected_tail("chat", [result, user], 2) == [result, user]
