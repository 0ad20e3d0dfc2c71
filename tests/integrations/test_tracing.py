"""OpenTelemetry: every store operation is a client span following the database semantic
conventions, with a duration histogram; on memory, SQLite and Redis, sync and async."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path
from typing import Any

import pytest
import redis
import sqlalchemy as sa
from opentelemetry.trace import SpanKind, StatusCode

import ailib
from ailib import ConfigurationError, ConflictError, SessionNotFound
from ailib.stores.memory import MemoryStore
from ailib.tracing import is_instrumented, note_retry
from tests.integrations.conftest import Telemetry, backend_url

SYSTEMS = {"memory": "memory", "sqlite": "sqlite", "redis": "redis"}
#: What the scenario below calls, in order (nested calls included: fork loads and creates,
#: session() gets).
SCENARIO = [
    "create",
    "append",
    "update_metadata",
    "load",
    "get",
    "exists",
    "checkpoint",
    "append",
    "checkpoints",
    "restore",
    "fork",
    "load",
    "create",
    "pop",
    "clear",
    "export_session",
    "delete",
    "import_session",
    "session",
    "get",
    "list",
    "purge_expired",
    "delete",
]
MESSAGES = [{"role": "user", "content": "héllo"}, {"role": "assistant", "content": "hi"}]


def compact_size(messages: list[dict[str, Any]]) -> int:
    return len(json.dumps(messages, ensure_ascii=False, separators=(",", ":")).encode())


def scenario(store: Any) -> str:
    chat = store.create({"user_id": "u1"}, session_id="s-trace")
    store.append(chat.session_id, *MESSAGES)
    store.update_metadata(chat.session_id, {"topic": "x"})
    store.load(chat.session_id)
    store.get(chat.session_id)
    store.exists(chat.session_id)
    store.checkpoint(chat.session_id, label="one")
    store.append(chat.session_id, {"role": "user", "content": "more"})
    store.checkpoints(chat.session_id)
    store.restore(chat.session_id, 1)
    store.fork(chat.session_id)
    store.pop(chat.session_id)
    store.clear(chat.session_id)
    exported = store.export_session(chat.session_id)
    store.delete(chat.session_id)
    store.import_session(exported)
    store.session(chat.session_id)
    store.list()
    store.purge_expired()
    store.delete(chat.session_id)
    return str(chat.session_id)


async def async_scenario(store: Any) -> str:
    chat = await store.create({"user_id": "u1"}, session_id="s-trace")
    await store.append(chat.session_id, *MESSAGES)
    await store.update_metadata(chat.session_id, {"topic": "x"})
    await store.load(chat.session_id)
    await store.get(chat.session_id)
    await store.exists(chat.session_id)
    await store.checkpoint(chat.session_id, label="one")
    await store.append(chat.session_id, {"role": "user", "content": "more"})
    await store.checkpoints(chat.session_id)
    await store.restore(chat.session_id, 1)
    await store.fork(chat.session_id)
    await store.pop(chat.session_id)
    await store.clear(chat.session_id)
    exported = await store.export_session(chat.session_id)
    await store.delete(chat.session_id)
    await store.import_session(exported)
    await store.session(chat.session_id)
    await store.list()
    await store.purge_expired()
    await store.delete(chat.session_id)
    return str(chat.session_id)


@pytest.fixture(params=sorted(SYSTEMS))
def traced_backend(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str]:
    return request.param, backend_url(request, request.param, tmp_path)


def check_scenario_spans(telemetry: Telemetry, system: str, url: str, session_id: str) -> None:
    spans = telemetry.spans()
    assert telemetry.operations() == SCENARIO
    namespace = url.rsplit("namespace=", 1)[1]
    (fork_id,) = [
        (s.attributes or {}).get("ailib.fork.session.id") for s in spans if s.name[:5] == "fork "
    ]
    by_op: dict[str, list[Any]] = {}
    for span in spans:
        attributes = dict(span.attributes or {})
        op = attributes["db.operation.name"]
        by_op.setdefault(str(op), []).append(attributes)
        assert span.name == f"{op} {namespace}"
        assert span.kind is SpanKind.CLIENT
        assert span.status.status_code is StatusCode.UNSET
        assert attributes["db.system.name"] == system
        assert attributes["db.namespace"] == namespace
        assert "error.type" not in attributes
        if system == "redis":
            assert attributes["server.address"] == "127.0.0.1"
            assert attributes["server.port"] == 6379
        else:
            assert "server.address" not in attributes
        if op not in ("list", "purge_expired"):
            # The create a fork makes is the copy's.
            assert attributes["ailib.session.id"] in (session_id, fork_id), op
    append = by_op["append"][0]
    assert append["ailib.message.count"] == 2
    assert append["ailib.message.bytes"] == compact_size(MESSAGES)
    assert append["ailib.session.version"] == 2
    assert by_op["create"][0]["ailib.message.count"] == 0
    assert by_op["create"][0]["ailib.message.bytes"] == 0
    assert by_op["load"][0]["ailib.message.count"] == 2
    assert by_op["pop"][0]["ailib.message.count"] == 1
    assert by_op["clear"][0]["ailib.message.count"] == 1
    assert by_op["exists"][0]["ailib.session.found"] is True
    assert by_op["delete"][0]["ailib.session.found"] is True
    assert by_op["delete"][1]["ailib.session.found"] is True
    assert by_op["checkpoint"][0]["ailib.checkpoint.number"] == 1
    assert by_op["checkpoints"][0]["db.response.returned_rows"] == 1
    assert by_op["list"][0]["db.response.returned_rows"] == 2  # and the fork
    fork = by_op["fork"][0]
    assert fork["ailib.fork.session.id"] != session_id
    # The load and create a fork makes are its children.
    (fork_span,) = [s for s in spans if s.name.startswith("fork ")]
    children = [s for s in spans if s.parent and s.parent.span_id == fork_span.context.span_id]
    assert [s.name.split()[0] for s in children] == ["load", "create"]
    # One histogram series per operation, counting every call, with no session id in it.
    points = telemetry.durations()
    counts = {str(p.attributes["db.operation.name"]): p.count for p in points if p.attributes}
    assert counts["append"] == 2
    assert counts["delete"] == 2
    assert set(counts) == set(SCENARIO)
    for point in points:
        assert point.attributes is not None
        assert "ailib.session.id" not in point.attributes
        assert point.attributes["db.system.name"] == system
        assert point.sum >= 0


def test_every_operation_is_a_span_sync(
    traced_backend: tuple[str, str], telemetry: Telemetry
) -> None:
    name, url = traced_backend
    with ailib.open_store(
        url, tracer_provider=telemetry.tracer_provider, meter_provider=telemetry.meter_provider
    ) as store:
        assert is_instrumented(store)
        session_id = scenario(store)
    check_scenario_spans(telemetry, SYSTEMS[name], url, session_id)


def test_every_operation_is_a_span_async(
    traced_backend: tuple[str, str], telemetry: Telemetry
) -> None:
    name, url = traced_backend

    async def main() -> str:
        store = ailib.open_async_store(
            url,
            tracer_provider=telemetry.tracer_provider,
            meter_provider=telemetry.meter_provider,
        )
        async with store:
            assert is_instrumented(store)
            return await async_scenario(store)

    session_id = asyncio.run(main())
    check_scenario_spans(telemetry, SYSTEMS[name], url, session_id)


def test_bound_session_writes_are_spans(telemetry: Telemetry) -> None:
    store = ailib.open_store("memory://", tracer_provider=telemetry.tracer_provider)
    chat = store.create()
    chat.add_message("user", "hello")
    chat.set_metadata("k", "v")
    assert telemetry.operations() == ["create", "append", "update_metadata"]


def error_spans(telemetry: Telemetry) -> list[tuple[str, Any]]:
    return [
        (str((s.attributes or {})["db.operation.name"]), s)
        for s in telemetry.spans()
        if s.status.status_code is StatusCode.ERROR
    ]


@pytest.mark.parametrize("backend", sorted(SYSTEMS))
def test_errors_have_error_status_and_type(
    request: pytest.FixtureRequest, backend: str, tmp_path: Path, telemetry: Telemetry
) -> None:
    url = backend_url(request, backend, tmp_path)
    with ailib.open_store(
        url, tracer_provider=telemetry.tracer_provider, meter_provider=telemetry.meter_provider
    ) as store:
        with pytest.raises(SessionNotFound):
            store.load("missing-one")
        chat = store.create(session_id="s-conflict")
        with pytest.raises(ConflictError):
            store.append(chat.session_id, {"role": "user", "content": "x"}, expected_version=7)
    (load, conflict) = error_spans(telemetry)
    assert load[0] == "load"
    attributes = dict(load[1].attributes)
    assert attributes["error.type"] == "ailib.errors.SessionNotFound"
    assert attributes["ailib.session.id"] == "missing-one"
    assert "missing-one" in (load[1].status.description or "")
    assert [e.name for e in load[1].events] == ["exception"]
    assert conflict[0] == "append"
    assert dict(conflict[1].attributes)["error.type"] == "ailib.errors.ConflictError"
    failed = [
        p.attributes
        for p in telemetry.durations()
        if p.attributes and p.attributes.get("error.type") == "ailib.errors.SessionNotFound"
    ]
    assert failed
    assert failed[0]["db.operation.name"] == "load"


def test_async_errors_have_error_status_and_type(tmp_path: Path, telemetry: Telemetry) -> None:
    async def main() -> None:
        async with ailib.open_async_store(
            f"sqlite:///{tmp_path / 'a.db'}", tracer_provider=telemetry.tracer_provider
        ) as store:
            with pytest.raises(SessionNotFound):
                await store.checkpoints("nope")

    asyncio.run(main())
    ((op, span),) = error_spans(telemetry)
    assert op == "checkpoints"
    assert dict(span.attributes)["error.type"] == "ailib.errors.SessionNotFound"


@pytest.mark.parametrize("spelling", ["url", "keyword"])
def test_session_ids_can_be_hidden(spelling: str, telemetry: Telemetry) -> None:
    url = "memory://?trace_session_ids=false" if spelling == "url" else "memory://"
    extra = {} if spelling == "url" else {"trace_session_ids": False}
    with ailib.open_store(url, tracer_provider=telemetry.tracer_provider, **extra) as store:
        chat = store.create(session_id="secret-session")
        store.append(chat.session_id, {"role": "user", "content": "x"})
        store.fork(chat.session_id)
        with pytest.raises(SessionNotFound):
            store.load("secret-missing")
    spans = telemetry.spans()
    assert [s.name.split()[0] for s in spans] == [
        "create",
        "append",
        "fork",
        "load",
        "create",
        "load",
    ]
    for span in spans:
        shown = repr(dict(span.attributes or {})) + repr(span.events) + repr(span.status)
        assert "secret" not in shown
        assert not any(k.endswith("session.id") for k in span.attributes or {})
    assert dict(spans[-1].attributes or {})["error.type"] == "ailib.errors.SessionNotFound"


def test_server_address_and_port_never_the_password(telemetry: Telemetry) -> None:
    from tests.servers.sql import postgres_url

    base = postgres_url()  # trust auth: the server ignores the password
    url = base.replace("postgres@", "postgres:pw-never-shown@") + "?namespace=tracepw"
    with ailib.open_store(url, tracer_provider=telemetry.tracer_provider) as store:
        store.exists("x")
    (span,) = telemetry.spans()
    attributes = dict(span.attributes or {})
    assert attributes["db.system.name"] == "postgresql"
    assert attributes["server.address"] == "127.0.0.1"
    assert attributes["server.port"] == 5432
    assert "pw-never-shown" not in repr(attributes) + span.name


def test_s3_names_its_endpoint_and_bucket(moto_url: str, telemetry: Telemetry) -> None:
    with ailib.open_store(moto_url, tracer_provider=telemetry.tracer_provider) as store:
        store.exists("x")
    (span,) = telemetry.spans()
    attributes = dict(span.attributes or {})
    endpoint = moto_url.split("endpoint_url=", 1)[1]
    assert attributes["db.system.name"] == "s3"
    assert attributes["aws.s3.bucket"] == moto_url.split("/")[2]
    assert f"{attributes['server.address']}:{attributes['server.port']}" in endpoint


def test_trace_off_wraps_nothing(telemetry: Telemetry) -> None:
    with ailib.open_store(
        "memory://?trace=off", tracer_provider=telemetry.tracer_provider
    ) as store:
        assert not is_instrumented(store)
        store.create()
    assert telemetry.spans() == []


def test_option_mistakes_are_clear_errors(telemetry: Telemetry) -> None:
    with pytest.raises(ConfigurationError, match=r"'trace'.*auto"):
        ailib.open_store("memory://?trace=sometimes")
    with pytest.raises(ConfigurationError, match="trace_session_ids"):
        ailib.open_store("memory://?trace_session_ids=maybe")
    with pytest.raises(ConfigurationError, match="keyword arguments"):
        ailib.open_store("memory://?tracer_provider=x")
    with pytest.raises(ConfigurationError, match="did you mean 'trace_session_ids'"):
        ailib.open_store("memory://?trace_sesion_ids=false")


class RetryingStore(MemoryStore):
    """A memory store whose writes each had to be retried once, as a backend reports it.
    It names no async twin, so its async form runs it in worker threads."""

    async_twin = None

    def _apply(self, session_id: str, change: Any, now: float) -> int:
        note_retry()
        return super()._apply(session_id, change, now)


def test_retries_a_backend_reports_are_counted(telemetry: Telemetry) -> None:
    note_retry()  # outside any traced call: nothing to count, no error
    with ailib.register_store("retrying", RetryingStore):
        store = ailib.open_store("retrying://", tracer_provider=telemetry.tracer_provider)
        chat = store.create()
        store.append(chat.session_id, {"role": "user", "content": "x"})
    create, append = telemetry.spans()
    assert "ailib.retries" not in (create.attributes or {})
    assert dict(append.attributes or {})["ailib.retries"] == 1


def test_retries_reported_from_a_worker_thread_are_counted(telemetry: Telemetry) -> None:
    async def main() -> None:
        with ailib.register_store("retrying", RetryingStore):
            store = ailib.open_async_store("retrying://", tracer_provider=telemetry.tracer_provider)
            assert type(store).__name__ == "ThreadedRetryingStore"
            chat = await store.create()
            await store.append(chat.session_id, {"role": "user", "content": "x"})
            await store.aclose()

    asyncio.run(main())
    create, append = telemetry.spans()
    assert "ailib.retries" not in (create.attributes or {})
    assert dict(append.attributes or {})["ailib.retries"] == 1


def run_child(code: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def _append_span_retries(telemetry: Telemetry) -> int:
    (append,) = [s for s in telemetry.spans() if s.name.startswith("append")]
    retries = dict(append.attributes or {}).get("ailib.retries", 0)
    assert isinstance(retries, int)
    return retries


def test_redis_counts_a_resent_write(
    request: pytest.FixtureRequest, tmp_path: Path, telemetry: Telemetry
) -> None:
    """The server holds writes back longer than the store waits for a reply (``CLIENT
    PAUSE``, redis-py's own retries off): the store resends the append with its op id."""
    url = backend_url(request, "redis", tmp_path) + "&retries=0&socket_timeout=0.2"
    with ailib.open_store(url, tracer_provider=telemetry.tracer_provider) as store:
        chat = store.create()
        admin = redis.Redis.from_url(url.split("?")[0])
        admin.client_pause(500, all=False)
        try:
            store.append(chat.session_id, {"role": "user", "content": "once"})
        finally:
            admin.client_unpause()
            admin.close()
        assert store.load(chat.session_id).messages == [{"role": "user", "content": "once"}]
    assert _append_span_retries(telemetry) >= 1


def test_postgresql_counts_a_write_retried_on_a_new_connection(
    request: pytest.FixtureRequest, tmp_path: Path, telemetry: Telemetry
) -> None:
    """The server ends the store's connections; the append looks up its op id and runs again."""
    name = f"ailib-retry-{uuid.uuid4().hex[:8]}"
    url = backend_url(request, "postgresql", tmp_path) + f"&application_name={name}"
    url += "&pool_pre_ping=false"
    with ailib.open_store(url, tracer_provider=telemetry.tracer_provider) as store:
        chat = store.create()
        admin = sa.create_engine(
            sa.make_url(url.split("?")[0]).set(drivername="postgresql+psycopg")
        )
        with admin.connect() as conn:
            ended = conn.execute(
                sa.text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE application_name = :name"
                ),
                {"name": name},
            ).scalar()
        admin.dispose()
        assert ended
        store.append(chat.session_id, {"role": "user", "content": "once"})
        assert store.load(chat.session_id).messages == [{"role": "user", "content": "once"}]
    assert _append_span_retries(telemetry) >= 1


