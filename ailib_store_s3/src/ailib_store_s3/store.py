"""`s3://bucket/prefix`: sessions in Amazon S3 or any S3-compatible service.

Each session is a small *manifest* object (header + the newest messages inline) plus sealed
*chunk* objects for older history (see :mod:`ailib_store_s3.manifest`). Every change is a
conditional PUT of the manifest (``If-Match`` its ETag, ``If-None-Match: *`` to create), so
concurrent writers never lose an update: the loser of a race re-reads and tries again.
Listing uses index markers (:mod:`ailib_store_s3.layout`). ``docs/stores/s3.md`` counts the
requests of every operation.
"""

from __future__ import annotations

import random
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urlsplit, urlunsplit

from botocore.exceptions import ClientError

from ailib.base import BaseStore, CheckpointState
from ailib.checkpoints import common_prefix
from ailib.codec import dumps, loads
from ailib.errors import (
    CheckpointNotFound,
    ConfigurationError,
    ConflictError,
    SessionNotFound,
)
from ailib.messages import Message
from ailib.records import Change, CheckpointRecord, SessionRecord
from ailib.url import StoreURL, make_url
from ailib_store_s3.bucket import Bucket
from ailib_store_s3.client import (
    is_missing,
    is_precondition_failed,
    make_client,
    retried,
    translate,
)
from ailib_store_s3.groupcommit import GroupCommit, Pending, fail
from ailib_store_s3.layout import Layout, Marker, micros, new_token
from ailib_store_s3.manifest import (
    CheckpointRef,
    Chunk,
    Manifest,
    Write,
    decode_messages,
    encode_messages,
)

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

__all__ = ("S3Store",)


#: Conditional-write attempts before an operation gives up with ConflictError.
_ATTEMPTS = 400
#: Bytes of the manifest that listing reads (its header line, in all but odd cases).
_HEADER_BYTES = 16 * 1024
#: A marker whose session has no manifest is removed only once it is this old: a create may
#: be writing the manifest right now.
_ORPHAN_GRACE = 60.0
_CACHE_SIZE = 128
#: Full-jitter exponential backoff after a lost conditional write (seconds).
_BACKOFF_BASE, _BACKOFF_CAP = 0.005, 0.1


