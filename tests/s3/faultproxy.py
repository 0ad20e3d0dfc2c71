"""A small fault-injecting HTTP proxy for the S3 tests, on 127.0.0.1 in front of moto's server.

Each request is read whole, then a :class:`Faults` policy picks what happens to it:

* ``ok``: forwarded, the answer relayed;
* ``503``: answered ``503 Service Unavailable`` (an S3 XML error), never forwarded;
* ``drop_before``: the connection is closed before the request is forwarded;
* ``drop_after``: forwarded (S3 applied it), then the connection is closed without an answer:
  the reply is lost;
* ``delay``: held back ``delay`` seconds, then forwarded (a slow or hung endpoint when the
  delay is longer than the client's timeout).

The counts of what was done are kept in ``Faults.injected``.
"""

from __future__ import annotations

import http.client
import random
import socket
import struct
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

__all__ = ("Faults", "Request", "proxy")

MODES = ("ok", "503", "drop_before", "drop_after", "delay")

_UNAVAILABLE = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>ServiceUnavailable</Code>'
    b"<Message>Please reduce your request rate.</Message></Error>"
)


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: dict[str, str]


@dataclass
class Faults:
    """What the proxy does to each request: ``mode`` with probability ``rate`` for requests
    ``applies`` accepts (every request by default), else ``ok``. Thread-safe to change."""

    mode: str = "ok"
    rate: float = 1.0
    delay: float = 0.0
    applies: Callable[[Request], bool] = lambda _: True
    injected: Counter[str] = field(default_factory=Counter)
    forwarded: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _random: random.Random = field(default_factory=lambda: random.Random(12))

    def set(
        self,
        mode: str,
        rate: float = 1.0,
        delay: float = 0.0,
        applies: Callable[[Request], bool] | None = None,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown fault mode {mode!r}")
        with self._lock:
            self.mode, self.rate, self.delay = mode, rate, delay
            self.applies = applies or (lambda _: True)

    def off(self) -> None:
        self.set("ok")

    def pick(self, request: Request) -> tuple[str, float]:
        with self._lock:
            mode = self.mode
            if mode != "ok" and self.applies(request) and self._random.random() < self.rate:
                self.injected[mode] += 1
                return mode, self.delay
            return "ok", 0.0

    @property
    def total(self) -> int:
        with self._lock:
            return sum(self.injected.values())


def manifest_put(request: Request) -> bool:
    """Only the conditional manifest writes (what commits a change)."""
    return request.method == "PUT" and request.path.split("?")[0].endswith("/manifest")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""

    def _abort(self) -> None:
        """Reset the connection: the client sees it dropped, with no answer."""
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True
        self.connection.close()

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {k: v for k, v in self.headers.items()}
        request = Request(self.command, self.path, headers)
        mode, delay = self.server.faults.pick(request)
        if mode == "drop_before":
            self._abort()
            return
        if mode == "503":
            self.send_response(503)
            self.send_header("Content-Type", "application/xml")
            self.send_header("Content-Length", str(len(_UNAVAILABLE)))
            self.end_headers()
            self.wfile.write(_UNAVAILABLE)
            return
        if mode == "delay":
            self.server.stopping.wait(delay)
        status, reason, reply_headers, reply = self.server.forward(request, body)
        with self.server.faults._lock:
            self.server.faults.forwarded += 1
        if mode == "drop_after":
            self._abort()
            return
        self.send_response(status, reason)
        for name, value in reply_headers:
            if name.lower() not in {"transfer-encoding", "connection", "content-length"}:
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(reply)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        """A client that gave up on a delayed reply closed its end: nothing to report."""

    def __init__(self, upstream: str, faults: Faults) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        target = urlsplit(upstream)
        self.upstream = (target.hostname or "127.0.0.1", target.port or 80)
        self.faults = faults
        self.stopping = threading.Event()
        self._local = threading.local()

    def forward(
        self, request: Request, body: bytes
    ) -> tuple[int, str, list[tuple[str, str]], bytes]:
        for attempt in range(2):  # a kept-alive upstream connection may have gone stale
            connection: http.client.HTTPConnection | None = getattr(self._local, "conn", None)
            if connection is None:
                connection = http.client.HTTPConnection(*self.upstream, timeout=60)
                self._local.conn = connection
            try:
                connection.request(request.method, request.path, body, request.headers)
                answer = connection.getresponse()
                return answer.status, answer.reason, answer.getheaders(), answer.read()
            except (OSError, http.client.HTTPException):
                connection.close()
                self._local.conn = None
                if attempt:
                    raise
        raise AssertionError("unreachable")


@contextmanager
def proxy(upstream: str, faults: Faults | None = None) -> Iterator[tuple[str, Faults]]:
    """Run a proxy to ``upstream`` (``http://host:port``) until the block ends; yields its
    URL and its :class:`Faults`."""
    faults = faults or Faults()
    server = _Server(upstream, faults)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", faults
    finally:
        server.stopping.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
        time.sleep(0)
