"""The cost of OpenTelemetry tracing on an append, on memory:// and SQLite, in one run.

Four ways to append one message, each timed against the raw store in the same process,
interleaved (which goes first alternates, to cancel drift):

* raw: the store class built directly (``cls.from_url``), so no plugin ever saw it;
* off: ``open_store(url)`` before anything imported OpenTelemetry (checked: not imported
  after the appends), the state of every program that does not use it;
* on: ``open_store(url, tracer_provider=..., meter_provider=...)`` with the SDK set up as
  in production: every span recorded and handed to a BatchSpanProcessor (whose exporter
  here drops them), and the duration histogram (in-memory reader);
* on, sampled out: the SDK with a tracer provider that samples nothing (the spans are
  non-recording) and the histogram still recorded;
* the SDK by hand: the raw store's append inside the OpenTelemetry calls a traced append
  makes (a span with the same attributes, made current, and a histogram point), written
  out inline: what the SDK itself costs, for comparison with "on".

::

    .venv/bin/python bench/tracing_bench.py [--appends N] [--reps N]
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import ailib
from ailib.base import BaseStore
from ailib.registry import resolve
from ailib.tracing import is_instrumented, store_attributes
from ailib.url import make_url

MESSAGE = {"role": "user", "content": "a message of ordinary length " * 4}


def raw_store(url: str) -> BaseStore:
    parsed = make_url(url)
    return resolve(parsed).from_url(parsed)


def per_append(store: Any, appends: int) -> float:
    """Seconds per append of ``appends`` appends to a fresh session."""
    session_id = store.create().session_id
    append = store.append
    gc.collect()  # every timing starts from the same heap
    start = time.perf_counter()
    for _ in range(appends):
        append(session_id, MESSAGE)
    seconds = (time.perf_counter() - start) / appends
    store.delete(session_id)  # the memory store's heap stays small
    return seconds


def per_append_by_hand(store: Any, appends: int, tracer: Any, histogram: Any) -> float:
    """:func:`per_append` with the SDK calls of a traced append written out around it."""
    from opentelemetry import context, trace

    client = trace.SpanKind.CLIENT
    name = f"append {store.namespace}"
    attributes = {**store_attributes(store), "db.operation.name": "append"}
    session_id = store.create().session_id
    gc.collect()
    start = time.perf_counter()
    for _ in range(appends):
        span = tracer.start_span(
            name, kind=client, attributes={**attributes, "ailib.session.id": session_id}
        )
        token = context.attach(trace.set_span_in_context(span))
        began = time.perf_counter()
        version = store.append(session_id, MESSAGE)
        histogram.record(time.perf_counter() - began, attributes)
        span.set_attributes({"ailib.session.version": version, "ailib.message.count": 1})
        context.detach(token)
        span.end()
    seconds = (time.perf_counter() - start) / appends
    store.delete(session_id)
    return seconds


def compare(
    ours: Callable[[], float], raw: Callable[[], float], reps: int
) -> tuple[list[float], list[float]]:
    """Seconds per append of each, ``reps`` timings, alternating which goes first."""
    a: list[float] = []
    b: list[float] = []
    for rep in range(reps):
        if rep % 2:
            b.append(raw())
            a.append(ours())
        else:
            a.append(ours())
            b.append(raw())
    return a, b


def row(backend: str, label: str, ours: list[float], raw: list[float]) -> None:
    """Median and best timing of each: on a busy machine the best shows the cost itself."""
    cells = []
    for pick in (statistics.median, min):
        mine, base = pick(ours) * 1e6, pick(raw) * 1e6
        cells.append(f"{mine:8.1f} vs raw {base:8.1f} µs ({mine - base:+7.1f})")
    print(f"{backend:<7} {label:<33} median {cells[0]}   best {cells[1]}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--appends", type=int, default=0, help="appends per timing (0: auto)")
    parser.add_argument("--reps", type=int, default=9, help="timings per variant")
    args = parser.parse_args()
    # On tmpfs when there is one: the disk's fsync times would hide what tracing costs.
    shm = Path("/dev/shm")
    workdir = Path(
        tempfile.mkdtemp(prefix="ailib-tracing-bench-", dir=shm if shm.is_dir() else None)
    )
    urls = {"memory": "memory://", "sqlite": f"sqlite:///{workdir / 'bench.db'}"}
    appends = {"memory": args.appends or 5000, "sqlite": args.appends or 2000}

    version = sys.version.split()[0]
    print(f"python {version}, ailib {ailib.__version__}; µs per append, {args.reps} timings each")
    raws = {name: raw_store(url) for name, url in urls.items()}
    # Off: nothing has imported OpenTelemetry yet.
    for name, url in urls.items():
        store = ailib.open_store(url)
        assert not is_instrumented(store)
        count = appends[name]
        ours, raw = compare(
            partial(per_append, store, count), partial(per_append, raws[name], count), args.reps
        )
        row(name, "off (OpenTelemetry not imported)", ours, raw)
        store.close()
    imported = sorted(m for m in sys.modules if m.startswith("opentelemetry"))
    assert not imported, f"tracing off imported {imported}"

    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import (
        BatchSpanProcessor,
        SpanExporter,
        SpanExportResult,
    )
    from opentelemetry.sdk.trace.sampling import ALWAYS_OFF

    class Dropped(SpanExporter):
        """Counts the spans instead of sending them anywhere."""

        def __init__(self) -> None:
            self.count = 0

        def export(self, spans: Any) -> SpanExportResult:
            self.count += len(spans)
            return SpanExportResult.SUCCESS

    exporter = Dropped()
    recording = TracerProvider()
    batches = BatchSpanProcessor(exporter, max_queue_size=1 << 16)  # none dropped
    recording.add_span_processor(batches)
    sampled_out = TracerProvider(sampler=ALWAYS_OFF)
    meters = MeterProvider(metric_readers=[InMemoryMetricReader()])
    tracer = recording.get_tracer("by-hand")
    histogram = meters.get_meter("by-hand").create_histogram("by.hand.duration", unit="s")
    for name, url in urls.items():
        by_hand = partial(per_append_by_hand, raws[name], appends[name], tracer, histogram)
        untraced = partial(per_append, raws[name], appends[name])
        row(name, "the SDK by hand", *compare(by_hand, untraced, args.reps))
        for label, provider in (
            ("on (every span recorded)", recording),
            ("on, sampled out", sampled_out),
        ):
            store = ailib.open_store(url, tracer_provider=provider, meter_provider=meters)
            assert is_instrumented(store)

            traced = partial(per_append, store, appends[name])
            untraced = partial(per_append, raws[name], appends[name])
            ours, raw = compare(traced, untraced, args.reps)
            row(name, label, ours, raw)
            store.close()
    batches.force_flush()
    expected = sum(args.reps * (2 * appends[name] + 2) for name in urls)
    print(f"spans exported: {exporter.count} of {expected} (every one recorded)")
    for store in raws.values():
        store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
