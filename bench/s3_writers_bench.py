"""Many writers, one session: 8 processes appending to one S3 session on moto's S3 server
(started by this script on 127.0.0.1, in a process of its own).

    .venv/bin/python bench/s3_writers_bench.py [--writers 8] [--seconds 8] [--rounds 2]

Each round runs, one after the other on the same server:

* **raw floor**: each process PUTs its messages as objects of their own (unconditional
  PutObject, no coordination at all): what the server sustains for 8 writers, the ceiling of
  any layout that writes one object per append;
* **raw CAS**: each process appends to one JSON object with the conditional-write loop a
  one-object layout needs (GET, then PutObject If-Match, again after a 412), no ailib:
  the cost of "one conditional write wins per round trip" by itself;
* **raw slots** (a layout prototype, no ailib): each append claims the next numbered slot
  object ``slots/{n:012d}`` with a conditional ``PutObject If-None-Match: *``; a writer whose
  PUT gets 412 knows slot n is taken and tries n + 1. One request per uncontended append, no
  gaps (a writer moves to n + 1 only once n is taken), and the order is the slot order, fixed
  when the append is acknowledged; the books below check it;
* **raw fold** (a layout prototype, no ailib): each append PUTs its message to a key of its
  own (unconditional, one request) and is acknowledged then; one folder process lists the
  pending keys and folds the new ones into a manifest with one conditional PUT per batch.
  Printed: acknowledged msg/s, folded msg/s, and the lag from acknowledgement to fold (what
  a writer would wait, with extra GETs of the manifest, to learn its position before its
  acknowledgement: the price of keeping acknowledged order across writers in this layout);
* **self-fold** (a layout prototype, no ailib): the fold with acknowledged order kept and a
  position known at acknowledgement, as a store would need it: each append PUTs its message
  to a key of its own, lists the pending keys and folds them into the manifest with one
  conditional PUT, and is acknowledged once its key is in the manifest (after a lost race,
  a read of the manifest may show it there already);
* **ailib**: each process opens its own store (nothing shared, as separate machines would)
  and calls ``store.append`` on the one session.
* **ailib, 1**: one process alone appending to a session of its own, one append after
  another: the ceiling of any layout in which one writer lands at a time (the write turns
  of the S3 store hand the session from one writer to the next).

For each it prints acknowledged messages/s, and for ailib it then reads the session back and
checks the books: every acknowledged append present exactly once (lost, duplicated), each
writer's appends in the order they were acknowledged, and the version each append returned
at the position it names; and how the appends were shared among the writers (fewest and most
per writer) with how long an append took (median, 99th percentile, longest).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from itertools import pairwise
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from ailib.registry import open_store
from ailib_store_s3 import S3Store
from ailib_store_s3.moto import serve

DUMMY_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}
BUCKET = "writers-bench"
LATE = 2.0  # seconds a raw-fold PUT may take to land and still be folded


def _client(endpoint: str) -> Any:
    config = Config(retries={"mode": "standard", "total_max_attempts": 5})
    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", config=config)


def _content(writer: int, n: int) -> str:
    return f"w{writer}:{n}:" + "x" * 190  # about 200 characters


def _raw_floor(endpoint: str, prefix: str, writer: int, start: float, seconds: float) -> Any:
    client = _client(endpoint)
    _wait(start)
    n, deadline = 0, start + seconds
    while time.time() < deadline:
        body = json.dumps({"role": "user", "content": _content(writer, n)}).encode()
        client.put_object(Bucket=BUCKET, Key=f"{prefix}/floor/{writer}-{n}", Body=body)
        n += 1
    return n, 0


def _raw_cas(endpoint: str, prefix: str, writer: int, start: float, seconds: float) -> Any:
    client = _client(endpoint)
    key = f"{prefix}/cas"
    _wait(start)
    n, lost, deadline = 0, 0, start + seconds
    while time.time() < deadline:
        while True:
            got = client.get_object(Bucket=BUCKET, Key=key)
            log = json.loads(got["Body"].read())
            log.append({"role": "user", "content": _content(writer, n)})
            try:
                client.put_object(
                    Bucket=BUCKET, Key=key, Body=json.dumps(log).encode(), IfMatch=got["ETag"]
                )
                break
            except ClientError as exc:
                if exc.response["ResponseMetadata"]["HTTPStatusCode"] not in (409, 412):
                    raise
                lost += 1
        n += 1
    return n, lost


def _raw_slots(endpoint: str, prefix: str, writer: int, start: float, seconds: float) -> Any:
    client = _client(endpoint)
    _wait(start)
    acked: list[tuple[int, int]] = []  # (n, slot)
    n, slot, lost, deadline = 0, 0, 0, start + seconds
    while time.time() < deadline:
        body = json.dumps({"role": "user", "content": _content(writer, n)}).encode()
        try:
            client.put_object(
                Bucket=BUCKET, Key=f"{prefix}/slots/{slot:012d}", Body=body, IfNoneMatch="*"
            )
        except ClientError as exc:
            if exc.response["ResponseMetadata"]["HTTPStatusCode"] not in (409, 412):
                raise
            lost += 1
        else:
            acked.append((n, slot))
            n += 1
        slot += 1
    return n, lost, acked


def _slot_books(endpoint: str, prefix: str, results: list[Any]) -> dict[str, int]:
    client = _client(endpoint)
    keys = [
        o["Key"]
        for page in client.get_paginator("list_objects_v2").paginate(
            Bucket=BUCKET, Prefix=f"{prefix}/slots/"
        )
        for o in page.get("Contents", [])
    ]
    slots = [int(k.rsplit("/", 1)[1]) for k in keys]
    with ThreadPoolExecutor(8) as pool:
        bodies = list(
            pool.map(
                lambda k: json.loads(client.get_object(Bucket=BUCKET, Key=k)["Body"].read()),
                keys,
            )
        )
    at = {slot: body["content"] for slot, body in zip(slots, bodies, strict=True)}
    lost = misplaced = out_of_order = 0
    for writer, (_, _, acked) in enumerate(results):
        for n, slot in acked:
            if slot not in at:
                lost += 1
            elif at[slot] != _content(writer, n):
                misplaced += 1
        out_of_order += sum(1 for (_, a), (_, b) in pairwise(acked) if a > b)
    counts = Counter(at.values())
    return {
        "lost": lost,
        "duplicated": sum(c - 1 for c in counts.values() if c > 1),
        "misplaced": misplaced,
        "out of order": out_of_order,
        "gaps": (max(slots) + 1 - len(slots)) if slots else 0,
        "stored": len(slots),
    }


def _tag(writer: int, n: int) -> str:
    """Whose append a pending key holds; pending keys are ``{clock ns}-{tag}``."""
    return f"{writer:02d}-{n:09d}"


def _tag_of(key: str) -> str:
    return key.rsplit("/", 1)[1].split("-", 1)[1]


def _raw_fold_writer(endpoint: str, prefix: str, writer: int, start: float, seconds: float) -> Any:
    client = _client(endpoint)
    _wait(start)
    acked: list[tuple[int, float]] = []  # (n, acknowledged at)
    n, deadline = 0, start + seconds
    while time.time() < deadline:
        body = json.dumps({"role": "user", "content": _content(writer, n)}).encode()
        key = f"{prefix}/pending/{time.time_ns():020d}-{_tag(writer, n)}"
        client.put_object(Bucket=BUCKET, Key=key, Body=body)
        acked.append((n, time.time()))
        n += 1
    return n, 0, acked


def _raw_self_fold(endpoint: str, prefix: str, writer: int, start: float, seconds: float) -> Any:
    """The fold with acknowledged order kept: each append PUTs its message to a key of its
    own, then folds every pending key it lists into the manifest (a JSON list of keys) with
    a conditional PUT, and is acknowledged once its key is in the manifest, at the position
    it has there; after a lost race it reads the manifest, which may hold its key already.
    Listing starts after a watermark as in ``_raw_folder``."""
    client = _client(endpoint)
    manifest_key, pending = f"{prefix}/manifest", f"{prefix}/pending/"
    _wait(start)
    acked: list[tuple[int, int]] = []  # (n, position)
    n, lost, deadline = 0, 0, start + seconds
    order: list[str] = []
    etag: str | None = None
    while time.time() < deadline:
        body = json.dumps({"role": "user", "content": _content(writer, n)}).encode()
        mine_ns = time.time_ns()
        mine = f"{pending}{mine_ns:020d}-{_tag(writer, n)}"
        client.put_object(Bucket=BUCKET, Key=mine, Body=body)
        while mine not in order:
            if etag is None:
                got = client.get_object(Bucket=BUCKET, Key=manifest_key)
                order, etag = json.loads(got["Body"].read()), got["ETag"]
                continue
            watermark = f"{pending}{min(time.time_ns() - int(LATE * 1e9), mine_ns - 1):020d}"
            known = set(order)
            listed = [
                o["Key"]
                for page in client.get_paginator("list_objects_v2").paginate(
                    Bucket=BUCKET, Prefix=pending, StartAfter=watermark
                )
                for o in page.get("Contents", [])
                if o["Key"] not in known
            ]
            try:
                etag = client.put_object(
                    Bucket=BUCKET,
                    Key=manifest_key,
                    Body=json.dumps(order + listed).encode(),
                    IfMatch=etag,
                )["ETag"]
                order = order + listed
            except ClientError as exc:
                if exc.response["ResponseMetadata"]["HTTPStatusCode"] not in (409, 412):
                    raise
                lost += 1
                etag = None
        acked.append((n, order.index(mine)))
        n += 1
    return n, lost, acked


def _self_fold_round(endpoint: str, run: str, writers: int, seconds: float) -> str:
    """One phase of ``_raw_self_fold``: its line of the table."""
    prefix = f"{run}/self-fold"
    client = _client(endpoint)
    client.put_object(Bucket=BUCKET, Key=f"{prefix}/manifest", Body=b"[]")
    results = _run(_raw_self_fold, endpoint, prefix, writers, seconds)
    manifest = json.loads(client.get_object(Bucket=BUCKET, Key=f"{prefix}/manifest")["Body"].read())
    place = {_tag_of(key): i for i, key in enumerate(manifest)}
    sent, races = sum(n for n, _, _ in results), sum(lost for _, lost, _ in results)
    lost = misplaced = out_of_order = 0
    for writer, (_, _, acked) in enumerate(results):
        for n, position in acked:
            found = place.get(_tag(writer, n))
            lost += found is None
            misplaced += found is not None and found != position
        out_of_order += sum(1 for (_, a), (_, b) in pairwise(acked) if a > b)
    return (
        f"{sent / seconds:>7.1f} | {races:>6} | lost {lost}, duplicated "
        f"{len(manifest) - len(set(manifest))}, misplaced {misplaced}, out of order "
        f"{out_of_order}, stored {len(manifest)}"
    )


def _raw_folder(endpoint: str, prefix: str, _writer: int, start: float, seconds: float) -> Any:
    """Folds pending keys into ``manifest`` (a JSON list of keys) until every writer has
    stopped and nothing new is pending; returns the fold count and {key: folded at}.

    Pending keys start with the writer's clock, so each listing starts after a watermark
    (the newest folded key less LATE seconds) instead of at the first key ever written; a
    PUT that lands later than that would be missed (the books would count it lost)."""
    client = _client(endpoint)
    folded: dict[str, float] = {}
    order: list[str] = []
    etag = client.put_object(Bucket=BUCKET, Key=f"{prefix}/manifest", Body=b"[]")["ETag"]
    _wait(start)
    folds = 0
    watermark = f"{prefix}/pending/"
    while True:
        listed = [
            o["Key"]
            for page in client.get_paginator("list_objects_v2").paginate(
                Bucket=BUCKET, Prefix=f"{prefix}/pending/", StartAfter=watermark
            )
            for o in page.get("Contents", [])
        ]
        new = [k for k in listed if k not in folded]
        if new:
            late = int((time.time() - LATE) * 1e9)
            watermark = max(watermark, f"{prefix}/pending/{late:020d}")
        if not new:
            if time.time() > start + seconds + 1.0:
                break
            continue
        order += new  # key (clock) order: each writer's appends in its own order
        etag = client.put_object(
            Bucket=BUCKET, Key=f"{prefix}/manifest", Body=json.dumps(order).encode(), IfMatch=etag
        )["ETag"]
        now = time.time()
        folds += 1
        for key in new:
            folded[key] = now
    return folds, folded


def _ailib(endpoint: str, prefix: str, writer: int, start: float, seconds: float) -> Any:
    run, session_id = prefix.rsplit("/", 1)
    url = f"s3://{BUCKET}/{run}?endpoint_url={endpoint}"
    acked: list[tuple[int, int]] = []
    requests: Counter[str] = Counter()
    took: list[float] = []  # seconds each append took

    def sent(event_name: str, **_: Any) -> None:
        requests[event_name.rsplit(".", 1)[-1]] += 1

    def answered(response_dict: dict[str, Any] | None = None, **_: Any) -> None:
        if response_dict is not None and response_dict["status_code"] in (409, 412):
            requests["412"] += 1

    with open_store(url) as store:
        assert isinstance(store, S3Store)
        store.client.meta.events.register("before-send.s3.*", sent)
        store.client.meta.events.register("response-received.s3.*", answered)
        _wait(start)
        n, deadline = 0, start + seconds
        while time.time() < deadline:
            began = time.perf_counter()
            version = store.append(session_id, {"role": "user", "content": _content(writer, n)})
            took.append(time.perf_counter() - began)
            acked.append((n, version))
            n += 1
    return n, acked, requests, took


def _new_session(endpoint: str, run: str) -> str:
    """Create an empty session in ``run``'s namespace; its ``run/session_id`` prefix."""
    session_id = uuid.uuid4().hex
    with open_store(f"s3://{BUCKET}/{run}?endpoint_url={endpoint}") as store:
        store.create(session_id=session_id)
    return f"{run}/{session_id}"


