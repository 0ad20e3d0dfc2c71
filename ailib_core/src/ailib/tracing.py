"""OpenTelemetry spans and a duration histogram for every store operation.

:func:`instrument` wraps the public methods of one store (sync or async) so that each call is
a client span following the OpenTelemetry database semantic conventions (``db.system.name``,
``db.operation.name``, ``db.namespace``, ``server.address``/``server.port``, ``error.type``)
plus ailib's own attributes (``ailib.session.id``, ``ailib.message.count``,
``ailib.message.bytes``, ``ailib.session.version``, ``ailib.retries``), and each duration is
recorded in the ``db.client.operation.duration`` histogram (seconds).

The ``ailib.tracing`` plugin calls it when ``open_store``/``open_async_store`` builds a store,
if the program has set an OpenTelemetry tracer provider (or the URL says ``trace=on``). This
module imports nothing from OpenTelemetry until a store is instrumented, so a program that
does not use OpenTelemetry neither imports it nor pays for it.
"""

from __future__ import annotations

import functools
import inspect
import json
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from contextvars import ContextVar, Token
from typing import TYPE_CHECKING, Any, Final

from ailib.errors import ConfigurationError
from ailib.url import StoreURL, make_url

if TYPE_CHECKING:
    from opentelemetry.context import Context
    from opentelemetry.metrics import Histogram, MeterProvider
    from opentelemetry.trace import Span, Tracer, TracerProvider

__all__ = (
    "DURATION_METRIC",
    "OPERATIONS",
    "instrument",
    "is_instrumented",
    "note_retry",
    "tracer_provider_set",
)

#: The public store methods that become spans (those a store has; async stores have no
#: ``forget_user``).
OPERATIONS: Final = (
    "create",
    "session",
    "load",
    "get",
    "exists",
    "save",
    "append",
    "update_metadata",
    "pop",
    "clear",
    "delete",
    "list",
    "purge_expired",
    "checkpoint",
    "checkpoints",
    "restore",
    "fork",
    "export_session",
    "import_session",
    "forget_user",
)
DURATION_METRIC: Final = "db.client.operation.duration"
#: The bucket boundaries the semantic conventions recommend for this histogram.
DURATION_BUCKETS: Final = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0)
INSTRUMENTATION_NAME: Final = "ailib"

#: ``db.system.name`` by URL scheme (the part before any ``+driver``).
SYSTEMS: Final[Mapping[str, str]] = {
    "memory": "memory",
    "sqlite": "sqlite",
    "postgresql": "postgresql",
    "postgres": "postgresql",
    "mysql": "mysql",
    "mariadb": "mariadb",
    "redis": "redis",
    "rediss": "redis",
    "unix": "redis",
    "fakeredis": "redis",
    "s3": "s3",
}
#: The operations whose first argument is the session id.
_BY_ID: Final = frozenset(OPERATIONS) - {
    "create",
    "save",
    "list",
    "purge_expired",
    "import_session",
    "forget_user",
}
#: Systems with no server to name (in process, or a local file).
_LOCAL: Final = frozenset({"memory", "sqlite"})
_MARK: Final = "_ailib_tracing"


class _Call:
    """One traced call: its span, the context tokens to restore, and what only the backend
    knows (retries)."""

    __slots__ = ("context", "current", "retries", "span", "start")

    current: Token[_Call | None]

    def __init__(self, span: Span, context: Token[Context]) -> None:
        self.span = span
        self.context = context
        self.start = 0.0
        self.retries = 0


_current: ContextVar[_Call | None] = ContextVar("ailib_traced_call", default=None)


def note_retry() -> None:
    """Count one retry (a lost reply resent, a conflict re-read) on the traced store call in
    progress; free when none is. Backends call it where they retry."""
    call = _current.get()
    if call is not None:
        call.retries += 1


def tracer_provider_set() -> bool:
    """Whether the program has imported OpenTelemetry and set a global tracer provider.

    Never imports OpenTelemetry: a program that has not imported it cannot have set one.
    """
    trace = sys.modules.get("opentelemetry.trace")
    if trace is None:
        return False
    return not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)


def is_instrumented(store: object) -> bool:
    return bool(getattr(store, "__dict__", {}).get(_MARK))


