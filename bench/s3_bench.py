"""Benchmark of the S3 store against moto's S3 server, which this script starts on 127.0.0.1.

    .venv/bin/python bench/s3_bench.py

For sessions of 10, 1,000 and 10,000 messages it times, in the same run and on the same
server, an append and a load through ailib next to raw boto3 calls on the same bytes:

* append: ailib's ``store.append`` of one message, next to a raw PutObject of that message's
  bytes (the least any append can cost) and of the whole history (the naive one-object-per-
  session layout, which rewrites everything);
* load: ailib's ``store.load`` from a cold store (nothing cached), next to a raw GetObject of
  the whole history stored as one object.

Then 8 threads append to one session, sharing one store (group commit) and with a store each
(as 8 processes would: only conditional writes keep them apart), and it reports messages/s,
412 answers (lost races, each retried) and 500 answers (retried by botocore).

Figures are medians over a few repetitions; moto runs in this process, so absolute times
say little about real S3, ratios and request counts more. Runs in well under 3 minutes.
"""

from __future__ import annotations

import json
import logging
import os
import statistics
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from typing import Any

import boto3
from moto.server import ThreadedMotoServer

from ailib.registry import open_store
from ailib_store_s3 import S3Store
from ailib_store_s3.moto import make_conditional_writes_atomic

SIZES = (10, 1_000, 10_000)
REPEAT = 15
WRITERS, PER_WRITER = 8, 50


class Counts:
    """Requests by operation, and 412/500 answers, seen by one boto3 client."""

    def __init__(self, client: Any) -> None:
        self.operations: Counter[str] = Counter()
        self.status: Counter[int] = Counter()
        self.round_trips = 0  # periods with at least one request in flight
        self._in_flight = 0
        self._lock = threading.Lock()
        client.meta.events.register("before-send.s3.*", self._sent)
        client.meta.events.register("response-received.s3.*", self._answered)

    def _sent(self, event_name: str, **_: Any) -> None:
        with self._lock:
            self.operations[event_name.rsplit(".", 1)[-1]] += 1
            self.round_trips += self._in_flight == 0
            self._in_flight += 1

    def _answered(self, response_dict: dict[str, Any] | None = None, **_: Any) -> None:
        with self._lock:
            self._in_flight = max(0, self._in_flight - 1)
            if response_dict is not None:
                self.status[int(response_dict["status_code"])] += 1

    def reset(self) -> None:
        self.operations.clear()
        self.status.clear()
        self.round_trips = 0

    def text(self) -> str:
        return " ".join(f"{n} {op}" for op, n in sorted(self.operations.items()))


def message(n: int) -> dict[str, Any]:
    return {"role": "user" if n % 2 else "assistant", "content": f"message {n}: " + "lorem " * 30}


def median_ms(fn: Callable[[], object], repeat: int = REPEAT) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def main() -> None:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        os.environ[name] = "bench"
    os.environ["AWS_DEFAULT_REGION"] = "us-east-1"
    make_conditional_writes_atomic()  # as S3's are; moto checks, then writes
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    bucket = "ailib-bench"
    raw = boto3.client("s3", endpoint_url=endpoint)
    raw.create_bucket(Bucket=bucket)
    url = f"s3://{bucket}/bench?endpoint_url={endpoint}"
    started = time.perf_counter()
    try:
        size_table(url, raw, bucket)
        writers_table(url)
    finally:
        server.stop()
    print(f"\n(total {time.perf_counter() - started:.0f} s)")


def size_table(url: str, raw: Any, bucket: str) -> None:
    print(f"S3 store vs raw boto3 on moto's server, medians of {REPEAT} (ms)\n")
    header = (
        f"{'messages':>8} | {'op':<6} | {'ailib':>7} | {'raw same bytes':>14} | {'ratio':>6} | "
        f"{'naive rewrite':>13} | ailib requests"
    )
    print(header)
    print("-" * len(header))
    for size in SIZES:
        size_rows(url, raw, bucket, size)


def size_rows(url: str, raw: Any, bucket: str, size: int) -> None:
    """The append and load rows for a session of ``size`` messages."""
    namespace = f"b{uuid.uuid4().hex[:6]}"
    writer = open_store(url, namespace=namespace)
    assert isinstance(writer, S3Store)
    history = [message(n) for n in range(size)]
    session_id = writer.create(messages=history).session_id
    whole = json.dumps(history).encode()
    one = json.dumps(message(size)).encode()
    raw.put_object(Bucket=bucket, Key=f"raw/{size}", Body=whole)

    counts = Counts(writer.client)
    writer.load(session_id, last=0)  # warm: the manifest is cached, as after a load
    counts.reset()
    n = iter(range(size, size + 10 * REPEAT))
    append = median_ms(lambda: writer.append(session_id, message(next(n))))
    append_requests = counts.text()
    raw_append = median_ms(
        lambda: raw.put_object(Bucket=bucket, Key=f"raw/one/{uuid.uuid4().hex}", Body=one)
    )
    naive = median_ms(lambda: raw.put_object(Bucket=bucket, Key=f"raw/{size}", Body=whole))
    print(
        f"{size:>8} | {'append':<6} | {append:>7.1f} | {raw_append:>14.1f} | "
        f"{append / raw_append:>5.1f}x | {naive:>13.1f} | "
        f"{append_requests} over {REPEAT}"
    )

    repeat = 5 if size >= 10_000 else REPEAT
    readers = [open_store(url, namespace=namespace) for _ in range(repeat)]
    reader_counts = [Counts(r.client) for r in readers if isinstance(r, S3Store)]
    cold = iter(readers)  # a new store each time: nothing cached, as in a new process
    load = median_ms(lambda: next(cold).load(session_id), repeat)
    raw_load = median_ms(
        lambda: raw.get_object(Bucket=bucket, Key=f"raw/{size}")["Body"].read(), repeat
    )
    last = reader_counts[-1]
    print(
        f"{size:>8} | {'load':<6} | {load:>7.1f} | {raw_load:>14.1f} | "
        f"{load / raw_load:>5.1f}x | {'':>13} | {last.text()} in {last.round_trips} round trips"
    )
    for store in (writer, *readers):
        store.close()


def writers_table(url: str) -> None:
    print(f"\n{WRITERS} writers x {PER_WRITER} appends to one session\n")
    header = f"{'writers share':<20} | {'messages/s':>10} | {'lost':>4} | {'412s':>5} | {'500s':>5}"
    print(header)
    print("-" * len(header))
    for shared in (True, False):
        namespace = f"w{uuid.uuid4().hex[:6]}"
        count = 1 if shared else WRITERS
        stores = [open_store(url, namespace=namespace) for _ in range(count)]
        counts = [Counts(s.client) for s in stores if isinstance(s, S3Store)]
        session_id = stores[0].create().session_id

        def writer(worker: int, stores: list[Any] = stores, session_id: str = session_id) -> None:
            store = stores[worker % len(stores)]
            for n in range(PER_WRITER):
                store.append(session_id, {"role": "user", "content": f"{worker}:{n}"})

        threads = [threading.Thread(target=writer, args=(w,)) for w in range(WRITERS)]
        start = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - start
        stored = len(stores[0].load(session_id).messages)
        lost = WRITERS * PER_WRITER - stored
        status = sum((c.status for c in counts), Counter())
        label = "one store" if shared else "a store each"
        print(
            f"{label:<20} | {stored / elapsed:>10.0f} | {lost:>4} | {status[412]:>5} | "
            f"{status[500]:>5}"
        )
        for store in stores:
            store.close()


if __name__ == "__main__":
    main()
