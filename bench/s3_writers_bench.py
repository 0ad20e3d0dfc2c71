"""Many writers, one session: 8 processes appending to one S3 session on moto's S3 server
(started by this script on 127.0.0.1, in a process of its own).

    .venv/bin/python bench/s3_writers_bench.py [--writers 8] [--seconds 15] [--rounds 2]

Each round runs, one after the other on the same server:

* **raw floor**: each process PUTs its messages as objects of their own (unconditional
  PutObject, no coordination at all): what the server sustains for 8 writers, the ceiling of
  any layout that writes one object per append;
* **raw CAS**: each process appends to one JSON object with the conditional-write loop a
  one-object layout needs (GET, then PutObject If-Match, again after a 412), no ailib:
  the cost of "one conditional write wins per round trip" by itself;
* **ailib**: each process opens its own store (nothing shared, as separate machines would)
  and calls ``store.append`` on the one session.

For each it prints acknowledged messages/s, and for ailib it then reads the session back and
checks the books: every acknowledged append present exactly once (lost, duplicated), each
writer's appends in the order they were acknowledged, and the version each append returned
at the position it names.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import time
import uuid
from collections import Counter
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


def _ailib(endpoint: str, prefix: str, writer: int, start: float, seconds: float) -> Any:
    run, session_id = prefix.rsplit("/", 1)
    url = f"s3://{BUCKET}/{run}?endpoint_url={endpoint}"
    acked: list[tuple[int, int]] = []
    requests: Counter[str] = Counter()

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
            version = store.append(session_id, {"role": "user", "content": _content(writer, n)})
            acked.append((n, version))
            n += 1
    return n, acked, requests


def _wait(start: float) -> None:
    time.sleep(max(0.0, start - time.time()))


def _run(kind: Any, endpoint: str, prefix: str, writers: int, seconds: float) -> list[Any]:
    start = time.time() + 2.0  # every process has imported and connected by then
    with mp.get_context("spawn").Pool(writers) as pool:
        jobs = [
            pool.apply_async(kind, (endpoint, prefix, w, start, seconds)) for w in range(writers)
        ]
        return [job.get() for job in jobs]


def _books(endpoint: str, prefix: str, results: list[Any]) -> dict[str, int]:
    run, session_id = prefix.rsplit("/", 1)
    with open_store(f"s3://{BUCKET}/{run}?endpoint_url={endpoint}") as store:
        loaded = store.load(session_id)
    stored = [m["content"] for m in loaded.messages]
    counts = Counter(stored)
    lost = duplicated = misplaced = out_of_order = 0
    duplicated = sum(c - 1 for c in counts.values() if c > 1)
    for writer, (_, acked, _) in enumerate(results):
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
    parser.add_argument("--seconds", type=float, default=15.0)
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
            session_id = uuid.uuid4().hex
            with open_store(f"s3://{BUCKET}/{run}?endpoint_url={endpoint}") as store:
                store.create(session_id=session_id)
            prefix = f"{run}/{session_id}"
            results = _run(_ailib, endpoint, prefix, args.writers, args.seconds)
            sent = sum(n for n, _, _ in results)
            requests: Counter[str] = sum((r for _, _, r in results), Counter())
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


if __name__ == "__main__":
    main()
