"""From a store URL to a redis-py client, and from redis-py errors to ailib's.

Schemes: ``redis://``, ``rediss://`` (TLS), ``unix://`` (socket path), ``redis+cluster://`` and
``rediss+cluster://`` (seed nodes), ``fakeredis://[name][/db]`` (a fakeredis server of this
process, shared by every store opened with the same name).
"""

from __future__ import annotations

import contextlib
import importlib.util
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final, cast

import redis
import redis.asyncio
import redis.asyncio.cluster
import redis.asyncio.retry
import redis.cluster
import redis.retry
from redis.backoff import ExponentialBackoff

from ailib.errors import ConfigurationError, StoreUnavailable
from ailib.spi import StoreURL, parse_duration

__all__ = (
    "CLUSTER_CLIENTS",
    "OPTIONS",
    "AsyncClient",
    "Client",
    "ConnectionSettings",
    "connect",
    "connect_async",
    "lost_reply",
    "outcome_unknown",
    "translate_errors",
    "unavailable",
    "where",
)

Client = redis.Redis | redis.cluster.RedisCluster
AsyncClient = redis.asyncio.Redis | redis.asyncio.cluster.RedisCluster
#: The cluster clients: their stores keep the listing index in a second call.
CLUSTER_CLIENTS: Final = (redis.cluster.RedisCluster, redis.asyncio.cluster.RedisCluster)

#: URL options the Redis store reads (beyond ailib's ``namespace`` and ``ttl``).
OPTIONS: Final = frozenset(
    {
        "db",
        "socket_timeout",
        "connect_timeout",
        "max_connections",
        "retries",
        "resend_for",
        "ssl_cert_reqs",
        "ssl_ca_certs",
    }
)

_DEFAULT_PORT: Final = 6379
_CERT_REQS: Final = ("none", "optional", "required")
_fake_servers: dict[str, Any] = {}
_fake_lock = threading.Lock()


@dataclass(frozen=True)
class ConnectionSettings:
    """The connection options of a URL, checked."""

    db: int = 0
    socket_timeout: float | None = 5.0
    connect_timeout: float | None = 5.0
    max_connections: int | None = None
    retries: int = 3
    #: Seconds a write whose reply was lost is resent (same op id) to learn its outcome.
    resend_for: float = 10.0
    ssl_cert_reqs: str = "required"
    ssl_ca_certs: str | None = None

    @classmethod
    def parse(cls, url: StoreURL, options: Mapping[str, Any]) -> ConnectionSettings:
        where = url.render()
        db_text = options.get("db")
        path_db = url.path.strip("/") if url.base_scheme != "unix" else ""
        if path_db and db_text is not None:
            raise ConfigurationError(f"{where} gives the database twice (path and ?db=); use one")
        db = _integer("db", db_text if db_text is not None else (path_db or 0), where, minimum=0)
        if url.scheme.endswith("+cluster") and db != 0:
            raise ConfigurationError(
                f"{where} selects database {db}, but Redis Cluster has only database 0; "
                "use a namespace (?namespace=...) to separate data instead"
            )
        reqs = str(options.get("ssl_cert_reqs", "required")).lower()
        if reqs not in _CERT_REQS:
            raise ConfigurationError(
                f"invalid ssl_cert_reqs {reqs!r} in {where}; use one of {', '.join(_CERT_REQS)}"
            )
        pool = options.get("max_connections")
        return cls(
            db=db,
            socket_timeout=_timeout("socket_timeout", options, where, cls.socket_timeout),
            connect_timeout=_timeout("connect_timeout", options, where, cls.connect_timeout),
            max_connections=None if pool is None else _integer("max_connections", pool, where),
            retries=_integer("retries", options.get("retries", cls.retries), where, minimum=0),
            resend_for=_timeout("resend_for", options, where, cls.resend_for) or 0.0,
            ssl_cert_reqs=reqs,
            ssl_ca_certs=options.get("ssl_ca_certs"),
        )