class S3Store(BaseStore):
    """Sessions in an S3 bucket, under ``prefix/namespace/``.

    Thread-safe: one store may be shared by many threads, which then also share a cache of
    the manifests this process wrote or read last (always checked by ``If-Match``, so a
    stale entry costs one retry, never a wrong write).
    """

    #: The S3 calls; ``s3+mock://`` swaps in one that works around moto's in-process races.
    bucket_class: ClassVar[type[Bucket]] = Bucket
    options: ClassVar[frozenset[str]] = frozenset(
        {"region", "endpoint_url", "max_attempts", "pool_size", "index_resolution"}
    )

    def __init__(
        self,
        *,
        bucket: str,
        prefix: str = "",
        region: str | None = None,
        endpoint_url: str | None = None,
        access_key: str | None = None,
        secret_key: str | None = None,
        max_attempts: int | str = 8,
        pool_size: int | str = 16,
        index_resolution: float | str = 1.0,
        client: S3Client | None = None,
        **common: Any,
    ) -> None:
        super().__init__(**common)
        if not bucket:
            raise ConfigurationError("an S3 store URL needs a bucket: s3://bucket/prefix")
        self.bucket = bucket
        self.endpoint = _shown_endpoint(endpoint_url, region)
        try:
            attempts, workers = int(max_attempts), int(pool_size)
            resolution = float(index_resolution)
        except ValueError as exc:
            raise ConfigurationError(
                "max_attempts and pool_size must be whole numbers, index_resolution seconds"
            ) from exc
        if attempts < 1 or workers < 1 or not resolution > 0:
            raise ConfigurationError("max_attempts, pool_size and index_resolution must be > 0")
        self.layout = Layout(prefix.strip("/"), self.namespace, resolution)
        self.client: S3Client = client or make_client(
            region=region,
            endpoint_url=endpoint_url,
            access_key=access_key,
            secret_key=secret_key,
            max_attempts=attempts,
            pool_size=workers * 2,
        )
        self.objects = self.bucket_class(self.client, bucket, self.endpoint, workers)
        self._cache: OrderedDict[str, tuple[str, Manifest]] = OrderedDict()
        self._group: GroupCommit[Change] = GroupCommit()
        self._lock = threading.Lock()

    @classmethod
    def from_url(cls, url: str | StoreURL, **options: Any) -> S3Store:
        parsed = make_url(url)
        if not parsed.host:
            raise ConfigurationError(
                f"no bucket in {parsed.render()}; use s3://bucket/prefix?region=…"
            )
        store = cls(
            bucket=parsed.host,
            prefix=parsed.path,
            access_key=parsed.username,
            secret_key=parsed.password,
            **options,
        )
        store._url = parsed
        return store

    def close(self) -> None:
        self.objects.close()

    def flush(self) -> None:
        """Wait for background clean-up (deleting superseded index markers and garbage)."""
        self.objects.flush()

    # -- manifests ------------------------------------------------------------------------

    def _remember(self, session_id: str, etag: str, manifest: Manifest) -> None:
        with self._lock:
            known = self._cache.get(session_id)
            if known and known[1].gen == manifest.gen and known[1].version > manifest.version:
                return  # a slow read finishing after a newer write: keep the newer one
            self._cache[session_id] = (etag, manifest)
            self._cache.move_to_end(session_id)
            while len(self._cache) > _CACHE_SIZE:
                self._cache.popitem(last=False)

    def _forget(self, session_id: str) -> None:
        with self._lock:
            self._cache.pop(session_id, None)

    def _cached(self, session_id: str) -> tuple[Manifest, str] | None:
        with self._lock:
            found = self._cache.get(session_id)
        return None if found is None else (found[1], found[0])

    def _read(self, session_id: str) -> tuple[Manifest, str] | None:
        """The stored manifest and its ETag (one GET); None if there is none."""
        got = self.objects.get(self.layout.manifest(session_id))
        if got is None:
            self._forget(session_id)
            return None
        manifest = Manifest.decode(got[0])
        self._remember(session_id, got[1], manifest)
        return manifest, got[1]

    def _head(self, session_id: str) -> tuple[Manifest, str] | None:
        """The manifest's header (no tail) with one ranged GET; None if there is none."""
        key = self.layout.manifest(session_id)
        got = self.objects.get(key, f"bytes=0-{_HEADER_BYTES - 1}")
        if got is None:
            return None
        manifest = Manifest.decode_header(got[0])
        if manifest is None:  # a header longer than the range: read it all
            full = self.objects.get(key)
            if full is None:
                return None
            return Manifest.decode(full[0]), full[1]
        return manifest, got[1]

    def _current(self, session_id: str) -> tuple[Manifest, str, bool] | None:
        """The manifest to base a write on: the cached one if any (the write's If-Match
        checks it), else a fresh read. The flag says whether it is fresh."""
        cached = self._cached(session_id)
        if cached is not None:
            return cached[0], cached[1], False
        fresh = self._read(session_id)
        return None if fresh is None else (fresh[0], fresh[1], True)

    def _chunks(self, chunks: Sequence[Chunk]) -> list[Message] | None:
        """The messages of ``chunks`` in order (parallel GETs); None if one has vanished (a
        rewrite replaced it after the manifest was read: read the manifest again)."""
        each = self._chunks_each(chunks)
        return None if each is None else [m for messages in each for m in messages]

    def _chunks_each(self, chunks: Sequence[Chunk]) -> list[list[Message]] | None:
        bodies = self.objects.parallel(lambda c: self.objects.get(c.key), chunks)
        if any(body is None for body in bodies):
            return None
        return [
            decode_messages(body[0], f"chunk {chunk.key!r}")
            for chunk, body in zip(chunks, bodies, strict=True)
            if body is not None
        ]

    def _commit(
        self, manifest: Manifest, etag: str | None, old_markers: Sequence[str], tried: set[str]
    ) -> _Outcome:
        """Conditionally PUT ``manifest`` (If-Match ``etag``; If-None-Match when None) with
        any index markers its new state needs, in parallel.

        A marker changes only when the update time enters a new index interval, so most
        writes are the manifest PUT alone. ``tried`` collects the markers this operation has
        written; after a win, those the winning state does not use are deleted, with the
        superseded ones, off the caller's path.
        """
        session_id = manifest.session_id
        manifest.markers = self.layout.markers(
            session_id, manifest.user_id, manifest.updated_at, manifest.ttl
        )
        new_markers = [k for k in manifest.markers if k not in old_markers]
        tried.update(new_markers)
        pending = [self.objects.submit(self.objects.put, k, b"") for k in new_markers]
        outcome = _Outcome(None)
        try:
            outcome.etag = self.objects.put(
                self.layout.manifest(session_id),
                manifest.encode(),
                if_match=etag,
                create=etag is None,
            )
        except ClientError as exc:
            if not (is_precondition_failed(exc) or is_missing(exc)):
                raise translate(
                    exc, bucket=self.bucket, endpoint=self.endpoint, action="PutObject"
                ) from exc
            # A 412 after botocore retried (a 500, a timeout) may answer our own first try.
            outcome.ambiguous = retried(exc)
        finally:
            for future in pending:
                future.exception()
        for future in pending:
            future.result()
        if outcome.etag is not None:
            self._remember(session_id, outcome.etag, manifest)
            unused = (tried | set(old_markers)) - set(manifest.markers)
            self.objects.discard(sorted(unused), "updating the index")
        return outcome

    def _lost(self, session_id: str, attempt: int) -> None:
        """After a lost conditional write: forget the stale manifest and back off."""
        self._forget(session_id)
        time.sleep(random.uniform(0, min(_BACKOFF_CAP, _BACKOFF_BASE * 2 ** min(attempt, 10))))

    def _already_committed(self, outcome: _Outcome, session_id: str, commit_id: str) -> bool:
        """Whether a write that looked lost was applied after all (a PUT retried by botocore
        whose first try succeeded answers 412)."""
        if not outcome.ambiguous:
            return False
        fresh = self._read(session_id)
        return fresh is not None and fresh[0].committed(commit_id) is not None

    def _conflict(self, session_id: str) -> ConflictError:
        return ConflictError(
            f"session {session_id!r} in {self.url} kept changing during {_ATTEMPTS} attempts"
        )

    # -- the store operations -------------------------------------------------------------

    def _create(self, record: SessionRecord) -> None:
        manifest = Manifest.new(record)
        session_id = record.session_id
        writes = manifest.rewrite(0, record.messages, self.layout)
        for checkpoint in record.checkpoints:
            key = self.layout.checkpoint(session_id, manifest.gen, checkpoint.number)
            ref = CheckpointRef(checkpoint.number, key, checkpoint.message_count)
            writes.append((key, _checkpoint_body(checkpoint)))
            if checkpoint.messages is not None:
                ref.messages_key = f"{key}-messages"
                writes.append((ref.messages_key, encode_messages(checkpoint.messages)))
            manifest.checkpoints.append(ref)
        commit_id = new_token()
        manifest.note(commit_id)
        tried: set[str] = set()
        self.objects.put_all(writes)
        for _ in range(_ATTEMPTS):
            outcome = self._commit(manifest, None, (), tried)
            if outcome or self._already_committed(outcome, session_id, commit_id):
                return
            found = self._read(session_id)
            if found is None:
                continue
            current, etag = found
            if not current.expired(record.updated_at):
                self.objects.discard([w[0] for w in writes] + sorted(tried - set(current.markers)))
                raise ConflictError(
                    f"session {session_id!r} already exists in {self.url}; "
                    "load it, or create one with another id"
                )
            if self._commit(manifest, etag, current.markers, tried):
                old = self.layout.generation_prefix(session_id, current.gen)
                self.objects.later(
                    partial(self.objects.delete_prefix, old), "deleting an expired session"
                )
                return
        raise self._conflict(session_id)

    def _fetch(self, session_id: str, last: int | None) -> SessionRecord | None:
        for _ in range(_ATTEMPTS):
            found = self._read(session_id)
            if found is None:
                return None
            manifest = found[0]
            if last == 0:
                return manifest.record([])
            older = self._chunks(manifest.chunks_for_tail(last))
            if older is None:
                continue
            messages = older + manifest.tail
            if last is not None:
                messages = messages[max(0, len(messages) - last) :]
            return manifest.record(messages)
        raise self._conflict(session_id)

    def _apply(self, session_id: str, change: Change, now: float) -> int:
        """Group commit: concurrent changes to one session from this store go out in one
        manifest write (each still gets its own version and expected-version check)."""
        return self._group.submit(session_id, change, partial(self._apply_batch, session_id))

    def _merge_inputs(
        self, manifest: Manifest, messages: Sequence[Message]
    ) -> dict[str, list[Message]] | None:
        """The chunks an append that seals the tail merges with, by key (one parallel read,
        only on the append that fills the tail); None if one has vanished."""
        if not messages or not manifest.will_seal(messages):
            return {}
        candidates = manifest.merge_candidates()
        contents = self._chunks_each(candidates)
        if contents is None:
            return None
        return {c.key: m for c, m in zip(candidates, contents, strict=True)}

    def _apply_batch(self, session_id: str, batch: Sequence[Pending[Change]]) -> None:
        commit_id = new_token()
        tried: set[str] = set()
        for attempt in range(_ATTEMPTS):
            found = self._current(session_id)
            if found is None:
                fail(batch, SessionNotFound(session_id, self.url))
                return
            manifest, etag, fresh = found
            now = time.time()
            if manifest.expired(now):
                if not fresh:
                    self._forget(session_id)
                    continue
                fail(batch, SessionNotFound(session_id, self.url))
                return
            merge = self._merge_inputs(manifest, [m for p in batch for m in p.change.append])
            if merge is None:  # a chunk vanished under a concurrent rewrite
                self._forget(session_id)
                continue
            new = manifest.clone()
            writes: list[Write] = []
            accepted: list[Pending[Change]] = []
            refused: list[tuple[Pending[Change], int]] = []
            for pending in batch:
                change = pending.change
                if change.expected_version not in (None, new.version):
                    refused.append((pending, new.version))
                    continue
                if change.append:
                    writes += new.append(change.append, self.layout, merge)
                new.metadata = change.apply_metadata(new.metadata)
                new.touch(now, change.ttl)
                new.version += 1
                pending.version = new.version
                accepted.append(pending)
            if refused and not fresh:  # the cached manifest may be what is stale
                self._forget(session_id)
                continue
            for pending, version in refused:
                pending.error = self._stale(session_id, version, pending.change.expected_version)
            if not accepted:
                return
            new.note(commit_id)
            self.objects.put_all(writes)
            outcome = self._commit(new, etag, manifest.markers, tried)
            if outcome or self._already_committed(outcome, session_id, commit_id):
                merged = {c.key for c in manifest.chunks} - {c.key for c in new.chunks}
                self.objects.discard(sorted(merged), "deleting merged chunks")
                return
            for pending, _ in refused:
                pending.error = None
            for pending in accepted:
                pending.version = None
            self.objects.discard([w[0] for w in writes])
            self._lost(session_id, attempt)
        fail(batch, self._conflict(session_id))

    def _replace(self, record: SessionRecord, expected_version: int, now: float) -> int:
        session_id = record.session_id
        commit_id = new_token()
        tried: set[str] = set()
        for attempt in range(_ATTEMPTS):
            found = self._current(session_id)
            if found is None:
                raise SessionNotFound(session_id, self.url)
            manifest, etag, fresh = found
            if manifest.expired(now) or manifest.version != expected_version:
                if not fresh:
                    self._forget(session_id)
                    continue
                if manifest.expired(now):
                    raise SessionNotFound(session_id, self.url)
                raise self._stale(session_id, manifest.version, expected_version)
            old = self._chunks(manifest.chunks)
            if old is None:
                self._forget(session_id)
                continue
            old += manifest.tail
            new = manifest.clone()
            keep = common_prefix(old, record.messages)
            writes = self._materialize(new, old, keep)
            writes += new.rewrite(keep, record.messages, self.layout)
            new.metadata = dict(record.metadata)
            new.touch(now, record.ttl)
            new.commit(commit_id)
            if self._write_and_commit(manifest, new, etag, writes, tried, commit_id):
                return new.version
            self._lost(session_id, attempt)
            now = time.time()
        raise self._conflict(session_id)

    def _pop(self, session_id: str, count: int, now: float) -> list[Message]:
        """Truncate the log in one read and one conditional write (chunks wholly kept are
        reused; checkpoints that cover the removed messages get their copy first)."""
        commit_id = new_token()
        tried: set[str] = set()
        for attempt in range(_ATTEMPTS):
            found = self._current(session_id)
            if found is None:
                raise SessionNotFound(session_id, self.url)
            manifest, etag, fresh = found
            if manifest.expired(now):
                if not fresh:
                    self._forget(session_id)
                    continue
                raise SessionNotFound(session_id, self.url)
            if manifest.count == 0:
                return []
            older = self._chunks(manifest.chunks)
            if older is None:
                self._forget(session_id)
                continue
            old = older + manifest.tail
            keep = max(0, len(old) - count)
            new = manifest.clone()
            writes = self._materialize(new, old, keep)
            writes += new.rewrite(keep, old[:keep], self.layout)
            new.touch(now, None)
            new.commit(commit_id)
            if self._write_and_commit(manifest, new, etag, writes, tried, commit_id):
                return old[keep:]
            self._lost(session_id, attempt)
            now = time.time()
        raise self._conflict(session_id)

    def _write_and_commit(
        self,
        old: Manifest,
        new: Manifest,
        etag: str,
        writes: Sequence[Write],
        tried: set[str],
        commit_id: str,
    ) -> bool:
        """PUT the new objects, then the manifest; on a win, delete what ``old`` referenced
        and ``new`` does not; on a loss, delete what was written."""
        self.objects.put_all(writes)
        outcome = self._commit(new, etag, old.markers, tried)
        if not outcome and not self._already_committed(outcome, new.session_id, commit_id):
            self.objects.discard([w[0] for w in writes])
            return False
        kept = {c.key for c in new.chunks} | {c.messages_key for c in new.checkpoints}
        garbage = [c.key for c in old.chunks if c.key not in kept]
        garbage += [
            c.messages_key for c in old.checkpoints if c.messages_key and c.messages_key not in kept
        ]
        self.objects.discard(garbage)
        return True

    def _materialize(self, manifest: Manifest, log: Sequence[Message], keep: int) -> list[Write]:
        """Copy-on-write: give each pointer checkpoint that a rewrite keeping ``keep``
        messages would break its own copy of its messages."""
        writes: list[Write] = []
        for ref in manifest.checkpoints:
            if ref.messages_key is None and ref.message_count > keep:
                ref.messages_key = f"{ref.key}-messages-{new_token()}"
                writes.append((ref.messages_key, encode_messages(log[: ref.message_count])))
        return writes

    def _stale(self, session_id: str, version: int, expected: int | None) -> ConflictError:
        return ConflictError(
            f"session {session_id!r} in {self.url} is at version {version}, not {expected}: "
            "someone else changed it; reload and try again"
        )

    def _delete(self, session_id: str) -> bool:
        found = self.objects.get(self.layout.manifest(session_id))
        self._forget(session_id)
        if found is None:
            return False
        manifest = Manifest.decode(found[0])
        self.objects.call(
            "DeleteObject", self.client.delete_object, Key=self.layout.manifest(session_id)
        )
        self.objects.delete_prefix(self.layout.session_prefix(session_id))
        self.objects.delete_keys(manifest.markers)
        return True

    def _list(
        self, user_id: str | None, limit: int, after: tuple[float, str] | None, now: float
    ) -> Sequence[SessionRecord]:
        """Walk the index newest interval first, checking each marker against its session's
        manifest header (ranged GETs in parallel), until ``limit`` sessions are found and
        the interval they end in is complete."""
        base = self.layout.index_prefix if user_id is None else self.layout.user_prefix(user_id)
        start = self.layout.start_after(base, after[0]) if after else None
        found: dict[str, SessionRecord] = {}
        superseded: list[str] = []
        for group in _intervals(self._markers(base, start), max(limit, 32)):
            if len(found) >= limit:  # later intervals hold only older sessions
                break
            heads = self.objects.parallel(lambda m: self._head(m.session_id), group)
            for marker, head in zip(group, heads, strict=True):
                if head is None:
                    if marker.updated_us < micros(now - _ORPHAN_GRACE):
                        superseded.append(marker.key)
                    continue
                manifest = head[0]
                interval = self.layout.interval(manifest.updated_at)
                if marker.updated_us < interval:
                    superseded.append(marker.key)
                if (
                    interval != marker.updated_us
                    or manifest.expired(now)
                    or (user_id is not None and manifest.user_id != user_id)
                    or (after is not None and (manifest.updated_at, manifest.session_id) >= after)
                ):
                    continue
                found[manifest.session_id] = manifest.record()
        self.objects.discard(superseded, "deleting superseded index markers")
        records = sorted(found.values(), key=lambda r: (r.updated_at, r.session_id), reverse=True)
        return records[:limit]

    def _all_keys(self, prefix: str) -> list[str]:
        return [key for page in self.objects.keys(prefix) for key in page]

    def _markers(self, base: str, start_after: str | None) -> Iterator[Marker]:
        for page in self.objects.keys(base, start_after):
            for key in page:
                marker = Layout.parse_marker(base, key)
                if marker is not None:
                    yield marker

    def _purge(self, now: float) -> int:
        """Find expired sessions by the expiry bound in their index markers' keys (listing
        keys only), confirm each from its manifest, and delete them in batches."""
        due: dict[str, list[Marker]] = {}
        for base in (self.layout.index_prefix, self.layout.users_prefix):
            for page in self.objects.keys(base):
                for key in page:
                    marker = _parse_any(self.layout, base, key)
                    if (
                        marker
                        and marker.expires_us is not None
                        and marker.expires_us <= micros(now)
                    ):
                        due.setdefault(marker.session_id, []).append(marker)
        if not due:
            return 0
        session_ids = list(due)
        heads = self.objects.parallel(self._head, session_ids)
        garbage: list[str] = []
        purged: list[str] = []
        for session_id, head in zip(session_ids, heads, strict=True):
            markers = due[session_id]
            if head is None:
                garbage += [m.key for m in markers if m.updated_us < micros(now - _ORPHAN_GRACE)]
                continue
            manifest, etag = head
            if not manifest.expired(now):
                interval = self.layout.interval(manifest.updated_at)
                garbage += [m.key for m in markers if m.updated_us < interval]
                continue
            try:
                self.objects.call(
                    "DeleteObject",
                    self.client.delete_object,
                    Key=self.layout.manifest(session_id),
                    IfMatch=etag,
                )
            except ClientError:  # refreshed (412) or deleted (404) since we read it
                continue
            self._forget(session_id)
            purged.append(session_id)
            garbage += [m.key for m in markers] + manifest.markers
        prefixes = [self.layout.session_prefix(sid) for sid in purged]
        for keys in self.objects.parallel(
            lambda p: [k for page in self.objects.keys(p) for k in page], prefixes
        ):
            garbage += keys
        self.objects.delete_keys(garbage)
        return len(purged)

    def _checkpoint(self, session_id: str, label: str | None, now: float) -> int:
        commit_id = new_token()
        tried: set[str] = set()
        for attempt in range(_ATTEMPTS):
            found = self._current(session_id)
            if found is None:
                raise SessionNotFound(session_id, self.url)
            manifest, etag, fresh = found
            if manifest.expired(now):
                if not fresh:
                    self._forget(session_id)
                    continue
                raise SessionNotFound(session_id, self.url)
            new = manifest.clone()
            number = new.next_checkpoint_number()
            key = self.layout.checkpoint(session_id, new.gen, number)
            record = CheckpointRecord(number, now, new.count, dict(new.metadata), label)
            new.checkpoints.append(CheckpointRef(number, key, new.count))
            new.commit(commit_id)
            writes = [(key, _checkpoint_body(record))]
            if self._write_and_commit(manifest, new, etag, writes, tried, commit_id):
                return number
            self._lost(session_id, attempt)
            now = time.time()
        raise self._conflict(session_id)

    def _live_manifest(self, session_id: str, now: float) -> tuple[Manifest, str]:
        """The stored manifest and its ETag; SessionNotFound if absent or expired."""
        found = self._read(session_id)
        if found is None or found[0].expired(now):
            raise SessionNotFound(session_id, self.url)
        return found

    def _checkpoints(self, session_id: str, now: float) -> Sequence[CheckpointRecord] | None:
        for _ in range(_ATTEMPTS):
            try:
                manifest = self._live_manifest(session_id, now)[0]
            except SessionNotFound:
                return None
            bodies = self.objects.parallel(lambda c: self.objects.get(c.key), manifest.checkpoints)
            if any(body is None for body in bodies):
                continue
            records = [_decode_checkpoint(body[0]) for body in bodies if body is not None]
            return sorted(records, key=lambda c: c.number)
        raise self._conflict(session_id)

    def _checkpoint_state(self, session_id: str, number: int, now: float) -> CheckpointState:
        for _ in range(_ATTEMPTS):
            manifest = self._live_manifest(session_id, now)[0]
            ref = manifest.find_checkpoint(number)
            if ref is None:
                raise CheckpointNotFound(session_id, number)
            state = self._checkpoint_contents(manifest, ref)
            if state is not None:
                return state
        raise self._conflict(session_id)

    def _checkpoint_contents(
        self, manifest: Manifest, ref: CheckpointRef
    ) -> CheckpointState | None:
        """A checkpoint's messages and metadata: its record, and its messages from its own
        copy or from the log, all in one parallel round; None if an object vanished."""
        chunks = [] if ref.messages_key else manifest.chunks_for_prefix(ref.message_count)
        keys = [ref.key, *([ref.messages_key] if ref.messages_key else [c.key for c in chunks])]
        bodies = self.objects.parallel(self.objects.get, keys)
        if any(body is None for body in bodies):
            return None
        record = _decode_checkpoint(bodies[0][0])  # type: ignore[index]
        if ref.messages_key:
            messages = decode_messages(bodies[1][0], f"checkpoint {ref.key!r}")  # type: ignore[index]
        else:
            messages = []
            for chunk, body in zip(chunks, bodies[1:], strict=True):
                messages += decode_messages(body[0], f"chunk {chunk.key!r}")  # type: ignore[index]
            messages = (messages + manifest.tail)[: ref.message_count]
        return messages, dict(record.metadata)

    def _restore(self, session_id: str, number: int, now: float) -> int:
        commit_id = new_token()
        tried: set[str] = set()
        for attempt in range(_ATTEMPTS):
            manifest, etag = self._live_manifest(session_id, now)
            target = manifest.find_checkpoint(number)
            if target is None:
                raise CheckpointNotFound(session_id, number)
            older = self._chunks(manifest.chunks)
            state = None if older is None else self._checkpoint_contents(manifest, target)
            if older is None or state is None:
                continue
            old = older + manifest.tail
            messages, metadata = state
            if target.messages_key is None:
                keep = target.message_count
            else:
                keep = common_prefix(old, messages)
            new = manifest.clone()
            before = new.next_checkpoint_number()
            key = self.layout.checkpoint(session_id, new.gen, before)
            saved = CheckpointRecord(
                before, now, len(old), dict(manifest.metadata), f"before restore to {number}"
            )
            new.checkpoints.append(CheckpointRef(before, key, len(old)))
            writes = [(key, _checkpoint_body(saved))]
            writes += self._materialize(new, old, keep)
            writes += new.rewrite(keep, messages, self.layout)
            new.metadata = dict(metadata)
            new.touch(now, None)
            new.commit(commit_id)
            if self._write_and_commit(manifest, new, etag, writes, tried, commit_id):
                return new.version
            self._lost(session_id, attempt)
            now = time.time()
        raise self._conflict(session_id)