def instrument(
    store: Any,
    *,
    session_ids: bool = True,
    tracer_provider: TracerProvider | None = None,
    meter_provider: MeterProvider | None = None,
) -> Any:
    """Trace every operation of ``store`` (sync or async) and return it.

    ``session_ids=False`` leaves ``ailib.session.id`` out of the spans (and exception
    messages, which name sessions, out of them too). The providers default to OpenTelemetry's
    global ones. Instrumenting a store twice changes nothing.
    """
    if is_instrumented(store):
        return store
    try:
        from opentelemetry import metrics, trace
    except ImportError as exc:
        raise ConfigurationError(
            'tracing needs OpenTelemetry: pip install "ailib-core[otel]" (opentelemetry-api), '
            "then set a tracer provider (opentelemetry-sdk)"
        ) from exc
    from ailib import __version__

    tracer = trace.get_tracer(INSTRUMENTATION_NAME, __version__, tracer_provider)
    meter = metrics.get_meter(INSTRUMENTATION_NAME, __version__, meter_provider)
    histogram = meter.create_histogram(
        DURATION_METRIC,
        unit="s",
        description="Duration of ailib store operations.",
        explicit_bucket_boundaries_advisory=list(DURATION_BUCKETS),
    )
    tracing = _StoreTracing(store, tracer, histogram, session_ids)
    for name in OPERATIONS:
        method = getattr(store, name, None)
        if method is None:
            continue
        if inspect.iscoroutinefunction(method):
            setattr(store, name, tracing.wrap_async(name, method))
        else:
            setattr(store, name, tracing.wrap(name, method))
    setattr(store, _MARK, True)
    return store


def store_attributes(store: Any) -> dict[str, str | int]:
    """The attributes every span and measurement of ``store`` carries."""
    url = _parsed_url(store)
    base_scheme = url.base_scheme if url else type(store).__name__.lower()
    system = SYSTEMS.get(base_scheme, base_scheme)
    attributes: dict[str, str | int] = {
        "db.system.name": system,
        "db.namespace": str(store.namespace),
    }
    if url is None or system in _LOCAL:
        return attributes
    host, port = url.host, url.port
    if system == "s3":
        attributes["aws.s3.bucket"] = host or ""
        endpoint = url.query.get("endpoint_url")
        host, port = _endpoint(endpoint) if endpoint else (None, None)
    if host:
        attributes["server.address"] = host
        if port is not None:
            attributes["server.port"] = port
    return attributes


def _parsed_url(store: Any) -> StoreURL | None:
    # ``store.url`` has the password masked; it is parsed only for scheme, host and port.
    try:
        return make_url(store.url)
    except Exception:
        return None


def _endpoint(endpoint: str) -> tuple[str | None, int | None]:
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(endpoint)
        return parts.hostname, parts.port
    except ValueError:
        return None, None


