"""Fixtures for the integrations: OpenTelemetry SDK providers of a test's own (never the
global ones, so no other test is traced) and store URLs on the real servers."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import HistogramDataPoint, InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter


@dataclass
class Telemetry:
    """What a test's stores report, caught in memory."""

    tracer_provider: TracerProvider
    meter_provider: MeterProvider
    exporter: InMemorySpanExporter
    reader: InMemoryMetricReader

    def spans(self) -> list[ReadableSpan]:
        """The finished spans in the order they started (a parent before its children)."""
        return sorted(self.exporter.get_finished_spans(), key=lambda s: s.start_time or 0)

    def operations(self) -> list[str]:
        return [str((s.attributes or {})["db.operation.name"]) for s in self.spans()]

    def durations(self) -> list[HistogramDataPoint]:
        """Every data point of the ``db.client.operation.duration`` histogram."""
        data = self.reader.get_metrics_data()
        points: list[HistogramDataPoint] = []
        for resource in data.resource_metrics if data else ():
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    if metric.name == "db.client.operation.duration":
                        assert metric.unit == "s"
                        points += [
                            p for p in metric.data.data_points if isinstance(p, HistogramDataPoint)
                        ]
        return points


@pytest.fixture
def telemetry() -> Telemetry:
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    reader = InMemoryMetricReader()
    return Telemetry(tracer_provider, MeterProvider(metric_readers=[reader]), exporter, reader)


def _unique() -> str:
    return f"it{uuid.uuid4().hex[:10]}"


def _with_namespace(base: str, namespace: str) -> str:
    return f"{base}{'&' if '?' in base else '?'}namespace={namespace}"


def backend_url(request: pytest.FixtureRequest, name: str, tmp_path: Path) -> str:
    """A URL of backend ``name`` with a namespace of the test's own."""
    if name == "memory":
        base = f"memory://{_unique()}"  # named: shared by the stores of this test
    elif name == "sqlite":
        base = f"sqlite:///{tmp_path / 'sessions.db'}"
    elif name == "postgresql":
        base = request.getfixturevalue("postgres_store_url")
    elif name == "redis":
        base = request.getfixturevalue("shared_redis")
    elif name == "s3":
        base = request.getfixturevalue("moto_url")
    else:
        raise AssertionError(name)
    return _with_namespace(base, _unique())
