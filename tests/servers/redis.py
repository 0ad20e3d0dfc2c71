"""Redis servers for the tests: the shared one at 127.0.0.1:6379, and private ones this suite
starts itself (a standalone server whose statistics no one else touches, and a 3-master
cluster), each on free loopback ports, stopped at the end of the run."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import cast

import pytest
import redis

import ailib
from ailib.testing.servers import in_ci, require_server

HOST = "127.0.0.1"
SHARED_PORT = 6379
START_SHARED = (
    "start one with: redis-server --daemonize yes --bind 127.0.0.1 --port 6379 "
    "--save '' --appendonly no"
)
#: Databases of the shared server that these tests use (cleaned up by each test).
CONFORMANCE_DB = 11
URL_SHARED = f"redis://{HOST}:{SHARED_PORT}/{CONFORMANCE_DB}"


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
    return True


def free_ports(count: int) -> list[int]:
    """Ports that are free, and whose cluster bus port (+10000) is free too."""
    found: list[int] = []
    while len(found) < count:
        with socket.socket() as sock:
            sock.bind((HOST, 0))
            port = int(sock.getsockname()[1])
        if port < 55000 and port not in found and _bindable(port + 10000):
            found.append(port)
    return found


def _need_binaries() -> None:
    missing = [b for b in ("redis-server", "redis-cli") if shutil.which(b) is None]
    if missing:
        message = f"{' and '.join(missing)} not found; install Redis 7 (apt-get install redis)"
        if in_ci():
            pytest.fail(f"{message} (CI=true: real-server tests may not skip)")
        pytest.skip(message)


def _wait(check: object, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(redis.RedisError, OSError):
            if callable(check) and check():
                return
        time.sleep(0.1)
    raise RuntimeError(f"timed out waiting for {what}")


@contextlib.contextmanager
def _servers(directory: Path, ports: list[int], *extra: str) -> Iterator[None]:
    started: list[subprocess.Popen[bytes]] = []
    try:
        for port in ports:
            started.append(
                subprocess.Popen(
                    [
                        "redis-server",
                        "--bind",
                        HOST,
                        "--port",
                        str(port),
                        "--dir",
                        str(directory),
                        "--save",
                        "",
                        "--appendonly",
                        "no",
                        "--daemonize",
                        "no",
                        *(a.replace("{port}", str(port)) for a in extra),
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        for port in ports:
            _wait(lambda p=port: redis.Redis(HOST, p).ping(), f"redis-server on port {port}")
        yield
    finally:
        for process in started:
            process.terminate()
        for process in started:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture(scope="session")
def _sweep_shared() -> Iterator[None]:
    """At the end of the run, delete what the conformance namespaces (``c<hex>-<name>``) still
    hold: ``empty()`` deletes what ``list()`` shows, and per-user memory sessions are unlisted."""
    yield
    client = redis.Redis(HOST, SHARED_PORT, db=CONFORMANCE_DB)
    with contextlib.suppress(redis.ConnectionError):
        for key in client.scan_iter("ailib:{c*}:idx"):
            namespace = cast(bytes, key).decode()[len("ailib:{") : -len("}:idx")]
            store = ailib.open_store(URL_SHARED, namespace=namespace)
            for member in client.zrange(key, 0, -1):
                store.delete(cast(bytes, member).decode())
            store.purge_expired()
            store.close()
    client.close()


@pytest.fixture
def shared_redis(_sweep_shared: None) -> str:
    """The URL of the shared server's test database (skips/fails when it is down)."""
    require_server("Redis", HOST, SHARED_PORT, START_SHARED)
    return URL_SHARED


@pytest.fixture(scope="session")
def private_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """A standalone redis-server of this test run: (URL, unix socket path)."""
    _need_binaries()
    directory = tmp_path_factory.mktemp("redis-private")
    socket_path = directory / "redis.sock"
    (port,) = free_ports(1)
    with _servers(directory, [port], "--unixsocket", str(socket_path)):
        yield f"redis://{HOST}:{port}/0", socket_path


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A 3-master Redis Cluster on loopback; yields its ``redis+cluster://`` URL."""
    _need_binaries()
    directory = tmp_path_factory.mktemp("redis-cluster")
    ports = free_ports(3)
    nodes = [f"{HOST}:{port}" for port in ports]
    cluster_args = (
        "--cluster-enabled",
        "yes",
        "--cluster-config-file",
        str(directory / "nodes-{port}.conf"),
        "--cluster-node-timeout",
        "5000",
    )
    with _servers(directory, ports, *cluster_args):
        create = ["redis-cli", "--cluster", "create", *nodes, "--cluster-replicas", "0"]
        subprocess.run(
            [*create, "--cluster-yes"],
            check=True,
            capture_output=True,
            timeout=60,
        )

        def ready() -> bool:
            for port in ports:
                info = redis.Redis(HOST, port, decode_responses=True).execute_command(
                    "CLUSTER INFO"
                )
                state = info.get("cluster_state") if isinstance(info, dict) else None
                if state is None:
                    state = "ok" if "cluster_state:ok" in str(info) else "?"
                if state != "ok":
                    return False
            return True

        _wait(ready, "cluster_state:ok on every node")
        yield "redis+cluster://" + ",".join(nodes)


class RestartableRedis:
    """A redis-server of one test that the test may kill (SIGKILL) and start again on the
    same port and data directory. It writes an append-only file fsynced before every reply
    (``appendfsync always``), so what it acknowledged survives the kill."""

    def __init__(self, directory: Path) -> None:
        _need_binaries()
        self.directory = directory
        (self.port,) = free_ports(1)
        self.url = f"redis://{HOST}:{self.port}/0"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start the server and wait until it answers (its data loaded)."""
        assert self._process is None, "already running"
        self._process = subprocess.Popen(
            [
                "redis-server",
                "--bind",
                HOST,
                "--port",
                str(self.port),
                "--dir",
                str(self.directory),
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--daemonize",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        _wait(lambda: redis.Redis(HOST, self.port).ping(), f"redis-server on port {self.port}")

    def kill(self) -> None:
        """SIGKILL the server: no shutdown, replies in flight are lost."""
        assert self._process is not None, "not running"
        self._process.kill()
        self._process.wait()
        self._process = None

    def client(self) -> redis.Redis:
        return redis.Redis(HOST, self.port)

    def stop(self) -> None:
        if self._process is not None:
            self.kill()


@pytest.fixture
def restartable_redis(tmp_path: Path) -> Iterator[RestartableRedis]:
    """A running :class:`RestartableRedis` of this test, killed at its end."""
    server = RestartableRedis(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()
