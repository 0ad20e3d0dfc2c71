"""What the conformance suite does not cover: request counts of the object layout, listing
past 1,000 sessions, concurrency across separate stores, purge, lifecycle rules, errors and
secrets. All against moto's S3 server on 127.0.0.1."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import pytest
import urllib3
from botocore.awsrequest import AWSResponse, HTTPHeaders
from botocore.stub import Stubber

from ailib.errors import ConfigurationError, ConflictError, StoreUnavailable
from ailib.registry import open_store
from ailib.session import Session
from ailib_store_s3 import S3Store, install_lifecycle_rule, writes
from ailib_store_s3.lifecycle import rule_id
from ailib_store_s3.manifest import Manifest

OpenS3 = Callable[..., S3Store]


@pytest.fixture
def open_s3(moto_url: str) -> Iterator[OpenS3]:
    """Opens S3 stores on the moto server, all in one namespace of this test."""
    namespace = f"n{uuid.uuid4().hex[:8]}"
    opened: list[S3Store] = []

    def make(**options: Any) -> S3Store:
        store = open_store(moto_url, namespace=namespace, **options)
        assert isinstance(store, S3Store)
        opened.append(store)
        return store

    yield make
    for store in opened:
        store.close()


def _keys(store: S3Store, prefix: str = "") -> list[str]:
    return [k for page in store.objects.keys(store.layout.root + prefix) for k in page]


def _message(n: int) -> dict[str, Any]:
    return {"role": "user", "content": f"message {n} " + "x" * 1000}


# -- request counts --------------------------------------------------------------------


def test_load_of_1000_messages_takes_two_round_trips(open_s3: OpenS3, request_log: Any) -> None:
    writer = open_s3()
    session = writer.create(messages=[_message(n) for n in range(1000)])
    manifest = Manifest.decode(writer.objects.get(writer.layout.manifest(session.session_id))[0])  # type: ignore[index]
    assert manifest.chunks, "the history should live in chunks, not only in the manifest"

    reader = open_s3()  # a cold process: nothing cached
    log = request_log(reader.client, delay=0.02)
    with log:
        loaded = reader.load(session.session_id)
    assert [m["content"] for m in loaded.messages] == [m["content"] for m in session.messages]
    assert log.round_trips <= 2
    assert log.operations == {"GetObject": 1 + len(manifest.chunks)}

    with log:
        tail = reader.load(session.session_id, last=10)
    assert len(tail.messages) == 10
    assert log.round_trips == 1
    assert log.total == 1  # the tail lives in the manifest


def test_append_to_1000_messages_is_one_conditional_put(open_s3: OpenS3, request_log: Any) -> None:
    # A coarse index interval keeps the listing marker unchanged during the test, so what is
    # counted is the append itself; the next test counts a marker move.
    writer = open_s3(index_resolution=86400)
    session_id = writer.create(messages=[_message(n) for n in range(1000)]).session_id

    cold = open_s3(index_resolution=86400)
    log = request_log(cold.client)
    with log:
        cold.append(session_id, {"role": "assistant", "content": "first"})
    assert log.operations == {"GetObject": 1, "PutObject": 1}
    assert log.round_trips == 2

    with log:  # the manifest and its ETag are cached now: no read needed
        cold.append(session_id, {"role": "user", "content": "second"})
    assert log.operations == {"PutObject": 1}

    writer.append(session_id, {"role": "assistant", "content": "from elsewhere"})
    with log:  # a stale cache costs one refused PUT and a read, never a lost message
        cold.append(session_id, {"role": "user", "content": "third"})
    assert log.operations == {"PutObject": 2, "GetObject": 1}
    contents = [m["content"] for m in writer.load(session_id).messages[-4:]]
    assert contents == ["first", "second", "from elsewhere", "third"]


def test_append_moving_the_index_marker(open_s3: OpenS3, request_log: Any) -> None:
    store = open_s3(index_resolution=0.05)
    session_id = store.create({"user_id": "marker-user"}).session_id
    time.sleep(0.1)
    log = request_log(store.client, delay=0.02)
    with log:
        store.append(session_id, {"role": "user", "content": "later"})
        store.flush()
    # manifest + a marker in each index, in parallel; the old markers go in one batch delete
    assert log.operations == {"PutObject": 3, "DeleteObjects": 1}
    markers = _keys(store, "idx/") + _keys(store, "u/")
    assert len(markers) == 2
    assert [s.session_id for s in store.list(user_id="marker-user")] == [session_id]


def test_a_session_grown_by_appends_keeps_few_chunks(open_s3: OpenS3) -> None:
    store = open_s3()
    session_id = store.create().session_id
    big = [{"role": "user", "content": f"{n} " + "z" * 20_000} for n in range(70)]
    for message in big:
        store.append(session_id, message)
    store.flush()
    manifest = Manifest.decode(store.objects.get(store.layout.manifest(session_id))[0])  # type: ignore[index]
    assert 1 <= len(manifest.chunks) <= 4  # ~10 sealed tails, merged like a binary counter
    assert store.load(session_id).messages == big
    chunk_keys = [k for k in _keys(store, f"s/{session_id}/") if "/c/" in k]
    assert sorted(chunk_keys) == sorted(c.key for c in manifest.chunks)  # merged ones deleted


def test_checkpoint_of_a_long_session_copies_nothing(open_s3: OpenS3, request_log: Any) -> None:
    store = open_s3()
    session_id = store.create(messages=[_message(n) for n in range(300)]).session_id
    log = request_log(store.client)
    with log:
        number = store.checkpoint(session_id)
    assert log.operations == {"PutObject": 2}  # the pointer object and the manifest
    loaded = store.load(session_id)
    loaded.messages = loaded.messages[:10]
    store.save(loaded)  # copy-on-write: the checkpoint gets its own copy now
    store.restore(session_id, number)
    assert len(store.load(session_id).messages) == 300


# -- listing ---------------------------------------------------------------------------


def test_listing_pages_past_1000_sessions(open_s3: OpenS3, request_log: Any) -> None:
    store = open_s3()
    with ThreadPoolExecutor(16) as pool:
        made = list(pool.map(lambda _: store.create().session_id, range(1010)))
    log = request_log(store.client)
    seen: list[tuple[float, str]] = []
    cursor = None
    with log:
        while True:
            page = store.list(limit=400, cursor=cursor)
            seen += [(s.updated_at.timestamp(), s.session_id) for s in page]
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
    assert sorted(s for _, s in seen) == sorted(made)
    assert seen == sorted(seen, reverse=True)
    assert log.operations["ListObjectsV2"] >= 3  # continuation past 1,000 keys


def test_a_listing_page_lists_about_twice_its_limit(open_s3: OpenS3) -> None:
    store = open_s3()
    with ThreadPoolExecutor(16) as pool:
        made = list(pool.map(lambda _: store.create().session_id, range(150)))
    sizes: list[int | None] = []
    store.client.meta.events.register(
        "before-parameter-build.s3.ListObjectsV2",
        lambda params, **_: sizes.append(params.get("MaxKeys")),
    )
    page = store.list(limit=50)
    assert len(page) == 50
    assert {s.session_id for s in page} <= set(made)
    assert sizes[0] is not None
    assert sizes[0] < 200  # not a page of 1,000 keys for 50 sessions


def test_user_listing_reads_only_that_users_sessions(open_s3: OpenS3, request_log: Any) -> None:
    store = open_s3()
    for n in range(30):
        store.create({"user_id": f"other-{n % 5}"})
    mine = [store.create({"user_id": "alice"}).session_id for _ in range(3)]
    log = request_log(store.client)
    with log:
        listed = [s.session_id for s in store.list(user_id="alice")]
    assert listed == mine[::-1]
    assert log.operations == {"ListObjectsV2": 1, "GetObject": 3}


def test_listing_follows_a_user_change(open_s3: OpenS3) -> None:
    store = open_s3()
    session = store.create({"user_id": "before"})
    session.set_metadata("user_id", "after")
    assert [s.session_id for s in store.list(user_id="after")] == [session.session_id]
    assert list(store.list(user_id="before")) == []


# -- concurrency -----------------------------------------------------------------------


def test_separate_stores_appending_and_saving_lose_nothing(open_s3: OpenS3) -> None:
    """Eight writers that share no cache (as eight processes would), appending and saving."""
    session_id = open_s3().create().session_id
    stores = [open_s3() for _ in range(8)]
    errors: list[BaseException] = []
    conflicts = 0
    lock = threading.Lock()

    def writer(worker: int) -> None:
        nonlocal conflicts
        store = stores[worker]
        try:
            for n in range(10):
                if n % 5 == 4:  # read-modify-save, retried on ConflictError
                    while True:
                        session = store.load(session_id)
                        session.messages.append({"role": "user", "content": f"{worker}:{n}"})
                        try:
                            store.save(session)
                            break
                        except ConflictError:
                            with lock:
                                conflicts += 1
                else:
                    store.append(session_id, {"role": "user", "content": f"{worker}:{n}"})
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    contents = [m["content"] for m in stores[0].load(session_id).messages]
    assert sorted(contents) == sorted(f"{w}:{n}" for w in range(8) for n in range(10))
    for worker in range(8):
        mine = [int(c.split(":")[1]) for c in contents if c.startswith(f"{worker}:")]
        assert mine == list(range(10))


def _stored(store: S3Store, session_id: str) -> Manifest:
    body = store.objects.get(store.layout.manifest(session_id))
    assert body is not None
    return Manifest.decode(body[0])


def _forge_turn(store: S3Store, session_id: str, turn: tuple[str, float]) -> None:
    """Give the stored manifest a write turn, as another writer's win would."""
    manifest = _stored(store, session_id)
    manifest.turn = turn
    store.client.put_object(
        Bucket=store.bucket, Key=store.layout.manifest(session_id), Body=manifest.encode()
    )


