"""The layout of a store's objects (:class:`Layout`: where each piece of a session lives in
the bucket) and the manifest: one small object per session that says where everything is.

Keys are pure functions of the store's prefix and namespace. Everything of one session
lives under ``{root}s/{id}/``; listing indexes live under ``{root}idx/`` (every session)
and ``{root}u/{user}/`` (sessions of one user), as empty marker objects whose keys encode
an inverted update time, so that S3's ascending key order is newest-first.

    {root}s/{id}/manifest                      the session (header line + tail line)
    {root}s/{id}/g/{gen}/c/{start}-{token}     a sealed chunk of the message log
    {root}s/{id}/g/{gen}/cp/{number}-{token}   a checkpoint
    {root}idx/{inverted updated}/{id}/{expires}
    {root}u/{user}/{inverted updated}/{id}/{expires}
    {root}exp/{expires}/{id}                   the expiry index (sessions with a TTL)

``gen`` changes when a session is created (again), so the objects of a deleted or expired
predecessor can be removed by prefix without touching the new one's.

Marker times are rounded down to ``resolution`` seconds (1 s by default): a session's marker
changes only when its update time enters a new interval, so a burst of appends rewrites the
manifest alone. Listing therefore reads every marker of an interval and orders them by the
exact times in the manifests. The expiry in a marker key is the interval start plus the TTL:
never later than the real expiry, so purge can pick candidates from keys alone, reading the
expiry index (sorted by that bound) only up to the present.

The manifest's first line is the header (id, kind, metadata, version, times, the list of
sealed chunks, the checkpoints, the session's current index markers, the write turn if
any); its second line is the *tail*: the newest messages, kept inline so that an append
rewrites only the manifest, never the history. When the tail outgrows :data:`TAIL_BYTES`
it is sealed into a chunk object and the manifest keeps the chunk's key and, inline, the
tail's newest few messages. Listing reads just the header line (a ranged GET).

Everything here is pure (no I/O): the sync store and its async twin share it.
"""

from __future__ import annotations

import base64
import copy
import dataclasses
import json
import math
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ailib.errors import CorruptSessionError, InvalidMessage
from ailib.spi import Message, SessionRecord, dumps, loads

__all__ = (
    "MAX_LEVEL",
    "OPS_KEPT",
    "TAIL_BYTES",
    "TAIL_KEPT_BYTES",
    "TAIL_KEPT_MESSAGES",
    "TAIL_MESSAGES",
    "CheckpointRef",
    "Chunk",
    "ExpiryMarker",
    "Layout",
    "Manifest",
    "Marker",
    "Write",
    "micros",
    "new_token",
)


_TIME_DIGITS = 16
_TIME_MAX = 10**_TIME_DIGITS - 1


def micros(timestamp: float) -> int:
    """A POSIX timestamp as whole microseconds: the resolution of index keys."""
    return round(timestamp * 1_000_000)


def new_token() -> str:
    """A short random token that makes an object key unique to one writer's attempt."""
    return secrets.token_hex(6)


def _user_segment(user_id: str) -> str:
    return base64.urlsafe_b64encode(user_id.encode()).decode().rstrip("=") or "_"


@dataclass(frozen=True)
class Marker:
    """A parsed index marker key."""

    key: str
    session_id: str
    #: The start of the interval holding the session's update time, in microseconds.
    updated_us: int
    expires_us: int | None


@dataclass(frozen=True)
class ExpiryMarker:
    """A parsed marker of the expiry index: sorted by expiry bound, soonest first."""

    key: str
    session_id: str
    expires_us: int