@dataclass
class _Outcome:
    """What a conditional manifest write did: its new ETag if it won."""

    etag: str | None
    ambiguous: bool = False

    def __bool__(self) -> bool:
        return self.etag is not None


def _shown_endpoint(endpoint_url: str | None, region: str | None) -> str:
    """The endpoint as error messages name it, without any user:password@ in it."""
    if not endpoint_url:
        return f"AWS S3 ({region or 'default region'})"
    parts = urlsplit(endpoint_url)
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def _checkpoint_body(checkpoint: CheckpointRecord) -> bytes:
    data = checkpoint.to_json()
    data["messages"] = None  # messages live in the log or in the checkpoint's own copy
    return dumps(data).encode()


def _decode_checkpoint(body: bytes) -> CheckpointRecord:
    return CheckpointRecord.from_json(loads(body, "stored checkpoint"))


def _parse_any(layout: Layout, base: str, key: str) -> Marker | None:
    """A marker of the global index or of any user's index."""
    if base == layout.users_prefix:
        user_end = key.find("/", len(base))
        if user_end < 0:
            return None
        base = key[: user_end + 1]
    return Layout.parse_marker(base, key)


def _intervals(markers: Iterable[Marker], size: int) -> Iterator[list[Marker]]:
    """Markers in groups of about ``size``, never splitting one index interval."""
    group: list[Marker] = []
    for marker in markers:
        if len(group) >= size and marker.updated_us != group[-1].updated_us:
            yield group
            group = []
        group.append(marker)
    if group:
        yield group
