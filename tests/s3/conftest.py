"""Request counting for the S3 store tests (the moto server is in tests/servers/s3.py)."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest


class RequestLog:
    """Records every request a client sends. ``round_trips`` counts the periods during
    which at least one request was in flight: requests sent in parallel share one, requests
    that wait for an answer start another. ``delay`` holds each request back a little so that
    requests sent together really overlap, making that count independent of timing."""

    def __init__(self, client: Any, delay: float = 0.0) -> None:
        self.delay = delay
        self.operations: Counter[str] = Counter()
        self.round_trips = 0
        self._in_flight = 0
        self._lock = threading.Lock()
        self.enabled = False
        client.meta.events.register("before-send.s3.*", self._before)
        client.meta.events.register("response-received.s3.*", self._after)

    def _before(self, event_name: str, **_: Any) -> None:
        if not self.enabled:
            return
        name = event_name.rsplit(".", 1)[-1]
        with self._lock:
            if self._in_flight == 0:
                self.round_trips += 1
            self._in_flight += 1
            self.operations[name] += 1
        if self.delay:
            time.sleep(self.delay)

    def _after(self, **_: Any) -> None:
        if not self.enabled:
            return
        with self._lock:
            self._in_flight = max(0, self._in_flight - 1)

    @property
    def total(self) -> int:
        return sum(self.operations.values())

    def __enter__(self) -> RequestLog:
        self.operations.clear()
        self.round_trips = 0
        self.enabled = True
        return self

    def __exit__(self, *exc: object) -> None:
        self.enabled = False


@pytest.fixture
def request_log() -> Callable[..., RequestLog]:
    """Attach a :class:`RequestLog` to a store's client: ``request_log(store.client)``."""
    return RequestLog
