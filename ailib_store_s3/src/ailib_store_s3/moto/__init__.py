"""moto's S3 with S3's guarantee for conditional writes: check and write in one step.

moto (5.x) checks a PutObject's ``If-Match`` / ``If-None-Match`` (and a DeleteObject's
``If-Match``) and then writes in a second step, so two concurrent conditional writes to one
key can both pass the check and the later silently overwrites the earlier: a lost update that
S3 itself never allows, and the one thing the S3 store's concurrency rests on.
:func:`make_conditional_writes_atomic` runs those requests one at a time; requests without a
condition run as before. ``s3+mock://`` applies it to moto's in-process S3;
``python -m ailib_store_s3.moto`` runs moto's server with it, and :func:`serve` runs that
server in a process of its own for tests and benchmarks.
"""

from __future__ import annotations

import functools
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

__all__ = ("make_conditional_writes_atomic", "serve")

F = TypeVar("F", bound=Callable[..., Any])

_conditional = threading.Lock()
_patched = threading.Lock()
_MARK = "_ailib_conditional_writes_atomic"


def _one_at_a_time_when_conditional(handler: F) -> F:
    @functools.wraps(handler)
    def handle(self: Any, *args: Any, **kwargs: Any) -> Any:
        if self.headers.get("If-Match") or self.headers.get("If-None-Match"):
            with _conditional:
                return handler(self, *args, **kwargs)
        return handler(self, *args, **kwargs)

    return handle  # type: ignore[return-value]


def make_conditional_writes_atomic() -> None:
    """Patch moto's S3 request handler (once per process; later calls do nothing)."""
    from moto.s3.responses import S3Response

    with _patched:
        if getattr(S3Response, _MARK, False):
            return
        for name in ("put_object", "delete_object"):
            setattr(S3Response, name, _one_at_a_time_when_conditional(getattr(S3Response, name)))
        setattr(S3Response, _MARK, True)


def _free_port(host: str) -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port


def _stop(server: subprocess.Popen[bytes]) -> None:
    server.terminate()
    try:
        server.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


@contextmanager
def serve(host: str = "127.0.0.1", start_timeout: float = 30.0) -> Iterator[str]:
    """Run ``python -m ailib_store_s3.moto`` on a free port of ``host`` until the block ends;
    yields its endpoint URL. The server inherits this process's environment (give it dummy
    AWS credentials). A port taken between choosing and binding it costs another try."""
    for _ in range(5):
        port = _free_port(host)
        server = subprocess.Popen(
            [sys.executable, "-m", "ailib_store_s3.moto", "-H", host, "-p", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + start_timeout
        while server.poll() is None and time.monotonic() < deadline:
            try:
                socket.create_connection((host, port), timeout=1).close()
            except OSError:
                time.sleep(0.05)
                continue
            try:
                yield f"http://{host}:{port}"
            finally:
                _stop(server)
            return
        _stop(server)
    raise RuntimeError(f"moto's S3 server did not start on {host}")