class _StoreTracing:
    """The tracer, histogram and precomputed attributes of one instrumented store."""

    def __init__(self, store: Any, tracer: Tracer, histogram: Histogram, session_ids: bool):
        from opentelemetry.trace import SpanKind, Status, StatusCode, set_span_in_context

        self.tracer = tracer
        self.histogram = histogram
        self.session_ids = session_ids
        self.client = SpanKind.CLIENT
        self.error_status = Status
        self.error_code = StatusCode.ERROR
        self.in_context = set_span_in_context
        from opentelemetry.context import attach, detach

        self.attach, self.detach = attach, detach
        base = store_attributes(store)
        target = base["db.namespace"]
        self.names = {op: f"{op} {target}" for op in OPERATIONS}
        self.attributes = {op: {**base, "db.operation.name": op} for op in OPERATIONS}

    def wrap(self, op: str, method: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(method)
        def traced(*args: Any, **kwargs: Any) -> Any:
            call = self.begin(op, args, kwargs)
            try:
                result = method(*args, **kwargs)
            except BaseException as exc:
                self.failed(op, exc, call)
                raise
            else:
                self.succeeded(op, args, kwargs, result, call)
                return result
            finally:
                self.end(call)

        return traced

    def wrap_async(self, op: str, method: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(method)
        async def traced(*args: Any, **kwargs: Any) -> Any:
            call = self.begin(op, args, kwargs)
            try:
                result = await method(*args, **kwargs)
            except BaseException as exc:
                self.failed(op, exc, call)
                raise
            else:
                self.succeeded(op, args, kwargs, result, call)
                return result
            finally:
                self.end(call)

        return traced

    def begin(self, op: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> _Call:
        """Start the span of one call and make it current (for the calls it makes)."""
        attributes = self.attributes[op]
        if op in _BY_ID and self.session_ids:
            session_id = args[0] if args else kwargs.get("session_id")
            if isinstance(session_id, str):
                attributes = {**attributes, "ailib.session.id": session_id}
        span = self.tracer.start_span(self.names[op], kind=self.client, attributes=attributes)
        call = _Call(span, self.attach(self.in_context(span)))
        call.current = _current.set(call)
        call.start = time.perf_counter()
        return call

    def end(self, call: _Call) -> None:
        _current.reset(call.current)
        self.detach(call.context)
        call.span.end()

    def succeeded(
        self, op: str, args: tuple[Any, ...], kwargs: dict[str, Any], result: Any, call: _Call
    ) -> None:
        self.histogram.record(time.perf_counter() - call.start, self.attributes[op])
        span = call.span
        if not span.is_recording():
            return
        try:
            details = self.details(op, args, kwargs, result)
        except Exception:  # a span detail must never fail the operation it describes
            return
        if call.retries:
            details["ailib.retries"] = call.retries
        span.set_attributes(details)

    def failed(self, op: str, exc: BaseException, call: _Call) -> None:
        error_type = _error_type(exc)
        self.histogram.record(
            time.perf_counter() - call.start, {**self.attributes[op], "error.type": error_type}
        )
        span = call.span
        if not span.is_recording():
            return
        span.set_attribute("error.type", error_type)
        if call.retries:
            span.set_attribute("ailib.retries", call.retries)
        if self.session_ids:
            span.record_exception(exc)
            span.set_status(self.error_status(self.error_code, f"{error_type}: {exc}"))
        else:
            # Error messages name the session, so they stay out when session ids must.
            span.set_status(self.error_status(self.error_code, error_type))

    def details(
        self, op: str, args: tuple[Any, ...], kwargs: dict[str, Any], result: Any
    ) -> dict[str, Any]:
        """The attributes only the call's arguments and result tell."""
        found: dict[str, Any] = {}
        session_id: Any = None
        messages: Sequence[Any] | None = None
        if op == "create":
            session_id = result.session_id
            messages = kwargs.get("messages", ())
        elif op == "save":
            session_id = args[0].session_id if args else kwargs["session"].session_id
            messages = (args[0] if args else kwargs["session"]).messages
        elif op == "append":
            messages = args[1:]
        elif op in ("load", "get", "session"):
            if result is not None:
                messages = result.messages
        elif op == "fork":
            messages = result.messages
            found["ailib.fork.session.id"] = result.session_id
        elif op == "export_session":
            messages = result.get("messages", ())
        elif op == "import_session":
            session_id = result.session_id
            messages = result.messages
        elif op == "pop":
            messages = result
        elif op == "clear":
            found["ailib.message.count"] = result
        elif op == "list":
            found["db.response.returned_rows"] = len(result.items)
        elif op in ("purge_expired", "forget_user"):
            found["ailib.session.count"] = result
        elif op == "checkpoints":
            found["db.response.returned_rows"] = len(result)
        if op in ("get", "exists", "delete"):
            found["ailib.session.found"] = bool(result)
        if op in ("save", "append", "update_metadata", "restore") and isinstance(result, int):
            found["ailib.session.version"] = result
        if op == "checkpoint" and isinstance(result, int):
            found["ailib.checkpoint.number"] = result
        if messages is not None:
            found["ailib.message.count"] = len(messages)
            found["ailib.message.bytes"] = _size(messages)
        if self.session_ids and isinstance(session_id, str):
            found["ailib.session.id"] = session_id
        if not self.session_ids:
            found.pop("ailib.fork.session.id", None)
        return found


def _size(messages: Sequence[Any]) -> int:
    """The UTF-8 size of the messages as compact JSON (what most backends store)."""
    if not messages:
        return 0
    text = json.dumps(list(messages), ensure_ascii=False, separators=(",", ":"), default=str)
    return len(text.encode())


def _error_type(exc: BaseException) -> str:
    kind = type(exc)
    return (
        kind.__qualname__
        if kind.__module__ == "builtins"
        else f"{kind.__module__}.{kind.__qualname__}"
    )
