"""The writing operations as programs: each a conditional-write loop on the manifest.

Every change is a conditional PUT of the manifest (``If-Match`` its ETag, ``If-None-Match:
*`` to create), so concurrent writers never lose an update: the loser of a race re-reads,
backs off and tries again. New chunks and checkpoints are written first under unique keys,
so a lost race leaves nothing the winner references.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from functools import partial

from ailib.errors import CheckpointNotFound, ConflictError, SessionNotFound
from ailib.spi import Change, CheckpointRecord, Message, SessionRecord, common_prefix
from ailib_store_s3 import objects
from ailib_store_s3.commit import (
    already_committed,
    commit,
    lost,
    materialize,
    stale,
    write_and_commit,
)
from ailib_store_s3.context import Context, Op
from ailib_store_s3.groupcommit import Pending, fail
from ailib_store_s3.layout import new_token
from ailib_store_s3.manifest import CheckpointRef, Manifest, Write, encode_messages, storable
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
from ailib_store_s3.steps import Program

__all__ = ("apply", "checkpoint", "create", "pop", "replace", "restore")


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
        messages = [m for p in batch for m in p.change.change.append]
        merge = yield from _merge_inputs(ctx, manifest, messages)
        if isinstance(merge, Missing):  # a chunk vanished: a concurrent rewrite, or damage
            yield from vanished(ctx, session_id, etag, merge)
            continue
        new = manifest.clone()
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
