"""The reading operations, delete and purge, as programs, and the reads every operation
builds on (manifests, chunks, checkpoints).

Listing walks the index markers (:mod:`ailib_store_s3.manifest`) newest interval first,
checking each against its session's manifest header; purge picks candidates from the expiry
bound in marker keys alone.

A chunk or checkpoint object can vanish between reading the manifest that names it and
reading it (a concurrent rewrite replaced it); the reads answer :class:`Missing` then, and
the operation calls :func:`vanished`: if the manifest has not changed since, the object is
gone for good and the session is damaged (CorruptSessionError naming it and the object);
otherwise the operation reads the manifest again. Whatever cannot be decoded raises
CorruptSessionError naming the session.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TypeAlias

from botocore.exceptions import ClientError

from ailib.errors import (
    CheckpointNotFound,
    ConflictError,
    CorruptSessionError,
    SessionNotFound,
)
from ailib.spi import (
    CheckpointRecord,
    CheckpointState,
    Message,
    SessionRecord,
    dumps,
    loads,
)
from ailib_store_s3 import objects
from ailib_store_s3.client import error_code
from ailib_store_s3.context import Context
from ailib_store_s3.manifest import (
    HEADER_PROBE,
    CheckpointRef,
    Chunk,
    ExpiryMarker,
    Layout,
    Manifest,
    Marker,
    decode_messages,
    micros,
)
from ailib_store_s3.objects import Parallel, Program, unwrap_all

__all__ = (
    "ATTEMPTS",
    "Missing",
    "checkpoint_body",
    "checkpoint_contents",
    "checkpoint_state",
    "checkpoints",
    "chunks",
    "chunks_each",
    "conflict",
    "current",
    "damaged",
    "decode_checkpoint",
    "delete",
    "fetch",
    "head",
    "list_page",
    "live_manifest",
    "naming",
    "purge",
    "read",
    "vanished",
)

#: Conditional-write attempts (and re-reads after a vanished object) before an operation
#: gives up with ConflictError.
ATTEMPTS = 400


@dataclass(frozen=True)
class Missing:
    """Objects a manifest names that were not found."""

    keys: tuple[str, ...]


def damaged(ctx: Context, session_id: str, what: str) -> CorruptSessionError:
    return CorruptSessionError(f"session {session_id!r} in {ctx.url} is damaged: {what}")


@contextmanager
def naming(ctx: Context, session_id: str) -> Iterator[None]:
    """Let a CorruptSessionError raised inside name the session and the store."""
    try:
        yield
    except CorruptSessionError as exc:
        if repr(session_id) in str(exc):
            raise
        raise damaged(ctx, session_id, str(exc)) from exc


def read(ctx: Context, session_id: str) -> Program[tuple[Manifest, str] | None]:
    """The stored manifest and its ETag (one GET); None if there is none."""
    got = yield from objects.get(ctx.layout.manifest(session_id))
    if got is None:
        ctx.cache.forget(session_id)
        return None
    with naming(ctx, session_id):
        manifest = Manifest.decode(got[0])
    ctx.cache.remember(session_id, got[1], manifest)
    return manifest, got[1]


def head(ctx: Context, session_id: str) -> Program[tuple[Manifest, str] | None]:
    """The manifest's header (no tail) with one ranged GET; None if there is none."""
    key = ctx.layout.manifest(session_id)
    try:
        got = yield from objects.get(key, f"bytes=0-{HEADER_PROBE - 1}")
    except ClientError as exc:
        if error_code(exc) != "InvalidRange":
            raise
        raise damaged(ctx, session_id, "its manifest is an empty object") from exc
    if got is None:
        return None
    with naming(ctx, session_id):
        manifest = Manifest.decode_header(got[0])
        if manifest is None:  # a header longer than the range: read it all
            full = yield from objects.get(key)
            if full is None:
                return None
            return Manifest.decode(full[0]), full[1]
    return manifest, got[1]


