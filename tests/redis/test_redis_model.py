"""Random histories of writes, checkpoints, restores and rewrites give the same sessions in the
Redis store as in the reference store (``memory://``, built on DocumentStore)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ailib
from ailib.base import BaseStore

Op = tuple[str, int, int]

ops = st.lists(
    st.tuples(
        st.sampled_from(["append", "checkpoint", "restore", "rewrite", "pop", "metadata"]),
        st.integers(0, 6),
        st.integers(0, 6),
    ),
    max_size=25,
)


@pytest.fixture(params=["fakeredis://model", "private", "cluster"])
def redis_store(request: pytest.FixtureRequest) -> Iterator[BaseStore]:
    url = request.param
    if url == "private":
        url, _ = request.getfixturevalue("private_redis")
    elif url == "cluster":
        url = request.getfixturevalue("redis_cluster")
    store = ailib.open_store(url, namespace=f"model-{uuid.uuid4().hex[:8]}")
    yield store
    for summary in store.list(limit=1000):
        store.delete(summary.session_id)
    store.close()


def _state(store: BaseStore, session_id: str) -> dict[str, Any]:
    session = store.load(session_id)
    checkpoints = store.checkpoints(session_id)
    return {
        "messages": session.messages,
        "metadata": session.metadata,
        "version": session.version,
        "checkpoints": [(c.number, c.label, c.message_count) for c in checkpoints],
        "states": [store._checkpoint_state(session_id, c.number, 0.0) for c in checkpoints],
    }


def _run(store: BaseStore, session_id: str, op: Op, counter: list[int]) -> None:
    name, a, b = op
    if name == "append":
        counter[0] += 1
        new = [{"role": "user", "content": f"m{counter[0]}.{n}"} for n in range(a + 1)]
        store.append(session_id, *new)
    elif name == "checkpoint":
        store.checkpoint(session_id, label=f"cp{a}" if b % 2 else None)
    elif name == "restore":
        numbers = [c.number for c in store.checkpoints(session_id)]
        if numbers:
            store.restore(session_id, numbers[a % len(numbers)])
    elif name == "rewrite":
        session = store.load(session_id)
        keep = a % (len(session.messages) + 1)
        session.messages = session.messages[:keep] + [
            {"role": "assistant", "content": f"r{counter[0]}.{n}"} for n in range(b)
        ]
        store.save(session)
    elif name == "pop":
        store.pop(session_id, a + 1)
    else:
        store.update_metadata(session_id, {f"k{a}": b}, unset=(f"k{b}",))


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(history=ops)
def test_same_sessions_as_the_reference_store(redis_store: BaseStore, history: list[Op]) -> None:
    reference = ailib.open_store("memory://")
    session_id = f"s-{uuid.uuid4().hex[:12]}"
    for store in (reference, redis_store):
        store.create({"user_id": "model"}, session_id=session_id)
    counters: dict[int, list[int]] = {id(reference): [0], id(redis_store): [0]}
    for op in history:
        for store in (reference, redis_store):
            _run(store, session_id, op, counters[id(store)])
        assert _state(redis_store, session_id) == _state(reference, session_id), op
    redis_store.delete(session_id)