def _integer(name: str, value: Any, where: str, minimum: int = 1) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        number = minimum - 1
    if number < minimum or isinstance(value, bool):
        raise ConfigurationError(
            f"invalid {name} {value!r} in {where}; give a whole number >= {minimum}"
        )
    return number


def _timeout(
    name: str, options: Mapping[str, Any], where: str, default: float | None
) -> float | None:
    if name not in options:
        return default
    try:
        return parse_duration(options[name], name)
    except ConfigurationError as exc:
        raise ConfigurationError(f"{exc} (in {where})") from None


@dataclass(frozen=True)
class _Driver:
    """The classes of one I/O style: redis-py's blocking ones or its asyncio ones."""

    redis: type[Any]
    cluster: type[Any]
    node: type[Any]
    retry: type[Any]
    #: The fakeredis client class, by name (fakeredis is imported only for fakeredis://).
    fake: str


_SYNC: Final = _Driver(
    redis.Redis,
    redis.cluster.RedisCluster,
    redis.cluster.ClusterNode,
    redis.retry.Retry,
    "FakeRedis",
)
_ASYNC: Final = _Driver(
    redis.asyncio.Redis,
    redis.asyncio.cluster.RedisCluster,
    redis.asyncio.cluster.ClusterNode,
    redis.asyncio.retry.Retry,
    "FakeAsyncRedis",
)


def connect(url: StoreURL, settings: ConnectionSettings) -> Client:
    """A client for ``url``; it connects lazily, on the first command (a cluster client
    reads the slot map as it is built, so an unreachable cluster fails here)."""
    return cast(Client, _connect(url, settings, _SYNC))


def connect_async(url: StoreURL, settings: ConnectionSettings) -> AsyncClient:
    """The ``redis.asyncio`` client for ``url``, with the same settings; building it does no
    I/O (a cluster client reads its slot map on the first command)."""
    return cast(AsyncClient, _connect(url, settings, _ASYNC))


def _connect(url: StoreURL, settings: ConnectionSettings, driver: _Driver) -> Any:
    retry = driver.retry(ExponentialBackoff(cap=1.0, base=0.05), settings.retries)
    common: dict[str, Any] = {
        "username": url.username,
        "password": url.password,
        "socket_timeout": settings.socket_timeout,
        "socket_connect_timeout": settings.connect_timeout,
        "retry": retry,
        # RESP2: redis-py's parser reads an LRANGE of 1,000 messages a quarter faster than RESP3,
        # and the store uses nothing RESP3 adds (the load RESP3 row of bench/redis_bench.py).
        "protocol": 2,
    }
    if url.scheme.startswith("rediss"):
        common.update(ssl=True, ssl_cert_reqs=settings.ssl_cert_reqs)
        if settings.ssl_ca_certs:
            common["ssl_ca_certs"] = settings.ssl_ca_certs
    if url.scheme == "fakeredis":
        return _fake(url, settings, driver)
    if settings.max_connections is not None:
        common["max_connections"] = settings.max_connections
    if url.scheme.endswith("+cluster"):
        if not url.hosts:
            raise ConfigurationError(
                f"{url.render()} names no node; give seeds as redis+cluster://host:port,host:port"
            )
        nodes = [driver.node(h, p or _DEFAULT_PORT) for h, p in url.hosts]
        with translate_errors(url):  # the sync RedisCluster reads the slot map as it is built
            return driver.cluster(startup_nodes=nodes, **common)
    if url.scheme == "unix":
        if not url.path:
            raise ConfigurationError(
                f"{url.render()} gives no socket path; write unix:///path/to/redis.sock?db=0"
            )
        common.pop("socket_connect_timeout")
        return driver.redis(unix_socket_path=url.path, db=settings.db, **common)
    if len(url.hosts) > 1:
        raise ConfigurationError(
            f"{url.render()} names several hosts; for Redis Cluster write "
            f"redis+cluster://{url.render().split('://', 1)[1]}"
        )
    return driver.redis(
        host=url.host or "localhost", port=url.port or _DEFAULT_PORT, db=settings.db, **common
    )


