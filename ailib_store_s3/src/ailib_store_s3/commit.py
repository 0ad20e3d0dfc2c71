"""The conditional-write loop's steps: writing a manifest with If-Match / If-None-Match and
the index markers its state needs, recognising a write that looked lost but was applied,
backing off after a lost race, and deleting what a won write left unused.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

from botocore.exceptions import ClientError

from ailib.errors import ConflictError, StoreUnavailable
from ailib.spi import Message
from ailib_store_s3 import objects
from ailib_store_s3.client import is_missing, is_precondition_failed, retried
from ailib_store_s3.context import Context
from ailib_store_s3.layout import new_token
from ailib_store_s3.manifest import Manifest, Write, encode_messages
from ailib_store_s3.reads import read
from ailib_store_s3.steps import Failed, Parallel, Program, Sleep, unwrap

__all__ = (
    "Outcome",
    "already_committed",
    "commit",
    "lost",
    "materialize",
    "stale",
    "write_and_commit",
)

#: Full-jitter exponential backoff after a lost conditional write (seconds).
_BACKOFF_BASE, _BACKOFF_CAP = 0.005, 0.1
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
    unwrap(
        (yield Sleep(random.uniform(0, min(_BACKOFF_CAP, _BACKOFF_BASE * 2 ** min(attempt, 10)))))
    )


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