def vanished(ctx: Context, session_id: str, etag: str, missing: Missing) -> Program[None]:
    """Objects the manifest with ``etag`` names were not found: return if the manifest has
    changed since (a concurrent rewrite; read it again), else raise CorruptSessionError."""
    ctx.cache.forget(session_id)
    fresh = yield from read(ctx, session_id)
    if fresh is not None and fresh[1] == etag:
        keys = ", ".join(repr(k) for k in missing.keys)
        raise damaged(ctx, session_id, f"objects its manifest names are missing: {keys}")


def current(ctx: Context, session_id: str) -> Program[tuple[Manifest, str, bool] | None]:
    """The manifest to base a write on: the cached one if any (the write's If-Match checks
    it), else a fresh read. The flag says whether it is fresh."""
    cached = ctx.cache.get(session_id)
    if cached is not None:
        return cached[0], cached[1], False
    fresh = yield from read(ctx, session_id)
    return None if fresh is None else (fresh[0], fresh[1], True)


def live_manifest(ctx: Context, session_id: str, now: float) -> Program[tuple[Manifest, str]]:
    """The stored manifest and its ETag; SessionNotFound if absent or expired."""
    found = yield from read(ctx, session_id)
    if found is None or found[0].expired(now):
        raise SessionNotFound(session_id, ctx.url)
    return found


def chunks(
    ctx: Context, session_id: str, found: Sequence[Chunk]
) -> Program[list[Message] | Missing]:
    """The messages of ``found`` in order (parallel GETs); Missing if one has vanished."""
    each = yield from chunks_each(ctx, session_id, found)
    if isinstance(each, Missing):
        return each
    return [m for messages in each for m in messages]


def chunks_each(
    ctx: Context, session_id: str, found: Sequence[Chunk]
) -> Program[list[list[Message]] | Missing]:
    """Each chunk's messages, checked against the count the manifest gives it."""
    bodies = yield from objects.get_all([c.key for c in found])
    gone = tuple(c.key for c, body in zip(found, bodies, strict=True) if body is None)
    if gone:
        return Missing(gone)
    with naming(ctx, session_id):
        return [
            decode_messages(body[0], f"chunk {chunk.key!r}", chunk.count)
            for chunk, body in zip(found, bodies, strict=True)
            if body is not None
        ]


def checkpoint_contents(
    ctx: Context, manifest: Manifest, ref: CheckpointRef
) -> Program[CheckpointState | Missing]:
    """A checkpoint's messages and metadata: its record, and its messages from its own copy
    or from the log, all in one parallel round; Missing if an object vanished."""
    parts = [] if ref.messages_key else manifest.chunks_for_prefix(ref.message_count)
    keys = [ref.key, *([ref.messages_key] if ref.messages_key else [c.key for c in parts])]
    found = yield from objects.get_all(keys)
    gone = tuple(k for k, body in zip(keys, found, strict=True) if body is None)
    if gone:
        return Missing(gone)
    bodies = [body[0] for body in found if body is not None]
    with naming(ctx, manifest.session_id):
        record = decode_checkpoint(bodies[0])
        if ref.messages_key:
            messages = decode_messages(bodies[1], f"checkpoint {ref.key!r}", ref.message_count)
        else:
            messages = []
            for chunk, body in zip(parts, bodies[1:], strict=True):
                messages += decode_messages(body, f"chunk {chunk.key!r}", chunk.count)
            messages = (messages + manifest.tail)[: ref.message_count]
    return messages, dict(record.metadata)


def checkpoint_body(checkpoint: CheckpointRecord) -> bytes:
    data = checkpoint.to_json()
    data["messages"] = None  # messages live in the log or in the checkpoint's own copy
    return dumps(data).encode()


def decode_checkpoint(body: bytes) -> CheckpointRecord:
    return CheckpointRecord.from_json(loads(body, "a checkpoint record"))