def test_a_lone_writer_never_takes_a_write_turn(open_s3: OpenS3) -> None:
    store = open_s3()
    session_id = store.create().session_id
    for n in range(5):
        store.append(session_id, _message(n))
    assert _stored(store, session_id).turn is None


def test_a_writer_that_lost_two_races_in_a_row_takes_a_short_turn(open_s3: OpenS3) -> None:
    first, second = open_s3(), open_s3()
    session_id = first.create().session_id
    second.append(session_id, _message(0))  # second now writes from its cached manifest
    first.append(session_id, _message(1))
    second.append(session_id, _message(2))  # one race lost to a stale cache: no turn
    assert _stored(second, session_id).turn is None

    manifest_puts = 0

    def race(params: dict[str, Any], **_: Any) -> None:
        nonlocal manifest_puts
        if params["Key"] == second.layout.manifest(session_id):
            manifest_puts += 1
            if manifest_puts in (1, 2):  # first writes before each of second's first two PUTs
                first.append(session_id, _message(100 + manifest_puts))

    second.client.meta.events.register("before-parameter-build.s3.PutObject", race)
    second.append(session_id, _message(3))
    assert manifest_puts == 3
    manifest = _stored(second, session_id)
    assert manifest.turn is not None
    holder, until = manifest.turn
    assert holder == second._context.writer
    assert until == pytest.approx(manifest.updated_at + writes.TURN_STEP)
    assert [m["content"] for m in first.load(session_id).messages] == [
        _message(n)["content"] for n in (0, 1, 2, 101, 102, 3)
    ]


