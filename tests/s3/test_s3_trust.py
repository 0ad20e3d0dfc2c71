"""A write is acknowledged only once it is stored, exactly once; a load returns exactly what
was written or raises CorruptSessionError naming the session; one damaged session breaks no
other; no secret shows. Against moto's S3 server, some through the fault proxy."""

from __future__ import annotations

import logging
import math
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest

from ailib.errors import (
    AilibError,
    ConfigurationError,
    CorruptSessionError,
    InvalidMessage,
    StoreUnavailable,
)
from ailib.records import Change, SessionRecord
from ailib.registry import open_store
from ailib_store_s3 import S3Store
from ailib_store_s3.manifest import Manifest

from .faultproxy import Faults, manifest_put, proxy

OpenS3 = Callable[..., S3Store]


@pytest.fixture
def namespace() -> str:
    return f"n{uuid.uuid4().hex[:8]}"


@pytest.fixture
def faulty(moto_endpoint: str, moto_bucket: str) -> Iterator[tuple[str, Faults]]:
    """A fault proxy in front of moto's server: an ``s3://`` URL through it, its faults."""
    with proxy(moto_endpoint) as (endpoint, faults):
        yield f"s3://{moto_bucket}/t{uuid.uuid4().hex[:8]}?endpoint_url={endpoint}", faults


@pytest.fixture
def open_s3(namespace: str) -> Iterator[Callable[..., S3Store]]:
    opened: list[S3Store] = []

    def make(url: str, **options: Any) -> S3Store:
        store = open_store(url, namespace=namespace, **options)
        assert isinstance(store, S3Store)
        opened.append(store)
        return store

    yield make
    for store in opened:
        store.close()


def _contents(store: S3Store, session_id: str) -> list[str]:
    return [m["content"] for m in store.load(session_id).messages]


# -- an acknowledged write is a stored write ---------------------------------------------


def test_append_behind_503s_raises_and_stores_nothing(
    faulty: tuple[str, Faults], open_s3: OpenS3
) -> None:
    url, faults = faulty
    store = open_s3(url + "&retries=1")
    session_id = store.create().session_id
    store.append(session_id, {"role": "user", "content": "kept"})
    faults.set("503", applies=manifest_put)
    with pytest.raises(StoreUnavailable, match=store.bucket):
        store.append(session_id, {"role": "user", "content": "refused"})
    with pytest.raises(StoreUnavailable):
        store.update_metadata(session_id, {"topic": "refused"})
    assert faults.injected["503"] >= 4
    faults.off()
    loaded = store.load(session_id)
    assert [m["content"] for m in loaded.messages] == ["kept"]
    assert loaded.version == 2
    assert "topic" not in loaded.metadata
    assert store.append(session_id, {"role": "user", "content": "after"}) == 3


def _index_put(request: Any) -> bool:
    """PUTs of listing-index markers (never the manifest that commits a change)."""
    path = request.path.split("?")[0]
    return request.method == "PUT" and ("/idx/" in path or "/u/" in path)


def test_a_failed_index_marker_does_not_fail_a_stored_write(
    faulty: tuple[str, Faults], open_s3: OpenS3
) -> None:
    """The markers are written beside the manifest; once the manifest is stored the change
    is acknowledged, and a marker that failed is written again off the caller's path."""
    url, faults = faulty
    store = open_s3(url + "&retries=0")
    faults.set("503", applies=_index_put)
    session = store.create({"user_id": "ann"})
    assert faults.injected["503"] >= 1
    faults.off()
    loaded = store.load(session.session_id)
    assert loaded.version == 1
    assert loaded.metadata["user_id"] == "ann"
    assert store.append(session.session_id, {"role": "user", "content": "next"}) == 2