def conflict(ctx: Context, session_id: str) -> ConflictError:
    return ConflictError(
        f"session {session_id!r} in {ctx.url} kept changing during {ATTEMPTS} attempts"
    )


#: A marker whose session has no manifest is removed only once it is this old: a create may
#: be writing the manifest right now.
_ORPHAN_GRACE = 60.0

log = logging.getLogger(__name__)

#: What :func:`_head_or_skip` answers for a session whose manifest header is damaged.
_DAMAGED = "damaged"


def _head_or_skip(ctx: Context, session_id: str) -> Program[tuple[Manifest, str] | str | None]:
    """:func:`head`, but a damaged manifest is logged and answered :data:`_DAMAGED`, so that
    one damaged session leaves listing and purge working for every other."""
    try:
        return (yield from head(ctx, session_id))
    except CorruptSessionError as exc:
        log.warning("skipping a damaged session: %s", exc)
        return _DAMAGED


def fetch(ctx: Context, session_id: str, last: int | None) -> Program[SessionRecord | None]:
    for _ in range(ATTEMPTS):
        found = yield from read(ctx, session_id)
        if found is None:
            return None
        manifest, etag = found
        if last == 0:
            return manifest.record([])
        older = yield from chunks(ctx, session_id, manifest.chunks_for_tail(last))
        if isinstance(older, Missing):
            yield from vanished(ctx, session_id, etag, older)
            continue
        messages = older + manifest.tail
        if last is not None:
            messages = messages[max(0, len(messages) - last) :]
        return manifest.record(messages)
    raise conflict(ctx, session_id)


def delete(ctx: Context, session_id: str) -> Program[bool]:
    key = ctx.layout.manifest(session_id)
    found = yield from objects.get(key)
    ctx.cache.forget(session_id)
    if found is None:
        return False
    try:
        with naming(ctx, session_id):
            markers = Manifest.decode(found[0]).markers
    except CorruptSessionError as exc:  # a damaged session can still be deleted
        log.warning("deleting a damaged session: %s", exc)
        markers = []  # listing removes its markers once it finds no manifest
    yield from objects.delete_object(key)
    yield from objects.delete_prefix(ctx.layout.session_prefix(session_id))
    yield from objects.delete_keys(markers)
    return True


def list_page(
    ctx: Context, user_id: str | None, limit: int, after: tuple[float, str] | None, now: float
) -> Program[Sequence[SessionRecord]]:
    """Walk the index newest interval first, checking each marker against its session's
    manifest header (ranged GETs in parallel), until ``limit`` sessions are found and the
    interval they end in is complete."""
    base = ctx.layout.index_prefix if user_id is None else ctx.layout.user_prefix(user_id)
    start = ctx.layout.start_after(base, after[0]) if after else None
    found: dict[str, SessionRecord] = {}
    superseded: list[str] = []
    markers: list[Marker] = []
    token: str | None = None
    listed = False
    while len(found) < limit:  # later intervals hold only older sessions
        taken = take_interval(markers, max(limit, 32), final=listed)
        if taken is None:
            # A first page about twice the limit: most pages need no more, and a page of
            # 1,000 keys costs more to send and parse than the headers read for 50 sessions.
            size = None if markers or token else min(1000, max(64, 2 * limit))
            keys, token = yield from objects.list_page(base, start, token, size)
            markers += [m for m in (Layout.parse_marker(base, k) for k in keys) if m]
            listed = token is None
            continue
        group, markers = taken
        if not group:
            break
        heads = unwrap_all((yield Parallel([_head_or_skip(ctx, m.session_id) for m in group])))
        for marker, found_head in zip(group, heads, strict=True):
            if found_head == _DAMAGED:
                continue
            if found_head is None:
                if marker.updated_us < micros(now - _ORPHAN_GRACE):
                    superseded.append(marker.key)
                continue
            manifest = found_head[0]
            interval = ctx.layout.interval(manifest.updated_at)
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
    yield from objects.discard(superseded, "deleting superseded index markers")
    records = sorted(found.values(), key=lambda r: (r.updated_at, r.session_id), reverse=True)
    return records[:limit]