@dataclass(frozen=True)
class Layout:
    """The keys of one store: ``prefix`` (from the URL path) and ``namespace``."""

    prefix: str
    namespace: str
    resolution: float = 1.0

    @property
    def root(self) -> str:
        prefix = self.prefix.strip("/")
        return f"{prefix}/{self.namespace}/" if prefix else f"{self.namespace}/"

    def session_prefix(self, session_id: str) -> str:
        return f"{self.root}s/{session_id}/"

    def manifest(self, session_id: str) -> str:
        return f"{self.session_prefix(session_id)}manifest"

    def generation_prefix(self, session_id: str, gen: str) -> str:
        return f"{self.session_prefix(session_id)}g/{gen}/"

    def chunk(self, session_id: str, gen: str, start: int) -> str:
        return f"{self.generation_prefix(session_id, gen)}c/{start:012d}-{new_token()}"

    def checkpoint(self, session_id: str, gen: str, number: int) -> str:
        return f"{self.generation_prefix(session_id, gen)}cp/{number:010d}-{new_token()}"

    # -- listing indexes ------------------------------------------------------------------

    @property
    def index_prefix(self) -> str:
        return f"{self.root}idx/"

    @property
    def users_prefix(self) -> str:
        return f"{self.root}u/"

    def user_prefix(self, user_id: str) -> str:
        return f"{self.users_prefix}{_user_segment(user_id)}/"

    def interval(self, timestamp: float) -> int:
        """The start of the index interval holding ``timestamp``, in microseconds."""
        step = max(1, micros(self.resolution))
        return micros(timestamp) // step * step

    def _inverted(self, timestamp: float) -> str:
        return f"{_TIME_MAX - self.interval(timestamp):0{_TIME_DIGITS}d}"

    @property
    def expiry_prefix(self) -> str:
        return f"{self.root}exp/"

    @property
    def expiry_indexed(self) -> str:
        """An object whose presence says that every session with a TTL has its marker under
        :attr:`expiry_prefix` (written by the first purge that found them all)."""
        return f"{self.root}exp-indexed"

    def expiry_bound(self, updated_at: float, ttl: float | None) -> int | None:
        """The expiry in marker keys: the interval start plus the TTL, never later than the
        real expiry, in microseconds; None without a TTL."""
        return None if ttl is None else self.interval(updated_at) + micros(ttl)

    def markers(
        self, session_id: str, user_id: object, updated_at: float, ttl: float | None
    ) -> list[str]:
        """The index keys of a session in the state described by the arguments."""
        bound = self.expiry_bound(updated_at, ttl)
        tail = f"{self._inverted(updated_at)}/{session_id}/{'-' if bound is None else bound}"
        keys = [self.index_prefix + tail]
        if isinstance(user_id, str):
            keys.append(self.user_prefix(user_id) + tail)
        if bound is not None:
            keys.append(self.expiry_marker(session_id, bound))
        return keys

    def expiry_marker(self, session_id: str, bound: int) -> str:
        return f"{self.expiry_prefix}{bound:0{_TIME_DIGITS}d}/{session_id}"

    def start_after(self, base: str, updated_at: float) -> str:
        """A ListObjectsV2 ``StartAfter`` so the listing begins at the interval holding
        ``updated_at`` (all of it, for the caller to filter by exact time and id)."""
        return base + self._inverted(updated_at)

    @staticmethod
    def parse_marker(base: str, key: str) -> Marker | None:
        """The marker under ``base`` named by ``key``; None for a key that is not one."""
        parts = key[len(base) :].split("/")
        if not key.startswith(base) or len(parts) != 3 or not parts[0].isdigit():
            return None
        inverted, session_id, expires = parts
        expires_us = None if expires == "-" else int(expires) if expires.isdigit() else -1
        if expires_us == -1:
            return None
        return Marker(key, session_id, _TIME_MAX - int(inverted), expires_us)

    def parse_expiry(self, key: str) -> ExpiryMarker | None:
        """The expiry marker named by ``key``; None for a key that is not one."""
        parts = key[len(self.expiry_prefix) :].split("/")
        if not key.startswith(self.expiry_prefix) or len(parts) != 2 or not parts[0].isdigit():
            return None
        return ExpiryMarker(key, parts[1], int(parts[0]))