def test_append_to_a_hung_endpoint_raises(faulty: tuple[str, Faults], open_s3: OpenS3) -> None:
    url, faults = faulty
    store = open_s3(url + "&timeout=0.5s&retries=0")
    session_id = store.create().session_id
    faults.set("delay", delay=30, applies=manifest_put)
    with pytest.raises(StoreUnavailable):
        store.append(session_id, {"role": "user", "content": "never answered"})
    faults.off()
    # the delayed PUT may land late; either way the store must have found out before raising
    assert _contents(store, session_id) in ([], ["never answered"])


def test_a_batch_failing_after_its_versions_are_counted_raises_for_every_waiter(
    faulty: tuple[str, Faults], open_s3: OpenS3
) -> None:
    """Threads sharing a store group-commit their appends: a failed batch fails them all."""
    import threading

    url, faults = faulty
    store = open_s3(url + "&retries=0")
    session_id = store.create().session_id
    faults.set("503", applies=manifest_put)
    outcomes: list[object] = []
    lock = threading.Lock()

    def append(n: int) -> None:
        try:
            result: object = store.append(session_id, {"role": "user", "content": str(n)})
        except Exception as exc:
            result = exc
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=append, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    faults.off()
    assert len(outcomes) == 6
    assert all(isinstance(o, StoreUnavailable) for o in outcomes), outcomes
    assert store.load(session_id).version == 1


def test_unstorable_message_is_refused_and_the_version_not_reused(namespace: str) -> None:
    with open_store(f"s3+mock://mock-{uuid.uuid4().hex[:8]}", namespace=namespace) as store:
        session_id = store.create().session_id
        for bad in (math.nan, "\ud800"):
            change = Change(append=({"role": "user", "content": bad},))
            with pytest.raises(InvalidMessage):
                store._apply(session_id, change, time.time())
        assert store.load(session_id).messages == []
        ok = Change(append=({"role": "user", "content": "fine"},))
        assert store._apply(session_id, ok, time.time()) == 2
        assert _message_contents(store, session_id) == ["fine"]
        big = [{"role": "user", "content": "y" * 5000} for _ in range(1000)]  # into chunks
        now = time.time()
        record = SessionRecord("with-nan", "chat", [{"content": math.inf}, *big], {}, 1, now, now)
        with pytest.raises(InvalidMessage):
            store._create(record)
        assert not store.exists("with-nan")


def _message_contents(store: Any, session_id: str) -> list[str]:
    return [m["content"] for m in store.load(session_id).messages]


# -- timeouts and retries from the URL -----------------------------------------------------


def test_timeout_and_retries_from_the_url(moto_endpoint: str) -> None:
    store = open_store(f"s3://b?endpoint_url={moto_endpoint}&timeout=5s&retries=3")
    assert isinstance(store, S3Store)
    config: Any = store.client.meta.config
    assert (config.connect_timeout, config.read_timeout) == (5.0, 5.0)
    assert config.retries == {"mode": "standard", "total_max_attempts": 4}
    store.close()
    for bad, named in (
        ("timeout=soon", "timeout"),
        ("timeout=0", "timeout"),
        ("retries=-1", "retries"),
        ("retries=many", "retries"),
        ("retries=2&max_attempts=3", "retries"),
    ):
        with pytest.raises(ConfigurationError, match=named):
            open_store(f"s3://b?endpoint_url={moto_endpoint}&{bad}")


# -- a lost reply: found out, never applied twice -------------------------------------------


def test_a_put_whose_reply_is_lost_is_found_to_have_landed(
    faulty: tuple[str, Faults], open_s3: OpenS3
) -> None:
    url, faults = faulty
    store = open_s3(url + "&retries=0")
    session_id = store.create().session_id
    faults.set("drop_after", applies=manifest_put)
    version = store.append(session_id, {"role": "user", "content": "landed"})
    faults.off()
    assert faults.injected["drop_after"] == 1
    loaded = store.load(session_id)
    assert [m["content"] for m in loaded.messages] == ["landed"]
    assert loaded.version == version == 2


