"""Code run in spawned processes by the concurrency tests (importable by module name)."""

from __future__ import annotations

import ailib


def append_many(url: str, namespace: str, session_id: str, worker: int, count: int) -> None:
    """Open a store of its own by URL and append ``count`` numbered messages."""
    with ailib.open_store(url, namespace=namespace) as store:
        for n in range(count):
            store.append(session_id, {"role": "user", "content": f"{worker}:{n}"})