def take_interval(
    markers: list[Marker], size: int, *, final: bool
) -> tuple[list[Marker], list[Marker]] | None:
    """The next group of about ``size`` markers that ends with a whole index interval, and
    the rest; None if more must be listed to know where that interval ends (``final``: there
    is no more)."""
    for end in range(max(size, 1), len(markers)):
        if markers[end].updated_us != markers[end - 1].updated_us:
            return markers[:end], markers[end:]
    return (markers, []) if final else None


def _parse_any(layout: Layout, base: str, key: str) -> Marker | None:
    """A marker of the global index or of any user's index."""
    if base == layout.users_prefix:
        user_end = key.find("/", len(base))
        if user_end < 0:
            return None
        base = key[: user_end + 1]
    return Layout.parse_marker(base, key)


#: Purge's candidates: per session, the markers whose expiry bound has passed.
Due: TypeAlias = dict[str, list[Marker | ExpiryMarker]]


def _due_by_expiry(ctx: Context, now: float) -> Program[Due]:
    """The expiry index from its soonest bound up to ``now``: one LIST per 1,000 markers
    whose bound has passed (live sessions' markers come after them and are not read)."""
    due: Due = {}
    token: str | None = None
    while True:
        keys, token = yield from objects.list_page(ctx.layout.expiry_prefix, None, token)
        for key in keys:
            marker = ctx.layout.parse_expiry(key)
            if marker is None:
                continue
            if marker.expires_us > micros(now):
                return due
            due.setdefault(marker.session_id, []).append(marker)
        if token is None:
            return due


def _due_by_listing(ctx: Context, now: float) -> Program[Due]:
    """Every listing marker whose expiry bound has passed, from a LIST of both listing
    indexes. Sessions written before the expiry index existed are found only this way: the
    pass gives each session with a TTL its expiry marker (a candidate too, so that it goes
    with its session), then records that the index is complete."""
    due: Due = {}
    bounds: dict[str, int] = {}
    for base in (ctx.layout.index_prefix, ctx.layout.users_prefix):
        for key in (yield from objects.all_keys(base)):
            marker = _parse_any(ctx.layout, base, key)
            if marker is None or marker.expires_us is None:
                continue
            if base == ctx.layout.index_prefix:  # newest first: the first is the current one
                bounds.setdefault(marker.session_id, marker.expires_us)
            if marker.expires_us <= micros(now):
                due.setdefault(marker.session_id, []).append(marker)
    indexed = set((yield from objects.all_keys(ctx.layout.expiry_prefix)))
    backfill = [ExpiryMarker(ctx.layout.expiry_marker(s, b), s, b) for s, b in bounds.items()]
    yield from objects.put_all([(m.key, b"") for m in backfill if m.key not in indexed])
    for added in backfill:
        if added.session_id in due:
            due[added.session_id].append(added)
    yield from objects.put(ctx.layout.expiry_indexed, dumps({"since": now}).encode())
    return due


def _expiry_indexed(ctx: Context) -> Program[bool]:
    if not ctx.expiry_indexed:
        ctx.expiry_indexed = (yield from objects.get(ctx.layout.expiry_indexed)) is not None
    return ctx.expiry_indexed


def _superseded(ctx: Context, marker: Marker | ExpiryMarker, manifest: Manifest) -> bool:
    """Whether ``marker`` belongs to an earlier state of the live session ``manifest``:
    not one its writer recorded, and older than its state (bounds and interval starts only
    grow, so a marker a writer is adding right now is never taken for an old one)."""
    if marker.key in manifest.markers:
        return False
    if isinstance(marker, ExpiryMarker):
        bound = ctx.layout.expiry_bound(manifest.updated_at, manifest.ttl)
        return bound is None or marker.expires_us < bound
    return marker.updated_us < ctx.layout.interval(manifest.updated_at)


