"""S3 test fixtures: moto's S3 server on 127.0.0.1, started once per test session, with
dummy credentials; nothing here ever talks to AWS."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest

DUMMY_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _start_moto_server() -> tuple[subprocess.Popen[bytes], str]:
    """moto's S3 server in a process of its own on 127.0.0.1 (another free port if one is
    taken meanwhile)."""
    for _ in range(5):
        port = _free_port()
        server = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while server.poll() is None and time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
            except OSError:
                time.sleep(0.05)
                continue
            return server, f"http://127.0.0.1:{port}"
        server.kill()
        server.wait()
    raise RuntimeError("moto's S3 server did not start")


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """The URL of a moto S3 server this test session runs on 127.0.0.1.

    In a process of its own: in this one, moto's garbage would make the test process's
    pauses (gen-2 garbage collections of 50-100 ms) part of what the async stores'
    event-loop heartbeat measures."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in DUMMY_ENV.items():
            patch.setenv(name, value)
        server, endpoint = _start_moto_server()
        try:
            yield endpoint
        finally:
            server.terminate()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


@pytest.fixture
def moto_bucket(moto_endpoint: str) -> str:
    """A bucket on the moto server, created when missing."""
    name = "ailib-test-bucket"
    client = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1")
    if name not in {b["Name"] for b in client.list_buckets().get("Buckets", [])}:
        client.create_bucket(Bucket=name)
    return name


@pytest.fixture
def moto_url(moto_endpoint: str, moto_bucket: str) -> str:
    """An ``s3://`` URL on the moto server, its prefix unique to the test."""
    return f"s3://{moto_bucket}/t{uuid.uuid4().hex[:8]}?endpoint_url={moto_endpoint}"


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