def test_s3_counts_a_write_that_lost_a_race(
    request: pytest.FixtureRequest, tmp_path: Path, telemetry: Telemetry
) -> None:
    """Another store changed the manifest this store holds: its conditional write is refused
    (412) and tried again on the new one."""
    url = backend_url(request, "s3", tmp_path)
    with (
        ailib.open_store(url, tracer_provider=telemetry.tracer_provider) as store,
        ailib.open_store(url) as other,
    ):
        chat = store.create()
        store.append(chat.session_id, {"role": "user", "content": "first"})
        telemetry.exporter.clear()
        other.append(chat.session_id, {"role": "user", "content": "other"})
        store.append(chat.session_id, {"role": "user", "content": "last"})
        assert [m["content"] for m in store.load(chat.session_id).messages] == [
            "first",
            "other",
            "last",
        ]
    assert _append_span_retries(telemetry) == 1


def test_off_imports_no_opentelemetry() -> None:
    out = run_child(
        """
        import sys, ailib
        store = ailib.open_store("memory://")
        chat = store.create()
        chat.add_message("user", "hi")
        store.load(chat.session_id)
        print(sorted(m for m in sys.modules if m.startswith("opentelemetry")))
        """
    )
    assert out == "[]"


def test_opentelemetry_imported_but_no_provider_set_traces_nothing() -> None:
    out = run_child(
        """
        import opentelemetry.trace, ailib
        from ailib.tracing import is_instrumented
        print(is_instrumented(ailib.open_store("memory://")))
        """
    )
    assert out == "False"