def _orphaned(ctx: Context, marker: Marker | ExpiryMarker, now: float) -> bool:
    """Whether ``marker``, whose session has no manifest, is old enough that no create can
    still be writing that manifest."""
    if isinstance(marker, ExpiryMarker):  # its bound is at least the update time's interval
        return marker.expires_us < micros(now - _ORPHAN_GRACE - ctx.layout.resolution)
    return marker.updated_us < micros(now - _ORPHAN_GRACE)


def _delete_unchanged(ctx: Context, session_id: str, etag: str) -> Program[bool]:
    """Delete the manifest if it is still the one with ``etag``; whether it was."""
    try:
        yield from objects.delete_object(ctx.layout.manifest(session_id), if_match=etag)
    except ClientError:  # refreshed (412) or deleted (404) since it was read
        return False
    ctx.cache.forget(session_id)
    return True


def purge(ctx: Context, now: float) -> Program[int]:
    """Find expired sessions by the expiry bound in marker keys (listing keys only): from
    the expiry index, read soonest first up to ``now``, once it is complete; before that,
    from the listing indexes. Confirm each from its manifest and delete them in batches."""
    if (yield from _expiry_indexed(ctx)):
        due = yield from _due_by_expiry(ctx, now)
    else:
        due = yield from _due_by_listing(ctx, now)
        ctx.expiry_indexed = True
    if not due:
        return 0
    session_ids = list(due)
    heads = unwrap_all((yield Parallel([_head_or_skip(ctx, s) for s in session_ids])))
    garbage: list[str] = []
    expired: list[tuple[str, Manifest, str]] = []
    for session_id, found in zip(session_ids, heads, strict=True):
        markers = due[session_id]
        if found == _DAMAGED:
            continue
        if found is None:
            garbage += [m.key for m in markers if _orphaned(ctx, m, now)]
        elif not found[0].expired(now):
            garbage += [m.key for m in markers if _superseded(ctx, m, found[0])]
        else:
            expired.append((session_id, *found))
    deletes = [_delete_unchanged(ctx, session_id, etag) for session_id, _, etag in expired]
    purged: list[str] = []
    for (session_id, manifest, _), deleted in zip(
        expired, unwrap_all((yield Parallel(deletes))), strict=True
    ):
        if deleted:
            purged.append(session_id)
            garbage += [m.key for m in due[session_id]] + manifest.markers
    prefixes = [ctx.layout.session_prefix(s) for s in purged]
    for keys in unwrap_all((yield Parallel([objects.all_keys(p) for p in prefixes]))):
        garbage += keys
    yield from objects.delete_keys(garbage)
    return len(purged)


def checkpoints(
    ctx: Context, session_id: str, now: float
) -> Program[list[CheckpointRecord] | None]:
    for _ in range(ATTEMPTS):
        try:
            manifest, etag = yield from live_manifest(ctx, session_id, now)
        except SessionNotFound:
            return None
        keys = [c.key for c in manifest.checkpoints]
        found = yield from objects.get_all(keys)
        gone = tuple(k for k, body in zip(keys, found, strict=True) if body is None)
        if gone:
            yield from vanished(ctx, session_id, etag, Missing(gone))
            continue
        with naming(ctx, session_id):
            records = [decode_checkpoint(body[0]) for body in found if body is not None]
        return sorted(records, key=lambda c: c.number)
    raise conflict(ctx, session_id)


def checkpoint_state(
    ctx: Context, session_id: str, number: int, now: float
) -> Program[CheckpointState]:
    for _ in range(ATTEMPTS):
        manifest, etag = yield from live_manifest(ctx, session_id, now)
        ref = manifest.find_checkpoint(number)
        if ref is None:
            raise CheckpointNotFound(session_id, number)
        state = yield from checkpoint_contents(ctx, manifest, ref)
        if not isinstance(state, Missing):
            return state
        yield from vanished(ctx, session_id, etag, state)
    raise conflict(ctx, session_id)