def _fake(url: StoreURL, settings: ConnectionSettings, driver: _Driver) -> Any:
    """A fakeredis client on the process's server of that name: sync and async clients of
    one name share it."""
    missing = [name for name in ("fakeredis", "lupa") if importlib.util.find_spec(name) is None]
    if missing:
        raise ConfigurationError(
            f"{url.render()} needs fakeredis with Lua support ({' and '.join(missing)} not "
            "installed); pip install 'ailib-store-redis[fakeredis]'"
        )
    import fakeredis

    name = url.host or ""
    with _fake_lock:
        server = _fake_servers.setdefault(name, fakeredis.FakeServer())
    return getattr(fakeredis, driver.fake)(server=server, db=settings.db)


def where(url: StoreURL) -> str:
    """The server(s) of ``url`` as people write them: ``host:port``, a socket path, or a name."""
    if url.scheme == "unix":
        return url.path
    if url.scheme == "fakeredis":
        return f"fakeredis server {url.host or '(default)'!r}"
    hosts = ",".join(f"{h}:{p or _DEFAULT_PORT}" for h, p in url.hosts)
    return hosts or f"localhost:{_DEFAULT_PORT}"


def unavailable(url: StoreURL, exc: BaseException) -> StoreUnavailable:
    """A StoreUnavailable naming the server, the cause and what to check; no password."""
    detail = f"{type(exc).__name__}: {exc}".rstrip(". ")
    if url.password:
        detail = detail.replace(url.password, "***")
    errors = redis.exceptions
    # redis-py < 6 has no MaxConnectionsError (its pools raise a plain ConnectionError).
    exhausted = getattr(errors, "MaxConnectionsError", ())
    if isinstance(exc, exhausted):
        what = "has no free connection in this client's pool"
        hint = "raise max_connections or leave it unset (as many tasks or threads as calls)"
    elif isinstance(exc, errors.AuthenticationError | errors.AuthorizationError):
        what, hint = "refused the login", "check the user name and password in the URL"
    elif isinstance(exc, errors.ConnectionError | errors.TimeoutError):
        what, hint = "is unreachable", "check that the server runs and the host and port"
    else:
        what, hint = "failed the operation", "see the server's message"
    return StoreUnavailable(f"Redis at {where(url)} {what} ({url.render()}): {detail}; {hint}")


def lost_reply(exc: BaseException) -> bool:
    """Whether ``exc`` may have cut a command off after it was sent: the connection dropped,
    timed out, or the server is (re)starting; not a full pool, where nothing was sent."""
    errors = redis.exceptions
    if isinstance(exc, getattr(errors, "MaxConnectionsError", ())):
        return False
    # BusyLoadingError (a server loading its data after a restart) is a ConnectionError.
    return isinstance(exc, errors.ConnectionError | errors.TimeoutError | errors.ClusterDownError)


def outcome_unknown(url: StoreURL, exc: BaseException, waited: float) -> StoreUnavailable:
    """The error of a write whose reply was lost and whose outcome could not be learned."""
    cause = unavailable(url, exc)
    return StoreUnavailable(
        f"{cause}. The reply of a write was lost and the server could not be asked again for "
        f"{waited:.1f}s (resend_for), so the write may or may not have been stored: resend it "
        "with the same idempotency_key, which applies it at most once"
    )


@contextlib.contextmanager
def translate_errors(url: StoreURL) -> Iterator[None]:
    """Raise every redis-py error as StoreUnavailable naming the server."""
    try:
        yield
    except (redis.exceptions.RedisError, redis.exceptions.RedisClusterException) as exc:
        raise unavailable(url, exc) from None