#: Bytes of the manifest that listing reads (its header line, in all but odd cases).
HEADER_PROBE = 16 * 1024
#: The tail is sealed into a chunk once its JSON exceeds this many bytes...
TAIL_BYTES = 128 * 1024
#: ...or it holds this many messages, whichever comes first.
TAIL_MESSAGES = 1000
#: A sealed tail leaves its newest messages inline, up to this many and this many bytes, so
#: that ``load(last=n)`` for a small ``n`` stays one GET of the manifest right after a seal
#: (instead of a GET of the newest chunk, up to ~4 MiB once merged).
TAIL_KEPT_MESSAGES = 32
TAIL_KEPT_BYTES = 16 * 1024
#: Sealed tails merge like a binary counter: a level-k chunk holds about 2**k of them, so a
#: session grown by appends has O(log n) chunks; chunks stop growing at this level (~4 MiB).
MAX_LEVEL = 5
#: A rewrite (create, save, restore, pop) writes its history in chunks of about this size.
_BULK_BYTES = TAIL_BYTES * 2**MAX_LEVEL
#: How many recent commit ids the manifest remembers (to recognise a retried write).
_COMMITS_KEPT = 32
#: How many op ids of recent changes the manifest remembers, each with the version it made:
#: a change whose op id is among them is not applied again (a resent or retried write).
OPS_KEPT = 256
_FORMAT = 1

#: An object to PUT before the manifest that references it: (key, JSON body).
Write = tuple[str, bytes]


@dataclass
class Chunk:
    key: str
    count: int
    #: Compaction level: about 2**level sealed tails.
    level: int = 0


@dataclass
class CheckpointRef:
    """A checkpoint as the manifest knows it.

    The object at ``key`` holds the record (label, time, count, metadata). ``messages_key``
    is None while the checkpoint is a pointer to the first ``message_count`` messages of the
    log; once a rewrite would break that, the messages are copied to ``messages_key``.
    """

    number: int
    key: str
    message_count: int
    messages_key: str | None = None