def test_global_tracer_provider_turns_tracing_on() -> None:
    out = run_child(
        """
        import json
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
            InMemorySpanExporter,
        )
        import ailib

        exporter = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        trace.set_tracer_provider(provider)
        store = ailib.open_store("memory://?namespace=glob")
        store.append(store.create(session_id="g1").session_id, {"role": "user", "content": "x"})
        print(json.dumps([[s.name, dict(s.attributes)] for s in exporter.get_finished_spans()]))
        """
    )
    spans = json.loads(out)
    assert [name for name, _ in spans] == ["create glob", "append glob"]
    assert spans[1][1]["ailib.session.id"] == "g1"


def test_trace_on_traces_once_a_provider_is_set_later() -> None:
    out = run_child(
        """
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
            InMemorySpanExporter,
        )
        import ailib

        store = ailib.open_store("memory://?trace=on")
        store.create()  # no provider yet: a non-recording span
        exporter = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        trace.set_tracer_provider(provider)
        store.create()
        print([s.name for s in exporter.get_finished_spans()])
        """
    )
    assert out == "['create default']"


def test_trace_on_without_opentelemetry_says_what_to_install() -> None:
    out = run_child(
        """
        import sys
        sys.modules["opentelemetry"] = None  # as if it were not installed
        import ailib
        try:
            ailib.open_store("memory://?trace=on")
        except ailib.ConfigurationError as exc:
            print(exc)
        """
    )
    assert 'pip install "ailib-core[otel]"' in out