def test_a_writer_waits_out_another_writers_turn_then_takes_a_whole_turn(
    open_s3: OpenS3, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(writes, "TURN", 3.0)  # room for a loaded machine to read it in time
    session_id = open_s3().create().session_id
    store = open_s3()  # no cached manifest: its first read shows the turn
    _forge_turn(store, session_id, ("another-writer", time.time() + 1.0))
    assert store.append(session_id, _message(0)) == 2
    manifest = _stored(store, session_id)
    assert manifest.turn is not None
    holder, until = manifest.turn
    assert holder == store._context.writer
    assert until == pytest.approx(manifest.updated_at + 3.0)


def test_a_turn_from_a_clock_far_ahead_is_not_waited_on(open_s3: OpenS3) -> None:
    session_id = open_s3().create().session_id
    store = open_s3()
    _forge_turn(store, session_id, ("another-writer", time.time() + 3600))
    assert store.append(session_id, _message(0)) == 2
    assert _stored(store, session_id).turn is None  # not waited on, so not contended


def test_stale_save_conflicts_across_stores(open_s3: OpenS3) -> None:
    first, second = open_s3(), open_s3()
    session = first.create()
    mine = second.load(session.session_id)
    first.append(session.session_id, {"role": "user", "content": "theirs"})
    mine.messages.append({"role": "user", "content": "mine"})
    with pytest.raises(ConflictError):
        second.save(mine)


# -- TTL -------------------------------------------------------------------------------


def _listed_prefixes(store: S3Store) -> list[str]:
    """The prefixes of the ListObjectsV2 calls ``store`` makes from now on."""
    prefixes: list[str] = []

    def note(params: dict[str, Any], **_: Any) -> None:
        prefixes.append(params["Prefix"].removeprefix(store.layout.root))

    store.client.meta.events.register("before-parameter-build.s3.ListObjectsV2", note)
    return prefixes


def test_purge_deletes_expired_sessions_in_batches(open_s3: OpenS3, request_log: Any) -> None:
    store = open_s3()
    assert store.purge_expired() == 0  # an empty namespace: the expiry index is complete
    doomed = [
        store.create({"user_id": "ttl"}, messages=[_message(n) for n in range(200)])
        for _ in range(5)
    ]
    keeper = store.create({"user_id": "ttl"})
    lasting = store.create(ttl=3600)
    store.checkpoint(doomed[0].session_id)
    for session in doomed:  # the TTL starts only now, whatever the writes above took
        store.save(store.load(session.session_id), ttl=0.3)
    time.sleep(0.5)
    store.flush()
    log = request_log(store.client)
    listed = _listed_prefixes(store)
    with log:
        assert store.purge_expired() == 5
    assert log.operations["DeleteObjects"] == 1
    assert log.operations["GetObject"] == 5  # one ranged read per candidate, none for keeper
    # the expiry index, read up to the first live bound; one LIST of each purged session
    assert listed[0] == "exp/"
    assert sorted(listed[1:]) == sorted(f"s/{d.session_id}/" for d in doomed)
    left = _keys(store)
    assert all(d.session_id not in key for d in doomed for key in left)
    assert store.exists(keeper.session_id)
    assert store.exists(lasting.session_id)
    assert [k.rsplit("/", 1)[-1] for k in _keys(store, "exp/")] == [lasting.session_id]
    assert store.purge_expired() == 0


def test_purge_reads_expiry_markers_only_up_to_the_first_live_one(open_s3: OpenS3) -> None:
    store = open_s3(index_resolution=0.05)
    store.purge_expired()
    live = [store.create(ttl=3600) for _ in range(1100)]  # more than one LIST page
    doomed = [store.create(ttl=0.2) for _ in range(3)]
    refreshed = store.create(ttl=3600)
    # a marker of an earlier state whose clean-up failed: its bound has passed
    stale = store.layout.expiry_marker(refreshed.session_id, int((time.time() - 10) * 1e6))
    store.client.put_object(Bucket=store.bucket, Key=stale, Body=b"")
    store.flush()
    time.sleep(0.3)
    listed = _listed_prefixes(store)
    assert store.purge_expired() == 3
    assert listed.count("exp/") == 1  # the 1,100 live markers sort after the expired ones
    assert not any(p.startswith(("idx/", "u/")) for p in listed)
    assert store.exists(refreshed.session_id)
    assert store.exists(live[0].session_id)
    exp_ids = [k.rsplit("/", 1)[-1] for k in _keys(store, "exp/")]
    assert sorted(exp_ids) == sorted([s.session_id for s in live] + [refreshed.session_id])
    assert not any(d.session_id in k for d in doomed for k in _keys(store))


def test_sessions_written_before_the_expiry_index_still_purge(open_s3: OpenS3) -> None:
    """A namespace whose sessions have listing markers but no expiry markers (as written
    before the expiry index existed): the first purge lists the listing indexes, purges
    what has expired and gives each live session its expiry marker; later purges read
    the expiry index alone."""
    writer = open_s3()
    soon = [writer.create({"user_id": "old"}, ttl=0.3) for _ in range(3)]
    later = [writer.create(ttl=3600) for _ in range(3)]
    forever = writer.create({"user_id": "old"})
    writer.flush()
    old_layout = [*_keys(writer, "exp/"), writer.layout.expiry_indexed]
    writer.client.delete_objects(
        Bucket=writer.bucket, Delete={"Objects": [{"Key": k} for k in old_layout]}
    )
    assert _keys(writer, "exp") == []
    time.sleep(0.5)

    first = open_s3()
    listed = _listed_prefixes(first)
    assert first.purge_expired() == 3
    assert {"idx/", "u/"} <= set(listed)
    assert _keys(first, "exp-indexed") == [first.layout.expiry_indexed]
    assert sorted(k.rsplit("/", 1)[-1] for k in _keys(first, "exp/")) == sorted(
        s.session_id for s in later
    )
    assert not any(first.exists(s.session_id) for s in soon)

    second = open_s3()
    listed = _listed_prefixes(second)
    assert second._purge(time.time() + 7200) == 3  # as it will be two hours from now
    assert listed[0] == "exp/"
    assert not any(p.startswith(("idx/", "u/")) for p in listed)
    assert not any(second.exists(s.session_id) for s in later)
    assert second.exists(forever.session_id)
    assert _keys(second, "exp/") == []


def test_lifecycle_rule(open_s3: OpenS3) -> None:
    store = open_s3()
    client = store.client
    client.put_bucket_lifecycle_configuration(
        Bucket=store.bucket,
        LifecycleConfiguration={
            "Rules": [
                {
                    "ID": "someone-elses",
                    "Filter": {"Prefix": "logs/"},
                    "Status": "Enabled",
                    "Expiration": {"Days": 7},
                }
            ]
        },
    )
    install_lifecycle_rule(store, days=30)
    install_lifecycle_rule(store, days=14)  # replaces its own rule
    rules = {
        r["ID"]: r for r in client.get_bucket_lifecycle_configuration(Bucket=store.bucket)["Rules"]
    }
    assert set(rules) == {"someone-elses", rule_id(store)}
    ours = rules[rule_id(store)]
    assert ours["Expiration"] == {"Days": 14}
    assert ours["Filter"] == {"Prefix": store.layout.root}
    with pytest.raises(ConfigurationError):
        install_lifecycle_rule(store, days=0)


# -- errors and secrets ----------------------------------------------------------------


def test_missing_bucket_is_a_configuration_error(moto_endpoint: str) -> None:
    store = open_store(f"s3://no-such-bucket-here/p?endpoint_url={moto_endpoint}")
    with pytest.raises(ConfigurationError, match="no-such-bucket-here") as caught:
        store.load("some-session")
    assert moto_endpoint in str(caught.value)
    store.close()


def test_unreachable_endpoint_is_store_unavailable() -> None:
    store = open_store("s3://some-bucket?endpoint_url=http://127.0.0.1:9&max_attempts=1")
    with pytest.raises(StoreUnavailable, match=r"some-bucket.*127\.0\.0\.1:9"):
        store.get("some-session")
    store.close()


def test_access_denied_is_store_unavailable(open_s3: OpenS3) -> None:
    store = open_s3()
    with Stubber(store.client) as stub:
        stub.add_client_error("get_object", "AccessDenied", "Access Denied", 403)
        with pytest.raises(StoreUnavailable, match=f"{store.bucket}.*refused") as caught:
            store.load("some-session")
    assert "check the credentials" in str(caught.value)


def test_credentials_in_the_url_are_masked(moto_endpoint: str) -> None:
    secret = "wJalrXUtnFEMI-K7MDENG-bPxRfiCYEXAMPLEKEY"
    url = f"s3://AKIDEXAMPLE:{secret}@no-such-bucket-2/p?endpoint_url={moto_endpoint}"
    store = open_store(url)
    texts = [repr(store), store.url]
    with pytest.raises(ConfigurationError) as caught:
        store.load("some-session")
    texts.append(str(caught.value))
    store.close()
    assert all(secret not in text for text in texts)
    assert "***" in store.url


def test_url_options(moto_endpoint: str) -> None:
    store = open_store(
        f"s3://bucket-x/a/b?endpoint_url={moto_endpoint}&region=eu-west-1&ttl=1h&index_resolution=5"
    )
    assert isinstance(store, S3Store)
    assert store.bucket == "bucket-x"
    assert store.layout.root == "a/b/default/"
    assert store.layout.resolution == 5
    assert store.default_ttl == 3600
    assert store.client.meta.region_name == "eu-west-1"
    store.close()
    with pytest.raises(ConfigurationError, match="unknown option"):
        open_store(f"s3://bucket-x?endpoint_url={moto_endpoint}&colour=blue")


def test_mock_scheme_shares_one_bucket_while_open() -> None:
    bucket = f"mock-{uuid.uuid4().hex[:8]}"
    with open_store(f"s3+mock://{bucket}") as first:
        session = first.create(messages=[{"role": "user", "content": "hi"}])
        with open_store(f"s3+mock://{bucket}") as second:
            assert second.load(session.session_id).messages == session.messages
        assert boto3.client("s3", region_name="us-east-1").head_bucket(Bucket=bucket)


def test_session_save_round_trip_through_chunks(open_s3: OpenS3) -> None:
    store = open_s3()
    session = Session(messages=[_message(n) for n in range(500)])
    store.save(session)
    loaded = store.load(session.session_id)
    loaded.messages[400]["content"] = "edited"
    store.save(loaded)
    again = store.load(session.session_id)
    assert again.messages[400]["content"] == "edited"
    assert len(again.messages) == 500


class _Raw:
    def __init__(self, data: bytes) -> None:
        self.data = data

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.data


def test_retried_put_that_had_succeeded_is_not_applied_twice(open_s3: OpenS3) -> None:
    """A manifest PUT that S3 applied but answered with 500 is retried by botocore and then
    answered 412; the store must see its own commit and not append again."""
    store = open_s3()
    session_id = store.create().session_id
    store.append(session_id, {"role": "user", "content": "one"})
    http = urllib3.PoolManager()
    armed = [True]

    def apply_then_fail(request: Any, **_: Any) -> Any:  # an AWSResponse, or None to send
        if not (armed[0] and request.url.endswith("/manifest") and "If-Match" in request.headers):
            return None
        armed[0] = False
        body = request.body.read() if hasattr(request.body, "read") else request.body
        if hasattr(request.body, "seek"):
            request.body.seek(0)
        sent = http.request("PUT", request.url, body=body, headers=dict(request.headers))
        assert sent.status == 200
        error = b"<Error><Code>InternalError</Code><Message>try again</Message></Error>"
        return AWSResponse(request.url, 500, HTTPHeaders(), _Raw(error))

    store.client.meta.events.register("before-send.s3.PutObject", apply_then_fail)
    version = store.append(session_id, {"role": "user", "content": "two"})
    assert not armed[0], "the failure was injected"
    loaded = store.load(session_id)
    assert [m["content"] for m in loaded.messages] == ["one", "two"]
    assert loaded.version == version