@dataclass
class Manifest:
    session_id: str
    kind: str
    metadata: dict[str, Any]
    version: int
    created_at: float
    updated_at: float
    ttl: float | None
    expires_at: float | None
    gen: str
    chunks: list[Chunk] = field(default_factory=list)
    tail: list[Message] = field(default_factory=list)
    checkpoints: list[CheckpointRef] = field(default_factory=list)
    markers: list[str] = field(default_factory=list)
    commits: list[tuple[str, int]] = field(default_factory=list)
    #: (op id, version) of the last :data:`OPS_KEPT` changes, oldest first (third line).
    ops: list[tuple[str, int]] = field(default_factory=list)
    #: The writer whose turn it is to write, and until when (see ``writes.TURN``): a
    #: scheduling hint for writers racing on one session, never a lock.
    turn: tuple[str, float] | None = None
    #: Set by :meth:`decode_header` when the tail was not read.
    header_only: bool = False
    _count: int | None = None

    # -- derived --------------------------------------------------------------------------

    @property
    def count(self) -> int:
        if self._count is not None:
            return self._count
        return sum(c.count for c in self.chunks) + len(self.tail)

    @property
    def sealed_count(self) -> int:
        return sum(c.count for c in self.chunks)

    @property
    def user_id(self) -> Any:
        return self.metadata.get("user_id")

    def expired(self, now: float) -> bool:
        return self.expires_at is not None and self.expires_at <= now

    def committed(self, commit_id: str) -> int | None:
        """The version a commit produced, if this manifest includes it."""
        for known, version in self.commits:
            if known == commit_id:
                return version
        return None

    def applied(self, op_id: str) -> int | None:
        """The version the change with ``op_id`` produced, if it was applied."""
        for known, version in reversed(self.ops):
            if known == op_id:
                return version
        return None

    def record_op(self, op_id: str, version: int) -> None:
        self.ops.append((op_id, version))
        del self.ops[: max(0, len(self.ops) - OPS_KEPT)]

    def clone(self) -> Manifest:
        """A copy to edit. Edits replace the manifest's lists and records, never a stored
        message in place, so the messages of the tail are shared rather than deep-copied
        (copying them cost more client time than the write the clone prepares)."""
        return dataclasses.replace(
            self,
            metadata=copy.deepcopy(self.metadata),
            chunks=[dataclasses.replace(c) for c in self.chunks],
            tail=list(self.tail),
            checkpoints=[dataclasses.replace(c) for c in self.checkpoints],
            markers=list(self.markers),
            commits=list(self.commits),
            ops=list(self.ops),
        )

    def record(self, messages: list[Message] | None = None) -> SessionRecord:
        """The session as a record; ``messages`` (a tail of the log) default to none."""
        return SessionRecord(
            session_id=self.session_id,
            kind=self.kind,
            messages=[] if messages is None else messages,
            metadata=dict(self.metadata),
            version=self.version,
            created_at=self.created_at,
            updated_at=self.updated_at,
            ttl=self.ttl,
            expires_at=self.expires_at,
            message_count=self.count,
        )

    def chunks_for_tail(self, last: int | None) -> list[Chunk]:
        """The sealed chunks that hold the last ``last`` messages (None: all of them)."""
        if last is None:
            return list(self.chunks)
        needed = last - len(self.tail)
        picked: list[Chunk] = []
        for chunk in reversed(self.chunks):
            if needed <= 0:
                break
            picked.append(chunk)
            needed -= chunk.count
        return picked[::-1]

    def chunks_for_prefix(self, count: int) -> list[Chunk]:
        """The sealed chunks that hold the first ``count`` messages."""
        picked: list[Chunk] = []
        seen = 0
        for chunk in self.chunks:
            if seen >= count:
                break
            picked.append(chunk)
            seen += chunk.count
        return picked

    # -- changes (each edits the manifest and returns the objects to write first) ---------

    def touch(self, now: float, ttl: float | None) -> None:
        if ttl is not None:
            self.ttl = ttl
        self.updated_at = now
        self.expires_at = None if self.ttl is None else now + self.ttl

    def commit(self, commit_id: str) -> None:
        """Bump the version and remember ``commit_id`` as the write that produced it."""
        self.version += 1
        self.note(commit_id)

    def note(self, commit_id: str) -> None:
        """Remember ``commit_id`` as the write that produced the current version."""
        self.commits = [*self.commits[-(_COMMITS_KEPT - 1) :], (commit_id, self.version)]

    def will_seal(self, messages: Sequence[Message]) -> bool:
        """Whether appending ``messages`` fills the tail (so the store can fetch the chunks
        :meth:`merge_candidates` names before calling :meth:`append`)."""
        tail = [*self.tail, *messages]
        return _size(tail) > TAIL_BYTES or len(tail) >= TAIL_MESSAGES

    def merge_candidates(self) -> list[Chunk]:
        """The newest chunks that the next sealed tail merges with: levels 0, 1, 2, …
        counting back from the newest, as carries propagate in a binary counter."""
        picked: list[Chunk] = []
        for chunk in reversed(self.chunks):
            if chunk.level != len(picked) or len(picked) >= MAX_LEVEL:
                break
            picked.append(chunk)
        return picked[::-1]

    def append(
        self,
        messages: Sequence[Message],
        layout: Layout,
        merge: Mapping[str, list[Message]] | None = None,
    ) -> list[Write]:
        """Add ``messages`` to the tail; when it is full, seal it into a chunk, merged with
        the :meth:`merge_candidates` whose messages ``merge`` holds (by key)."""
        self.tail.extend(messages)
        self._count = None
        if _size(self.tail) <= TAIL_BYTES and len(self.tail) < TAIL_MESSAGES:
            return []
        candidates = self.merge_candidates()
        merge = merge or {}
        if not candidates or not all(c.key in merge for c in candidates):
            candidates = []
        kept = _newest_kept(self.tail)
        sealed = [m for c in candidates for m in merge[c.key]] + self.tail[: len(self.tail) - kept]
        del self.chunks[len(self.chunks) - len(candidates) :]
        key = layout.chunk(self.session_id, self.gen, self.sealed_count)
        self.chunks.append(Chunk(key, len(sealed), len(candidates)))
        self.tail = self.tail[len(self.tail) - kept :]
        return [(key, encode_messages(sealed))]

    def rewrite(self, keep: int, messages: Sequence[Message], layout: Layout) -> list[Write]:
        """Make the log ``messages``, of which the first ``keep`` equal the current log's:
        chunks wholly inside that prefix are kept, the rest is written anew in chunks of up
        to ~4 MiB, its newest part in the tail."""
        kept: list[Chunk] = []
        reused = 0
        for chunk in self.chunks:
            if reused + chunk.count > keep:
                break
            kept.append(chunk)
            reused += chunk.count
        rest = list(messages[reused:])
        sizes = [_size([m]) for m in rest]
        start, tail_bytes = len(rest), 0  # the tail: as many of the newest as fit
        while (
            start > 0
            and len(rest) - start < TAIL_MESSAGES - 1
            and tail_bytes + sizes[start - 1] <= TAIL_BYTES
        ):
            start -= 1
            tail_bytes += sizes[start]
        self.chunks, self.tail, self._count = kept, rest[start:], None
        writes: list[Write] = []
        first = 0
        while first < start:
            last, group_bytes = first, 0
            while last < start and (last == first or group_bytes + sizes[last] <= _BULK_BYTES):
                group_bytes += sizes[last]
                last += 1
            key = layout.chunk(self.session_id, self.gen, self.sealed_count)
            level = min(MAX_LEVEL, max(0, math.ceil(math.log2(max(1, group_bytes / TAIL_BYTES)))))
            self.chunks.append(Chunk(key, last - first, level))
            writes.append((key, encode_messages(rest[first:last])))
            first = last
        return writes

    def add_checkpoint(self, ref: CheckpointRef) -> None:
        self.checkpoints.append(ref)

    def next_checkpoint_number(self) -> int:
        return max((c.number for c in self.checkpoints), default=0) + 1

    def find_checkpoint(self, number: int) -> CheckpointRef | None:
        return next((c for c in self.checkpoints if c.number == number), None)

    # -- encoding -------------------------------------------------------------------------

    def header(self) -> dict[str, Any]:
        header: dict[str, Any] = {
            "format": _FORMAT,
            "session_id": self.session_id,
            "kind": self.kind,
            "metadata": self.metadata,
            "version": self.version,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "ttl": self.ttl,
            "expires_at": self.expires_at,
            "gen": self.gen,
            "count": self.count,
            "chunks": [[c.key, c.count, c.level] for c in self.chunks],
            "checkpoints": [
                [c.number, c.key, c.message_count, c.messages_key] for c in self.checkpoints
            ],
            "markers": self.markers,
            "commits": [list(c) for c in self.commits],
        }
        if self.turn is not None:
            header["turn"] = list(self.turn)
        return header

    def encode(self) -> bytes:
        if self.header_only:
            raise ValueError("a manifest read without its tail cannot be written back")
        lines = [dumps(self.header()), storable(self.tail, self.session_id)]
        if self.ops:
            lines.append(dumps([list(op) for op in self.ops]))
        return "\n".join(lines).encode()

    @classmethod
    def decode(cls, data: bytes) -> Manifest:
        """The whole manifest, checked: the tail holds messages, and as many as the header
        says the session has (less those in chunks)."""
        head, sep, rest = data.partition(b"\n")
        manifest = cls.from_header(loads(head, "its manifest"))
        if not sep:
            raise CorruptSessionError("its manifest has no tail line")
        tail, _, ops = rest.partition(b"\n")
        manifest.tail = decode_messages(tail, "the tail of its manifest")
        stored_count = manifest.count
        manifest._count = None
        if manifest.count != stored_count:
            raise CorruptSessionError(
                f"its manifest counts {stored_count} messages but holds {manifest.count} "
                f"({manifest.sealed_count} in chunks, {len(manifest.tail)} in the tail)"
            )
        if ops:
            raw = loads(ops, "the op ids of its manifest")
            try:
                manifest.ops = [(str(op), int(version)) for op, version in raw]
            except (TypeError, ValueError) as exc:
                raise CorruptSessionError(f"its manifest's op ids are malformed: {exc!r}") from exc
        return manifest

    @classmethod
    def decode_header(cls, data: bytes) -> Manifest | None:
        """The manifest without its tail, from the first bytes of the object; None if
        ``data`` ends before the header does."""
        head, sep, _ = data.partition(b"\n")
        if not sep:
            if data and len(data) < HEADER_PROBE:
                raise CorruptSessionError("its manifest has no tail line")
            return None
        manifest = cls.from_header(loads(head, "its manifest"))
        manifest.header_only = True
        return manifest

    @classmethod
    def from_header(cls, raw: Any) -> Manifest:
        if not isinstance(raw, dict) or raw.get("format") != _FORMAT:
            raise CorruptSessionError("its manifest has an unknown format")
        try:
            return cls(
                session_id=str(raw["session_id"]),
                kind=str(raw["kind"]),
                metadata=dict(raw["metadata"]),
                version=int(raw["version"]),
                created_at=float(raw["created_at"]),
                updated_at=float(raw["updated_at"]),
                ttl=None if raw["ttl"] is None else float(raw["ttl"]),
                expires_at=None if raw["expires_at"] is None else float(raw["expires_at"]),
                gen=str(raw["gen"]),
                chunks=[Chunk(str(c[0]), int(c[1]), int(c[2])) for c in raw["chunks"]],
                checkpoints=[
                    CheckpointRef(int(n), str(k), int(c), None if m is None else str(m))
                    for n, k, c, m in raw["checkpoints"]
                ],
                markers=[str(k) for k in raw["markers"]],
                commits=[(str(c), int(v)) for c, v in raw["commits"]],
                turn=_turn(raw.get("turn")),
                _count=int(raw["count"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise CorruptSessionError(f"its manifest is malformed: {exc!r}") from exc

    @classmethod
    def new(cls, record: SessionRecord) -> Manifest:
        return cls(
            session_id=record.session_id,
            kind=record.kind,
            metadata=dict(record.metadata),
            version=record.version,
            created_at=record.created_at,
            updated_at=record.updated_at,
            ttl=record.ttl,
            expires_at=record.expires_at,
            gen=new_token(),
        )


def _turn(raw: Any) -> tuple[str, float] | None:
    """The turn a header names; None for none, or for one this version cannot read (a
    hint is never worth refusing a session over)."""
    try:
        writer, until = raw
        return str(writer), float(until)
    except (TypeError, ValueError):
        return None


def storable(messages: Sequence[Message], session_id: str | None = None) -> str:
    """The JSON of ``messages``; InvalidMessage if one holds a value JSON cannot carry
    unchanged (NaN, infinity, a lone surrogate, an object of another type)."""
    try:
        text = dumps(list(messages))
        text.encode()
    except (TypeError, ValueError) as exc:  # UnicodeEncodeError is a ValueError
        whose = "" if session_id is None else f" for session {session_id!r}"
        raise InvalidMessage(
            f"a message{whose} cannot be stored: {exc}; use JSON values only (no NaN or "
            "infinity, no lone surrogates in strings)"
        ) from exc
    return text


def encode_messages(messages: Sequence[Message]) -> bytes:
    return storable(messages).encode()


def decode_messages(data: bytes, what: str, count: int | None = None) -> list[Message]:
    """Messages stored as a JSON list: each must be an object, and ``count`` of them if
    given; CorruptSessionError saying ``what`` is wrong otherwise."""
    value = loads(data, what)
    if not isinstance(value, list):
        raise CorruptSessionError(f"{what} is a {type(value).__name__}, not a list")
    for position, message in enumerate(value):
        if not isinstance(message, dict):
            raise CorruptSessionError(
                f"{what} holds a {type(message).__name__} at position {position}, not a message"
            )
    if count is not None and len(value) != count:
        raise CorruptSessionError(f"{what} holds {len(value)} messages, not {count}")
    return value


def _size(messages: Sequence[Message]) -> int:
    return len(json.dumps(messages, ensure_ascii=False, separators=(",", ":")))


def _newest_kept(tail: Sequence[Message]) -> int:
    """How many of a full tail's newest messages stay inline when it is sealed: up to
    :data:`TAIL_KEPT_MESSAGES` and :data:`TAIL_KEPT_BYTES`, and never all of it."""
    kept, size = 0, 0
    while kept < min(TAIL_KEPT_MESSAGES, len(tail) - 1):
        size += _size([tail[len(tail) - 1 - kept]])
        if size > TAIL_KEPT_BYTES:
            break
        kept += 1
    return kept