def _wait(start: float) -> None:
    time.sleep(max(0.0, start - time.time()))


def _run(
    kind: Any, endpoint: str, prefix: str, writers: int, seconds: float, extra: Any = None
) -> list[Any]:
    """Results of ``writers`` processes running ``kind`` (then of ``extra``, if given)."""
    start = time.time() + 2.0  # every process has imported and connected by then
    jobs_of = [kind] * writers + ([extra] if extra else [])
    with mp.get_context("spawn").Pool(len(jobs_of)) as pool:
        jobs = [
            pool.apply_async(job, (endpoint, prefix, w, start, seconds))
            for w, job in enumerate(jobs_of)
        ]
        return [job.get() for job in jobs]


def _fold_round(endpoint: str, run: str, writers: int, seconds: float) -> str:
    """One raw fold phase: its line of the table."""
    *results, (folds, folded) = _run(
        _raw_fold_writer, endpoint, f"{run}/fold", writers, seconds, _raw_folder
    )
    sent = sum(n for n, _, _ in results)
    lags = []
    lost = out_of_order = 0
    manifest = json.loads(
        _client(endpoint).get_object(Bucket=BUCKET, Key=f"{run}/fold/manifest")["Body"].read()
    )
    place = {key: i for i, key in enumerate(manifest)}
    by_writer = {_tag_of(key): key for key in folded}
    for writer, (_, _, acked) in enumerate(results):
        positions = []
        for n, at in acked:
            key = by_writer.get(_tag(writer, n), "")
            if key not in place:
                lost += 1
                continue
            lags.append(folded[key] - at)
            positions.append(place[key])
        out_of_order += sum(1 for a, b in pairwise(positions) if a > b)
    lags.sort()
    lag = (
        f"fold lag p50 {lags[len(lags) // 2] * 1000:.0f} ms, max {lags[-1] * 1000:.0f} ms"
        if lags
        else ""
    )
    return (
        f"{sent / seconds:>7.1f} | {'-':>6} | lost {lost}, duplicated "
        f"{len(manifest) - len(set(manifest))}, writer order broken {out_of_order}, "
        f"{folds} folds ({len(manifest) / seconds:.1f} msg/s folded), {lag}"
    )