def test_a_put_dropped_before_it_reached_s3_raises_and_stores_nothing(
    faulty: tuple[str, Faults], open_s3: OpenS3
) -> None:
    url, faults = faulty
    store = open_s3(url + "&retries=0")
    session_id = store.create().session_id
    faults.set("drop_before", applies=manifest_put)
    # Every manifest PUT is dropped, the fence too, so the store cannot rule out that the
    # PUT is still on its way: it says so ("could not be found out") or, once fenced, that
    # it was not applied. Either way nothing is stored.
    with pytest.raises(StoreUnavailable, match="applied"):
        store.append(session_id, {"role": "user", "content": "lost"})
    faults.off()
    assert _contents(store, session_id) == []


def test_a_repeated_op_id_is_applied_once(moto_url: str, open_s3: OpenS3) -> None:
    first, second = open_s3(moto_url), open_s3(moto_url)
    session_id = first.create().session_id
    message = {"role": "user", "content": "once"}
    v1 = first._apply(session_id, Change(append=(message,), op_id="key-1"), time.time())
    first.append(session_id, {"role": "user", "content": "other"})
    v2 = second._apply(session_id, Change(append=(message,), op_id="key-1"), time.time())
    assert v1 == v2 == 2
    assert _contents(first, session_id) == ["once", "other"]
    for n in range(300):  # the op ids of the last 256 changes at least are remembered
        first._apply(
            session_id,
            Change(append=({"role": "user", "content": str(n)},), op_id=f"k{n}"),
            time.time(),
        )
    again = second._apply(
        session_id, Change(append=({"role": "user", "content": "44"},), op_id="k44"), time.time()
    )
    assert again == 3 + 45
    assert len(first.load(session_id).messages) == 302


# -- damaged data: named, contained ----------------------------------------------------


def _raw(store: S3Store) -> Any:
    return boto3.client("s3", endpoint_url=store.settings.endpoint_url, region_name="us-east-1")


def test_corrupt_and_empty_manifests_do_not_break_listing(
    moto_url: str, open_s3: OpenS3, caplog: pytest.LogCaptureFixture
) -> None:
    store = open_s3(moto_url)
    good = store.create({"user_id": "u"}).session_id
    garbage = store.create({"user_id": "u"}).session_id
    empty = store.create({"user_id": "u"}).session_id
    raw = _raw(store)
    raw.put_object(Bucket=store.bucket, Key=store.layout.manifest(garbage), Body=b"\x00\xffjunk")
    raw.put_object(Bucket=store.bucket, Key=store.layout.manifest(empty), Body=b"")
    with caplog.at_level(logging.WARNING):
        assert [s.session_id for s in store.list()] == [good]
        assert [s.session_id for s in store.list(user_id="u")] == [good]
    assert garbage in caplog.text
    assert empty in caplog.text
    for session_id in (garbage, empty):
        with pytest.raises(CorruptSessionError, match=session_id):
            store.load(session_id)
        with pytest.raises(CorruptSessionError, match=session_id):
            store.append(session_id, {"role": "user", "content": "x"})
    assert store.load(good).session_id == good
    assert store.delete(garbage)
    assert not store.exists(garbage)


def test_a_deleted_chunk_is_reported_at_once(
    moto_url: str, open_s3: OpenS3, request_log: Any
) -> None:
    store = open_s3(moto_url)
    messages = [{"role": "user", "content": f"{n} " + "x" * 2000} for n in range(300)]
    session_id = store.create(messages=messages).session_id
    manifest = Manifest.decode(store.objects.get(store.layout.manifest(session_id))[0])  # type: ignore[index]
    assert manifest.chunks
    _raw(store).delete_object(Bucket=store.bucket, Key=manifest.chunks[0].key)
    reader = open_s3(moto_url)
    log = request_log(reader.client)
    with log, pytest.raises(CorruptSessionError, match=session_id) as caught:
        reader.load(session_id)
    assert manifest.chunks[0].key in str(caught.value)
    assert log.total <= 5  # found out at once, not after hundreds of retries
    with pytest.raises(CorruptSessionError, match=session_id):
        reader.pop(session_id)


