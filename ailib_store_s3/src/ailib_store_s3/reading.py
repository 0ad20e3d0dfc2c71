"""Reading manifests, chunks and checkpoints: the programs every operation builds on.

A chunk or checkpoint object can vanish between reading the manifest that names it and
reading it (a concurrent rewrite replaced it); these programs answer None then, and the
operation reads the manifest again.
"""

from __future__ import annotations

from collections.abc import Sequence

from ailib.codec import dumps, loads
from ailib.errors import SessionNotFound
from ailib.messages import Message
from ailib.records import CheckpointRecord
from ailib.storecore import CheckpointState
from ailib_store_s3 import objects
from ailib_store_s3.context import Context
from ailib_store_s3.manifest import CheckpointRef, Chunk, Manifest, decode_messages
from ailib_store_s3.steps import Program

__all__ = (
    "checkpoint_body",
    "checkpoint_contents",
    "chunks",
    "chunks_each",
    "current",
    "decode_checkpoint",
    "head",
    "live_manifest",
    "read",
)

#: Bytes of the manifest that listing reads (its header line, in all but odd cases).
HEADER_BYTES = 16 * 1024


def read(ctx: Context, session_id: str) -> Program[tuple[Manifest, str] | None]:
    """The stored manifest and its ETag (one GET); None if there is none."""
    got = yield from objects.get(ctx.layout.manifest(session_id))
    if got is None:
        ctx.cache.forget(session_id)
        return None
    manifest = Manifest.decode(got[0])
    ctx.cache.remember(session_id, got[1], manifest)
    return manifest, got[1]


def head(ctx: Context, session_id: str) -> Program[tuple[Manifest, str] | None]:
    """The manifest's header (no tail) with one ranged GET; None if there is none."""
    key = ctx.layout.manifest(session_id)
    got = yield from objects.get(key, f"bytes=0-{HEADER_BYTES - 1}")
    if got is None:
        return None
    manifest = Manifest.decode_header(got[0])
    if manifest is None:  # a header longer than the range: read it all
        full = yield from objects.get(key)
        if full is None:
            return None
        return Manifest.decode(full[0]), full[1]
    return manifest, got[1]


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


def chunks(found: Sequence[Chunk]) -> Program[list[Message] | None]:
    """The messages of ``found`` in order (parallel GETs); None if one has vanished."""
    each = yield from chunks_each(found)
    return None if each is None else [m for messages in each for m in messages]


def chunks_each(found: Sequence[Chunk]) -> Program[list[list[Message]] | None]:
    bodies = yield from objects.get_all([c.key for c in found])
    if any(body is None for body in bodies):
        return None
    return [
        decode_messages(body[0], f"chunk {chunk.key!r}")
        for chunk, body in zip(found, bodies, strict=True)
        if body is not None
    ]


def checkpoint_contents(manifest: Manifest, ref: CheckpointRef) -> Program[CheckpointState | None]:
    """A checkpoint's messages and metadata: its record, and its messages from its own copy
    or from the log, all in one parallel round; None if an object vanished."""
    parts = [] if ref.messages_key else manifest.chunks_for_prefix(ref.message_count)
    keys = [ref.key, *([ref.messages_key] if ref.messages_key else [c.key for c in parts])]
    found = yield from objects.get_all(keys)
    bodies = [body[0] for body in found if body is not None]
    if len(bodies) != len(found):
        return None
    record = decode_checkpoint(bodies[0])
    if ref.messages_key:
        messages = decode_messages(bodies[1], f"checkpoint {ref.key!r}")
    else:
        messages = []
        for chunk, body in zip(parts, bodies[1:], strict=True):
            messages += decode_messages(body, f"chunk {chunk.key!r}")
        messages = (messages + manifest.tail)[: ref.message_count]
    return messages, dict(record.metadata)


def checkpoint_body(checkpoint: CheckpointRecord) -> bytes:
    data = checkpoint.to_json()
    data["messages"] = None  # messages live in the log or in the checkpoint's own copy
    return dumps(data).encode()


def decode_checkpoint(body: bytes) -> CheckpointRecord:
    return CheckpointRecord.from_json(loads(body, "stored checkpoint"))