def _books(endpoint: str, prefix: str, results: list[Any]) -> dict[str, int]:
    run, session_id = prefix.rsplit("/", 1)
    with open_store(f"s3://{BUCKET}/{run}?endpoint_url={endpoint}") as store:
        loaded = store.load(session_id)
    stored = [m["content"] for m in loaded.messages]
    counts = Counter(stored)
    lost = duplicated = misplaced = out_of_order = 0
    duplicated = sum(c - 1 for c in counts.values() if c > 1)
    for writer, (_, acked, *_) in enumerate(results):
        positions = []
        for n, version in acked:
            content = _content(writer, n)
            if not counts[content]:
                lost += 1
                continue
            if not (0 <= version - 2 < len(stored)) or stored[version - 2] != content:
                misplaced += 1
            positions.append(stored.index(content))
        out_of_order += sum(1 for a, b in pairwise(positions) if a > b)
    return {
        "lost": lost,
        "duplicated": duplicated,
        "misplaced": misplaced,
        "out of order": out_of_order,
        "stored": len(stored),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--writers", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    os.environ.update(DUMMY_ENV)
    with serve() as endpoint:
        client = _client(endpoint)
        client.create_bucket(Bucket=BUCKET)
        print(
            f"{args.writers} writer processes, one session, {args.seconds:.0f} s a phase, "
            f"moto's server at {endpoint}\n"
        )
        print(f"{'round':>5} | {'phase':<10} | {'msg/s':>7} | {'412s':>6} | books")
        print("-" * 80)
        for round_ in range(1, args.rounds + 1):
            run = f"r{uuid.uuid4().hex[:8]}"
            floor = _run(_raw_floor, endpoint, run, args.writers, args.seconds)
            sent = sum(n for n, _ in floor)
            print(f"{round_:>5} | {'raw floor':<10} | {sent / args.seconds:>7.1f} | {'-':>6} |")
            client.put_object(Bucket=BUCKET, Key=f"{run}/cas", Body=b"[]")
            cas = _run(_raw_cas, endpoint, run, args.writers, args.seconds)
            sent, lost = sum(n for n, _ in cas), sum(n for _, n in cas)
            print(f"{round_:>5} | {'raw CAS':<10} | {sent / args.seconds:>7.1f} | {lost:>6} |")
            slots = _run(_raw_slots, endpoint, run, args.writers, args.seconds)
            sent, lost = sum(n for n, _, _ in slots), sum(n for _, n, _ in slots)
            shown = ", ".join(f"{k} {v}" for k, v in _slot_books(endpoint, run, slots).items())
            print(
                f"{round_:>5} | {'raw slots':<10} | {sent / args.seconds:>7.1f} | {lost:>6} | "
                f"{shown}"
            )
            print(
                f"{round_:>5} | {'raw fold':<10} | "
                + _fold_round(endpoint, run, args.writers, args.seconds)
            )
            print(
                f"{round_:>5} | {'self-fold':<10} | "
                + _self_fold_round(endpoint, run, args.writers, args.seconds)
            )
            prefix = _new_session(endpoint, run)
            results = _run(_ailib, endpoint, prefix, args.writers, args.seconds)
            sent = sum(n for n, *_ in results)
            requests: Counter[str] = sum((r for _, _, r, _ in results), Counter())
            lost = requests.pop("412", 0)
            books = _books(endpoint, prefix, results)
            shown = ", ".join(f"{k} {v}" for k, v in books.items())
            print(
                f"{round_:>5} | {'ailib':<10} | {sent / args.seconds:>7.1f} | {lost:>6} | {shown}"
            )
            per = ", ".join(f"{op} {n / max(sent, 1):.2f}" for op, n in sorted(requests.items()))
            total = sum(requests.values())
            print(
                f"{'':>5} | {'':<10} | requests per acknowledged append: {per} "
                f"(all {total / max(sent, 1):.2f}; {total / args.seconds:.0f} requests/s)"
            )
            print(f"{'':>5} | {'':<10} | {_shares(results)}")
            alone = _run(_ailib, endpoint, _new_session(endpoint, run), 1, args.seconds)
            print(f"{round_:>5} | {'ailib, 1':<10} | {alone[0][0] / args.seconds:>7.1f} |")


def _shares(results: list[Any]) -> str:
    """How the appends were shared among the writers, and how long they took."""
    counts = sorted(n for n, *_ in results)
    took = sorted(t for *_, times in results for t in times)
    if not took:
        return "no append acknowledged"
    p50, p99 = (took[min(len(took) - 1, int(len(took) * q))] * 1000 for q in (0.5, 0.99))
    return (
        f"appends per writer {counts[0]}-{counts[-1]} (median {counts[len(counts) // 2]}); "
        f"append took p50 {p50:.0f} ms, p99 {p99:.0f} ms, max {took[-1] * 1000:.0f} ms"
    )


if __name__ == "__main__":
    main()