def test_a_wrong_count_or_garbage_message_is_reported(moto_url: str, open_s3: OpenS3) -> None:
    store = open_s3(moto_url)
    raw = _raw(store)
    made = {}
    for damage in ("count", "message", "missing"):
        session = store.create(messages=[{"role": "user", "content": str(n)} for n in range(4)])
        key = store.layout.manifest(session.session_id)
        head, tail = raw.get_object(Bucket=store.bucket, Key=key)["Body"].read().split(b"\n")
        if damage == "count":
            head = head.replace(b'"count":4', b'"count":7')
        elif damage == "message":
            tail = tail.replace(b'{"role":"user","content":"1"}', b'"\\u0000garbage"')
        else:
            tail = tail.replace(b'{"role":"user","content":"1"},', b"")
        raw.put_object(Bucket=store.bucket, Key=key, Body=head + b"\n" + tail)
        made[damage] = session.session_id
    for session_id in made.values():
        for last in (None, 2):
            with pytest.raises(CorruptSessionError, match=session_id):
                store.load(session_id, last=last)
    assert len(list(store.list())) == 3  # the headers are intact: listing shows them


# -- secrets -----------------------------------------------------------------------------


def test_secrets_never_show(moto_endpoint: str, caplog: pytest.LogCaptureFixture) -> None:
    secret = "wJalrXUtnFEMI-K7MDENG-bPxRfiCYEXAMPLEKEY"
    url = f"s3://AKIDEXAMPLE:{secret}@no-such-bucket-3/p?endpoint_url={moto_endpoint}&retries=0"
    store = open_store(url)
    assert isinstance(store, S3Store)
    texts = [repr(store), str(store), store.url, repr(store.settings), str(store.settings)]
    texts += [repr(store.objects), repr(store._context)]
    with (
        caplog.at_level(logging.DEBUG, logger="ailib_store_s3"),
        pytest.raises(AilibError) as caught,
    ):
        store.load("some-session")
    texts += [str(caught.value), repr(caught.value), caplog.text]
    store.close()
    leaked = [t for t in texts if secret in t]
    assert leaked == []
    assert "secret_key='***'" in repr(store.settings)


def test_a_manifest_written_before_op_ids_still_reads_and_takes_writes(
    moto_url: str, open_s3: OpenS3
) -> None:
    store = open_s3(moto_url)
    session_id = store.create(messages=[{"role": "user", "content": "old"}]).session_id
    key = store.layout.manifest(session_id)
    raw = _raw(store)
    body = raw.get_object(Bucket=store.bucket, Key=key)["Body"].read()
    head, tail, *_ = body.split(b"\n")
    raw.put_object(Bucket=store.bucket, Key=key, Body=head + b"\n" + tail)  # two lines
    reader = open_s3(moto_url)
    assert _contents(reader, session_id) == ["old"]
    keyed = Change(append=({"role": "user", "content": "new"},), op_id="after-upgrade")
    assert reader._apply(session_id, keyed, time.time()) == 2
    assert reader._apply(session_id, keyed, time.time()) == 2
    assert _contents(store, session_id) == ["old", "new"]


def test_an_idempotency_key_makes_a_resent_append_a_no_op(moto_url: str, open_s3: OpenS3) -> None:
    """What an application retrying from another process sees."""
    first, second = open_s3(moto_url), open_s3(moto_url)
    session_id = first.create().session_id
    message = {"role": "user", "content": "exactly once"}
    version = first.append(session_id, message, idempotency_key="order-7")
    assert second.append(session_id, message, idempotency_key="order-7") == version
    assert second.update_metadata(session_id, {"k": 1}, idempotency_key="meta-1") == 3
    assert first.update_metadata(session_id, {"k": 2}, idempotency_key="meta-1") == 3
    loaded = first.load(session_id)
    assert [m["content"] for m in loaded.messages] == ["exactly once"]
    assert loaded.metadata["k"] == 1
