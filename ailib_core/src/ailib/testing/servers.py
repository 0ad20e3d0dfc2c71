"""Real servers in tests: skip with instructions on a laptop, fail under CI."""

from __future__ import annotations

import os
import socket

import pytest

__all__ = ("in_ci", "port_open", "require_server")


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def port_open(host: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def require_server(name: str, host: str, port: int, how: str) -> None:
    """Skip the test (fail it when ``CI=true``) unless ``host:port`` accepts connections.

    ``how`` tells a developer how to provide the server.
    """
    if port_open(host, port):
        return
    message = f"{name} is not reachable at {host}:{port}; {how}"
    if in_ci():
        pytest.fail(f"{message} (CI=true: real-server tests may not skip)")
    pytest.skip(message)
