"""Reading manifests, chunks and checkpoints: the programs every operation builds on.

A chunk or checkpoint object can vanish between reading the manifest that names it and
reading it (a concurrent rewrite replaced it); these programs answer :class:`Missing` then,
and the operation calls :func:`vanished`: if the manifest has not changed since, the object
is gone for good and the session is damaged (CorruptSessionError naming it and the object);
otherwise the operation reads the manifest again.

Whatever cannot be decoded raises CorruptSessionError naming the session.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from botocore.exceptions import ClientError

from ailib.errors import CorruptSessionError, SessionNotFound
from ailib.spi import CheckpointRecord, CheckpointState, Message, dumps, loads
from ailib_store_s3 import objects
from ailib_store_s3.client import error_code
from ailib_store_s3.context import Context
from ailib_store_s3.manifest import HEADER_PROBE, CheckpointRef, Chunk, Manifest, decode_messages
from ailib_store_s3.steps import Program

__all__ = (
    "Missing",
    "checkpoint_body",
    "checkpoint_contents",
    "chunks",
    "chunks_each",
    "current",
    "damaged",
    "decode_checkpoint",
    "head",
    "live_manifest",
    "naming",
    "read",
    "vanished",
)


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
