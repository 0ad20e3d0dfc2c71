"""The writing operations as programs, each a conditional-write loop on the manifest, and
that loop's steps.

Every change is a conditional PUT of the manifest (``If-Match`` its ETag, ``If-None-Match:
*`` to create), so concurrent writers never lose an update: the loser of a race re-reads,
backs off and tries again. New chunks and checkpoints are written first under unique keys,
so a lost race leaves nothing the winner references. The manifest is written with the index
markers its state needs; a write that looked lost but was applied is recognised by its
commit id; what a won write left unused is deleted off the caller's path. Appends go
through the store's group commit (:mod:`ailib_store_s3.context`).
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Literal

from botocore.exceptions import ClientError

from ailib.errors import CheckpointNotFound, ConflictError, SessionNotFound, StoreUnavailable
from ailib.spi import Change, CheckpointRecord, Message, SessionRecord, common_prefix, note_retry
from ailib_store_s3 import objects
from ailib_store_s3.client import is_missing, is_precondition_failed, retried
from ailib_store_s3.context import Context, Op, Pending, fail
from ailib_store_s3.manifest import (
    CheckpointRef,
    Manifest,
    Write,
    encode_messages,
    new_token,
    storable,
)
from ailib_store_s3.objects import Failed, Parallel, Program, Sleep, unwrap
from ailib_store_s3.reads import (
    ATTEMPTS,
    Missing,
    checkpoint_body,
    checkpoint_contents,
    chunks,
    chunks_each,
    conflict,
    current,
    live_manifest,
    read,
    vanished,
)

__all__ = (
    "Outcome",
    "already_committed",
    "apply",
    "checkpoint",
    "commit",
    "create",
    "lost",
    "materialize",
    "pop",
    "replace",
    "restore",
    "stale",
    "write_and_commit",
)


#: Full-jitter exponential backoff after a lost conditional write (seconds). The cap is
#: long enough that writers which keep losing to others wait out a run of their writes:
#: the writer that won last then writes again from its cache with one PUT, where with a
#: 100 ms cap 8 processes on one session lost about 1.3 races per append, each costing a
#: GET and a PUT (docs/stores/s3.md gives the figures).
_BACKOFF_BASE, _BACKOFF_CAP = 0.005, 0.3
#: Write turns: a writer that wins a session's manifest after losing races to it takes a
#: turn of ``TURN_STEP`` seconds per race lost after the first, up to ``TURN``; after
#: waiting on another writer's turn, a whole ``TURN``. Until the turn ends, other writers of
#: the session sleep instead of racing, so the holder appends with one PUT each; the turn
#: then passes to whichever waiter wins next. A turn is a hint in the manifest, never a
#: lock: every write is still conditional, and no writer waits longer than one ``TURN`` on
#: a turn it read. One lost race is what any stale cache costs, so it takes no turn: a lone
#: writer, or writers that take turns of their own accord, never wait on one.
TURN = 0.3
TURN_STEP = 0.05
#: A waiter wakes up to this much (seconds) after the turn it waited on ends, at random, so
#: that the waiters do not all race at once; a writer whose turn has ended waits as much.
_TURN_JITTER = 0.05
#: Reads that try to find out whether a manifest PUT whose answer was lost was applied.
_CHECKS = 4
#: How long a write whose reply was lost keeps looking for its outcome before it gives up.
_CHECK_FOR = 10.0


@dataclass
class Outcome:
    """What a conditional manifest write did: its new ETag if it won."""

    etag: str | None
    ambiguous: bool = False

    def __bool__(self) -> bool:
        return self.etag is not None


def _put_manifest(ctx: Context, manifest: Manifest, etag: str | None) -> Program[Outcome]:
    """The conditional PUT. When it fails without an answer that says what happened (a
    dropped connection, a timeout, 5xx answers, possibly after botocore's retries), S3 may
    have applied it: the manifest is read back until it shows whether this write's commit
    id is in it, and only a write known not to have been applied raises."""
    key = ctx.layout.manifest(manifest.session_id)
    body = manifest.encode()
    try:
        new_etag = yield from objects.put(key, body, if_match=etag, create=etag is None)
    except ClientError as exc:
        if not (is_precondition_failed(exc) or is_missing(exc)):
            raise ctx.error(exc, "PutObject") from exc
        # A 412 after botocore retried (a 500, a timeout) may answer our own first try.
        return Outcome(None, ambiguous=retried(exc))
    except StoreUnavailable as exc:
        landed = yield from _landed(ctx, manifest, etag)
        if landed is None:
            raise StoreUnavailable(
                f"{exc}; whether the write to session {manifest.session_id!r} was applied "
                "could not be found out either (the store did not answer): load the session "
                "to see, or retry with the same idempotency key"
            ) from exc
        if not landed:
            raise StoreUnavailable(
                f"{exc}; the write to session {manifest.session_id!r} was not applied "
                "(checked): it is safe to retry"
            ) from exc
        return Outcome(landed)
    return Outcome(new_etag)


def _landed(
    ctx: Context, manifest: Manifest, etag: str | None
) -> Program[str | Literal[False] | None]:
    """Whether ``manifest`` (its newest commit id), PUT on condition ``etag``, is what is
    stored: the stored ETag if so, False if not, None if the store could not be read.

    Not finding it is not enough: the PUT may still be on its way (held by a proxy, queued,
    or one of botocore's retries). So while the stored manifest is still the one it was
    conditioned on, it is first rewritten under a fresh commit token (a *fence*): from then
    on that PUT fails its If-Match, and False is the truth."""
    commit_id = manifest.commits[-1][0]
    for attempt in _patiently():
        try:
            found = yield from read(ctx, manifest.session_id)
            if found is not None and found[0].committed(commit_id) is not None:
                return found[1]
            if found is not None and etag is not None and found[1] == etag:
                yield from _fence(ctx, found[0], etag)
        except StoreUnavailable:
            yield from lost(ctx, manifest.session_id, attempt + 4)
            continue
        except ClientError as exc:
            if not is_precondition_failed(exc):
                raise ctx.error(exc, "PutObject") from exc
            # The manifest changed under the fence: perhaps our PUT landed; look again.
            continue
        ctx.cache.forget(manifest.session_id)
        return False
    return None


def _patiently() -> Iterator[int]:
    """Attempt numbers (from 1) for finding out a lost write's outcome: at least
    ``_CHECKS`` of them, and more until ``_CHECK_FOR`` seconds have passed."""
    deadline = time.monotonic() + _CHECK_FOR
    attempt = 0
    while attempt < _CHECKS or time.monotonic() < deadline:
        attempt += 1
        yield attempt


def _fence(ctx: Context, stored: Manifest, etag: str) -> Program[None]:
    """Rewrite ``stored`` unchanged but for a fresh commit token, on condition ``etag``, so
    that no PUT conditioned on ``etag`` can apply any more."""
    ctx.cache.forget(stored.session_id)  # the cache holds ``stored``, about to change
    stored.note(new_token())
    yield from objects.put(ctx.layout.manifest(stored.session_id), stored.encode(), if_match=etag)


def commit(
    ctx: Context,
    manifest: Manifest,
    etag: str | None,
    old_markers: Sequence[str],
    tried: set[str],
) -> Program[Outcome]:
    """Conditionally PUT ``manifest`` (If-Match ``etag``; If-None-Match when None) with any
    index markers its new state needs, in parallel.

    A marker changes only when the update time enters a new index interval, so most writes
    are the manifest PUT alone. ``tried`` collects the markers this operation has written;
    after a win, those the winning state does not use are deleted, with the superseded
    ones, off the caller's path.
    """
    session_id = manifest.session_id
    manifest.markers = ctx.layout.markers(
        session_id, manifest.user_id, manifest.updated_at, manifest.ttl
    )
    new_markers = [k for k in manifest.markers if k not in old_markers]
    tried.update(new_markers)
    puts = [objects.put(k, b"") for k in new_markers]
    written, *marked = unwrap((yield Parallel([_put_manifest(ctx, manifest, etag), *puts])))
    outcome: Outcome = unwrap(written)  # a failed marker PUT must not fail a stored change
    if outcome.etag is not None:
        ctx.cache.remember(session_id, outcome.etag, manifest)
        failed = [k for k, m in zip(new_markers, marked, strict=True) if isinstance(m, Failed)]
        if failed:  # the change is stored: its index markers are written again, off the path
            yield from objects.later(objects.put_all([(k, b"") for k in failed]), "indexing")
        unused = (tried | set(old_markers)) - set(manifest.markers)
        yield from objects.discard(sorted(unused), "updating the index")
    return outcome


def lost(ctx: Context, session_id: str, attempt: int) -> Program[None]:
    """After a lost conditional write: forget the stale manifest and back off."""
    ctx.cache.forget(session_id)
    note_retry()
    unwrap(
        (yield Sleep(random.uniform(0, min(_BACKOFF_CAP, _BACKOFF_BASE * 2 ** min(attempt, 10)))))
    )


def _turn_wait(
    ctx: Context,
    manifest: Manifest,
    now: float,
    waited_on: tuple[str, float] | None,
    turns_waited: int,
) -> float:
    """How long to sleep before writing on ``manifest``: until another writer's turn ends,
    or, if this store's own turn has ended, a moment to let a waiter in. A writer waits on
    each turn once (``waited_on``), and ignores a turn that would end further off than a
    whole ``TURN`` (its holder's clock is ahead of this one's). The more turns a change
    has waited out, the sooner after the end of the next one it wakes: it is likelier to
    be first, so no writer starves."""
    turn = manifest.turn
    if turn is None or turn == waited_on:
        return 0.0
    writer, until = turn
    if writer == ctx.writer:
        return random.uniform(0, _TURN_JITTER) if until <= now else 0.0
    if now < until <= now + TURN:
        return until - now + random.uniform(0, _TURN_JITTER) / (1 + turns_waited)
    return 0.0


def _next_turn(ctx: Context, manifest: Manifest, now: float, losses: int, waited: bool) -> None:
    """Set the turn ``manifest`` (about to be written) carries: this store's, if its write
    lost races in a row (a longer turn the more) or waited on another writer's turn (a
    whole one); else this store's live turn, kept; else none."""
    if waited or losses > 1:
        length = TURN if waited else min(TURN, TURN_STEP * (losses - 1))
        manifest.turn = (ctx.writer, now + length)
    elif manifest.turn is not None and (manifest.turn[0] != ctx.writer or manifest.turn[1] <= now):
        manifest.turn = None


def already_committed(
    ctx: Context, outcome: Outcome, session_id: str, commit_id: str
) -> Program[bool]:
    """Whether a write that looked lost was applied after all (a PUT retried by botocore
    whose first try succeeded answers 412)."""
    if not outcome.ambiguous:
        return False
    for attempt in _patiently():
        try:
            fresh = yield from read(ctx, session_id)
        except StoreUnavailable:
            yield from lost(ctx, session_id, attempt + 4)
            continue
        return fresh is not None and fresh[0].committed(commit_id) is not None
    raise StoreUnavailable(
        f"whether the write to session {session_id!r} in {ctx.url} was applied could not be "
        "found out (the store did not answer): load the session to see, or retry with the "
        "same idempotency key"
    )


def write_and_commit(
    ctx: Context,
    old: Manifest,
    new: Manifest,
    etag: str,
    writes: Sequence[Write],
    tried: set[str],
    commit_id: str,
    attempt: int,
) -> Program[bool]:
    """PUT the new objects, then the manifest; on a win, delete what ``old`` referenced and
    ``new`` does not; on a loss (the ``attempt``-th), delete what was written and back off."""
    yield from objects.put_all(writes)
    outcome = yield from commit(ctx, new, etag, old.markers, tried)
    if not outcome and not (yield from already_committed(ctx, outcome, new.session_id, commit_id)):
        yield from objects.discard([w[0] for w in writes])
        yield from lost(ctx, new.session_id, attempt)
        return False
    kept = {c.key for c in new.chunks} | {c.messages_key for c in new.checkpoints}
    garbage = [c.key for c in old.chunks if c.key not in kept]
    garbage += [
        c.messages_key for c in old.checkpoints if c.messages_key and c.messages_key not in kept
    ]
    yield from objects.discard(garbage)
    return True


def materialize(manifest: Manifest, log: Sequence[Message], keep: int) -> list[Write]:
    """Copy-on-write: give each pointer checkpoint that a rewrite keeping ``keep`` messages
    would break its own copy of its messages."""
    writes: list[Write] = []
    for ref in manifest.checkpoints:
        if ref.messages_key is None and ref.message_count > keep:
            ref.messages_key = f"{ref.key}-messages-{new_token()}"
            writes.append((ref.messages_key, encode_messages(log[: ref.message_count])))
    return writes


def stale(ctx: Context, session_id: str, version: int, expected: int | None) -> ConflictError:
    return ConflictError(
        f"session {session_id!r} in {ctx.url} is at version {version}, not {expected}: "
        "someone else changed it; reload and try again"
    )


def create(ctx: Context, record: SessionRecord) -> Program[None]:
    manifest = Manifest.new(record)
    session_id = record.session_id
    writes = manifest.rewrite(0, record.messages, ctx.layout)
    for saved in record.checkpoints:
        key = ctx.layout.checkpoint(session_id, manifest.gen, saved.number)
        ref = CheckpointRef(saved.number, key, saved.message_count)
        writes.append((key, checkpoint_body(saved)))
        if saved.messages is not None:
            ref.messages_key = f"{key}-messages"
            writes.append((ref.messages_key, encode_messages(saved.messages)))
        manifest.checkpoints.append(ref)
    commit_id = new_token()
    manifest.note(commit_id)
    tried: set[str] = set()
    yield from objects.put_all(writes)
    for _ in range(ATTEMPTS):
        outcome = yield from commit(ctx, manifest, None, (), tried)
        if outcome or (yield from already_committed(ctx, outcome, session_id, commit_id)):
            return
        found = yield from read(ctx, session_id)
        if found is None:
            continue
        existing, etag = found
        if not existing.expired(record.updated_at):
            unused = [w[0] for w in writes] + sorted(tried - set(existing.markers))
            yield from objects.discard(unused)
            raise ConflictError(
                f"session {session_id!r} already exists in {ctx.url}; "
                "load it, or create one with another id"
            )
        if (yield from commit(ctx, manifest, etag, existing.markers, tried)):
            old = ctx.layout.generation_prefix(session_id, existing.gen)
            yield from objects.later(objects.delete_prefix(old), "deleting an expired session")
            return
    raise conflict(ctx, session_id)


def apply(ctx: Context, session_id: str, change: Change, now: float) -> Program[int]:
    """Group commit: concurrent changes to one session from this store go out in one
    manifest write (each still gets its own version and expected-version check). Each
    attempt of the write takes its own time, not ``now``: a batch may wait for its turn.

    Each change carries an op id (the core's ``change.op_id``, else a fresh one): a change
    whose op id the manifest already records is not applied again, and answers the version
    its first application produced."""
    storable(change.append, session_id)
    op_id = change.op_id or new_token()
    return (
        yield from ctx.group.submit(
            session_id, Op(op_id, change), partial(_apply_batch, ctx, session_id)
        )
    )


def _merge_inputs(
    ctx: Context, manifest: Manifest, messages: Sequence[Message]
) -> Program[dict[str, list[Message]] | Missing]:
    """The chunks an append that seals the tail merges with, by key (one parallel read,
    only on the append that fills the tail); Missing if one has vanished."""
    if not messages or not manifest.will_seal(messages):
        return {}
    candidates = manifest.merge_candidates()
    contents = yield from chunks_each(ctx, manifest.session_id, candidates)
    if isinstance(contents, Missing):
        return contents
    return {c.key: m for c, m in zip(candidates, contents, strict=True)}


def _apply_batch(ctx: Context, session_id: str, batch: Sequence[Pending[Op]]) -> Program[None]:
    """Apply ``batch`` with one conditional write. A waiter is given its version only once
    the write that carries its change is known to be stored; if the write fails, every
    waiter of the batch gets the error (the group commit sees to that)."""
    commit_id = new_token()
    tried: set[str] = set()
    losses = turns_waited = 0
    waited_on: tuple[str, float] | None = None
    for attempt in range(ATTEMPTS):
        found = yield from current(ctx, session_id)
        if found is None:
            fail(batch, SessionNotFound(session_id, ctx.url))
            return
        manifest, etag, fresh = found
        now = time.time()
        if manifest.expired(now):
            if not fresh:
                ctx.cache.forget(session_id)
                continue
            fail(batch, SessionNotFound(session_id, ctx.url))
            return
        wait = _turn_wait(ctx, manifest, now, waited_on, turns_waited)
        if wait:
            waited_on = manifest.turn
            turns_waited += waited_on is not None and waited_on[0] != ctx.writer
            ctx.cache.forget(session_id)
            unwrap((yield Sleep(wait)))
            continue
        messages = [m for p in batch for m in p.change.change.append]
        merge = yield from _merge_inputs(ctx, manifest, messages)
        if isinstance(merge, Missing):  # a chunk vanished: a concurrent rewrite, or damage
            yield from vanished(ctx, session_id, etag, merge)
            continue
        new = manifest.clone()
        _next_turn(ctx, new, now, losses, turns_waited > 0)
        writes: list[Write] = []
        results: list[tuple[Pending[Op], int]] = []  # applied before, or by this write
        refused: list[tuple[Pending[Op], int]] = []
        for pending in batch:
            op_id, change = pending.change
            known = new.applied(op_id)
            if known is not None:
                results.append((pending, known))
                continue
            if change.expected_version not in (None, new.version):
                refused.append((pending, new.version))
                continue
            if change.append:
                writes += new.append(change.append, ctx.layout, merge)
            new.metadata = change.apply_metadata(new.metadata)
            new.touch(now, change.ttl)
            new.version += 1
            new.record_op(op_id, new.version)
            results.append((pending, new.version))
        if refused and not fresh:  # the cached manifest may be what is stale
            ctx.cache.forget(session_id)
            continue
        if new.version != manifest.version:
            new.note(commit_id)
            yield from objects.put_all(writes)
            outcome = yield from commit(ctx, new, etag, manifest.markers, tried)
            if not outcome and not (
                yield from already_committed(ctx, outcome, session_id, commit_id)
            ):
                yield from objects.discard([w[0] for w in writes])
                yield from lost(ctx, session_id, attempt)
                losses += 1
                continue
            merged = {c.key for c in manifest.chunks} - {c.key for c in new.chunks}
            yield from objects.discard(sorted(merged), "deleting merged chunks")
        for pending, version in results:
            pending.version = version
        for pending, version in refused:
            pending.error = stale(ctx, session_id, version, pending.change.change.expected_version)
        return
    fail(batch, conflict(ctx, session_id))


def _writable(
    ctx: Context, session_id: str, now: float
) -> Program[tuple[Manifest, str, bool] | None]:
    """The manifest to base a write on; None to try again (a cached one that turned out
    expired); SessionNotFound if there is no live session."""
    found = yield from current(ctx, session_id)
    if found is None:
        raise SessionNotFound(session_id, ctx.url)
    if found[0].expired(now):
        if not found[2]:
            ctx.cache.forget(session_id)
            return None
        raise SessionNotFound(session_id, ctx.url)
    return found


def _rewritten(
    ctx: Context, manifest: Manifest, log: list[Message], keep: int, messages: Sequence[Message]
) -> tuple[Manifest, list[Write]]:
    """A copy of ``manifest`` whose log becomes ``messages`` (the first ``keep`` equal to
    ``log``'s), and the objects to write first: copies for checkpoints the rewrite would
    break, and the new chunks."""
    new = manifest.clone()
    writes = materialize(new, log, keep)
    writes += new.rewrite(keep, messages, ctx.layout)
    return new, writes


def replace(ctx: Context, record: SessionRecord, expected_version: int, now: float) -> Program[int]:
    session_id = record.session_id
    commit_id = new_token()
    tried: set[str] = set()
    for attempt in range(ATTEMPTS):
        found = yield from _writable(ctx, session_id, now)
        if found is None:
            continue
        manifest, etag, fresh = found
        if manifest.version != expected_version:
            if not fresh:
                ctx.cache.forget(session_id)
                continue
            raise stale(ctx, session_id, manifest.version, expected_version)
        old = yield from chunks(ctx, session_id, manifest.chunks)
        if isinstance(old, Missing):
            yield from vanished(ctx, session_id, etag, old)
            continue
        old += manifest.tail
        new, writes = _rewritten(
            ctx, manifest, old, common_prefix(old, record.messages), record.messages
        )
        new.metadata = dict(record.metadata)
        new.touch(now, record.ttl)
        new.commit(commit_id)
        won = yield from write_and_commit(
            ctx, manifest, new, etag, writes, tried, commit_id, attempt
        )
        if won:
            return new.version
        now = time.time()
    raise conflict(ctx, session_id)


def pop(ctx: Context, session_id: str, count: int, now: float) -> Program[list[Message]]:
    """Truncate the log in one read and one conditional write (chunks wholly kept are
    reused; checkpoints that cover the removed messages get their copy first)."""
    commit_id = new_token()
    tried: set[str] = set()
    for attempt in range(ATTEMPTS):
        found = yield from _writable(ctx, session_id, now)
        if found is None:
            continue
        manifest, etag, _ = found
        if manifest.count == 0:
            return []
        older = yield from chunks(ctx, session_id, manifest.chunks)
        if isinstance(older, Missing):
            yield from vanished(ctx, session_id, etag, older)
            continue
        old = older + manifest.tail
        keep = max(0, len(old) - count)
        new, writes = _rewritten(ctx, manifest, old, keep, old[:keep])
        new.touch(now, None)
        new.commit(commit_id)
        won = yield from write_and_commit(
            ctx, manifest, new, etag, writes, tried, commit_id, attempt
        )
        if won:
            return old[keep:]
        now = time.time()
    raise conflict(ctx, session_id)


def checkpoint(ctx: Context, session_id: str, label: str | None, now: float) -> Program[int]:
    commit_id = new_token()
    tried: set[str] = set()
    for attempt in range(ATTEMPTS):
        found = yield from _writable(ctx, session_id, now)
        if found is None:
            continue
        manifest, etag, _ = found
        new = manifest.clone()
        number = new.next_checkpoint_number()
        key = ctx.layout.checkpoint(session_id, new.gen, number)
        record = CheckpointRecord(number, now, new.count, dict(new.metadata), label)
        new.checkpoints.append(CheckpointRef(number, key, new.count))
        new.commit(commit_id)
        writes = [(key, checkpoint_body(record))]
        won = yield from write_and_commit(
            ctx, manifest, new, etag, writes, tried, commit_id, attempt
        )
        if won:
            return number
        now = time.time()
    raise conflict(ctx, session_id)


def restore(ctx: Context, session_id: str, number: int, now: float) -> Program[int]:
    commit_id = new_token()
    tried: set[str] = set()
    for attempt in range(ATTEMPTS):
        manifest, etag = yield from live_manifest(ctx, session_id, now)
        target = manifest.find_checkpoint(number)
        if target is None:
            raise CheckpointNotFound(session_id, number)
        older = yield from chunks(ctx, session_id, manifest.chunks)
        if isinstance(older, Missing):
            yield from vanished(ctx, session_id, etag, older)
            continue
        state = yield from checkpoint_contents(ctx, manifest, target)
        if isinstance(state, Missing):
            yield from vanished(ctx, session_id, etag, state)
            continue
        old = older + manifest.tail
        messages, metadata = state
        keep = target.message_count if target.messages_key is None else common_prefix(old, messages)
        new = manifest.clone()
        before = new.next_checkpoint_number()
        key = ctx.layout.checkpoint(session_id, new.gen, before)
        saved = CheckpointRecord(
            before, now, len(old), dict(manifest.metadata), f"before restore to {number}"
        )
        new.checkpoints.append(CheckpointRef(before, key, len(old)))
        writes = [(key, checkpoint_body(saved))]
        writes += materialize(new, old, keep)
        writes += new.rewrite(keep, messages, ctx.layout)
        new.metadata = dict(metadata)
        new.touch(now, None)
        new.commit(commit_id)
        won = yield from write_and_commit(
            ctx, manifest, new, etag, writes, tried, commit_id, attempt
        )
        if won:
            return new.version
        now = time.time()
    raise conflict(ctx, session_id)
