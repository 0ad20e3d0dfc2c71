"""Every store operation once, free of I/O: ``RedisStore`` and ``AsyncRedisStore`` both run
these.

An operation is a *program*: a generator that yields steps (a script call, one command, or a
pipeline) and is sent back each step's reply, deciding from it what to send next and what to
return. The sync store sends each step with redis-py (``ailib.spi.drive``), the async twin
with ``redis.asyncio`` (``drive_async``); both clients take the same calls and give the same
replies, so a step only names them (:meth:`Step.send`) and the two stores cannot drift apart
on what an operation does.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Generator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, TypeAlias, TypeVar

from ailib.errors import CorruptSessionError
from ailib.spi import Change, CheckpointRecord, CheckpointState, Message, SessionRecord
from ailib_store_redis import protocol
from ailib_store_redis.keys import (
    IndexKeys,
    SessionKeys,
    index_keys,
    session_keys,
    session_prefix,
)
from ailib_store_redis.protocol import num

__all__ = (
    "Command",
    "Context",
    "Eval",
    "Pipeline",
    "Program",
    "RunScript",
    "Step",
    "apply",
    "checkpoint",
    "checkpoint_state",
    "checkpoints",
    "create",
    "delete",
    "fetch",
    "list_page",
    "pop",
    "purge",
    "replace",
    "resendable",
    "restore",
)

T = TypeVar("T")

logger = logging.getLogger("ailib")

#: Expired sessions read per ``ZRANGEBYSCORE`` while purging.
PURGE_BATCH: Final = 500


# -- steps ---------------------------------------------------------------------------------------

#: Runs a script by name on the store's client: ``(name, keys, args)`` to its reply (or, on
#: an asyncio client, an awaitable of it); see ``evalsha``.
RunScript: TypeAlias = Callable[[str, Sequence[str], Sequence[str | bytes]], Any]


@dataclass(frozen=True)
class Eval:
    """Run the script ``scripts.BY_NAME[script]`` (EVALSHA, loaded on NOSCRIPT)."""

    script: str
    keys: Sequence[str]
    args: Sequence[str | bytes]
    #: Sending the call again is safe (a write with an op id, or one idempotent by nature):
    #: after a lost reply the store resends it to learn its outcome.
    resend: bool = False

    def send(self, client: Any, scripts: RunScript) -> Any:
        """The reply, or (asyncio client) an awaitable of it."""
        return scripts(self.script, self.keys, self.args)


@dataclass(frozen=True)
class Command:
    """One redis-py command method, such as ``zrevrangebyscore``, and its arguments."""

    name: str
    args: tuple[Any, ...] = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)

    def send(self, client: Any, scripts: RunScript) -> Any:
        """The reply, or (asyncio client) an awaitable of it; on a pipeline, queues it."""
        return getattr(client, self.name)(*self.args, **self.kwargs)


@dataclass(frozen=True)
class Pipeline:
    """Commands sent in one round trip (``atomic``: inside MULTI/EXEC); replies in order."""

    commands: Sequence[Command]
    atomic: bool

    def send(self, client: Any, scripts: RunScript) -> Any:
        pipe = client.pipeline(transaction=self.atomic)
        for command in self.commands:
            command.send(pipe, scripts)
        return pipe.execute()


Step: TypeAlias = Eval | Command | Pipeline


def resendable(step: Step) -> bool:
    """Whether ``step`` may be sent again after its reply was lost."""
    return isinstance(step, Eval) and step.resend


#: An operation's logic: yields steps, receives their replies, returns the outcome.
Program: TypeAlias = Generator[Step, Any, T]


@dataclass(frozen=True)
class Context:
    """What a program needs to know about its store."""

    namespace: str
    #: The masked URL, for messages.
    url: str
    #: Redis Cluster: the listing index is in another slot than the session (a second call),
    #: and atomic reads are scripts (see ``scripts.FETCH``).
    cluster: bool
    index: IndexKeys
    #: A page of the listing is one ``LIST_PAGE`` script call (a single server); otherwise
    #: a read of the index and a pipeline of the sessions' reads (a cluster, where the
    #: sessions are in other slots; fakeredis, whose cjson fails on bytes that are not UTF-8).
    page_script: bool = False

    @classmethod
    def of(cls, namespace: str, url: str, cluster: bool, page_script: bool = True) -> Context:
        return cls(namespace, url, cluster, index_keys(namespace), page_script and not cluster)

    @property
    def inline(self) -> str:
        """The index prefix for session scripts: given, they update the index themselves
        (single server); ``''`` on a cluster."""
        return "" if self.cluster else self.index.prefix

    def keys(self, session_id: str) -> SessionKeys:
        return session_keys(self.namespace, session_id)

    @property
    def session_prefix(self) -> str:
        """What every session key of the namespace starts with: ``ailib:{ns:``."""
        return session_prefix(self.namespace)


# -- writes ---------------------------------------------------------------------------------


def _write(
    ctx: Context,
    script: str,
    session_id: str,
    args: Sequence[str | bytes],
    now: float,
    number: int = 0,
    keys: Sequence[str] | None = None,
) -> Program[int]:
    """A write script's result (``keys``: the session's, unless given). On a cluster, then
    move the session in the namespace's index (another slot, so another call)."""
    keys = ctx.keys(session_id) if keys is None else keys
    reply = yield Eval(script, keys, args, resend=True)
    result, update = protocol.write_result(reply, session_id, ctx.url, number)
    if update is not None:
        yield _touch_index(ctx, session_id, now, update)
    return result


def _touch_index(ctx: Context, session_id: str, now: float, update: protocol.IndexUpdate) -> Eval:
    args: list[str | bytes] = [ctx.index.prefix, session_id, num(now), update.user, update.expires]
    return Eval("index_touch", [ctx.index.updated], args, resend=True)


def create(ctx: Context, record: SessionRecord) -> Program[None]:
    args = protocol.create_args(record, ctx.inline)
    yield from _write(ctx, "create", record.session_id, args, record.updated_at)


def apply(ctx: Context, session_id: str, change: Change, now: float) -> Program[int]:
    if protocol.appends_only(change):
        keys = (f"{ctx.session_prefix}{session_id}}}:meta",)
        appended = protocol.append_args(change, now, ctx.inline)
        return (yield from _write(ctx, "append", session_id, appended, now, keys=keys))
    args = protocol.apply_args(session_id, change, now, ctx.inline)
    return (yield from _write(ctx, "apply", session_id, args, now))


def replace(ctx: Context, record: SessionRecord, expected_version: int, now: float) -> Program[int]:
    args = protocol.replace_args(record, expected_version, now, ctx.inline)
    return (yield from _write(ctx, "replace", record.session_id, args, now))


def checkpoint(ctx: Context, session_id: str, label: str | None, now: float) -> Program[int]:
    args = protocol.checkpoint_args(session_id, label, now, ctx.inline)
    return (yield from _write(ctx, "checkpoint", session_id, args, now))


def restore(ctx: Context, session_id: str, number: int, now: float) -> Program[int]:
    args = protocol.restore_args(session_id, number, now, ctx.inline)
    return (yield from _write(ctx, "restore", session_id, args, now, number))


def pop(ctx: Context, session_id: str, count: int, now: float) -> Program[list[Message]]:
    args = protocol.pop_args(session_id, count, now, ctx.inline)
    reply = yield Eval("pop", ctx.keys(session_id), args, resend=True)
    removed, update = protocol.pop_result(reply, session_id, ctx.url)
    if ctx.cluster and removed:
        yield _touch_index(ctx, session_id, now, update)
    return removed


def delete(ctx: Context, session_id: str) -> Program[bool]:
    args = protocol.read_args(session_id, time.time(), prefix=ctx.inline)
    existed = yield Eval("delete", ctx.keys(session_id), args, resend=True)
    if ctx.cluster:
        drop = [ctx.index.prefix, session_id, ""]
        yield Eval("index_drop", [ctx.index.updated], drop, resend=True)
    return bool(existed)


def purge(ctx: Context, now: float) -> Program[int]:
    """Delete the sessions the ``exp`` index says expired by ``now``, and their entries."""
    purged = skipped = 0
    while True:
        due = yield Command(
            "zrangebyscore",
            (ctx.index.expires, "-inf", num(now)),
            {"start": skipped, "num": PURGE_BATCH},
        )
        for member in due:
            session_id = member.decode()
            dropped = 0
            if (
                yield Eval(
                    "purge_session", ctx.keys(session_id), protocol.read_args(session_id, now)
                )
            ):
                args = [ctx.index.prefix, session_id, num(now)]
                dropped = yield Eval("index_drop", [ctx.index.updated], args)
            purged += int(dropped)
            skipped += 0 if dropped else 1
        if len(due) < PURGE_BATCH:
            return purged


# -- reads ----------------------------------------------------------------------------------


def _hash_of(flat: Sequence[bytes]) -> dict[bytes, bytes]:
    """A hash as redis-py parses HGETALL, from a script's flat reply."""
    return dict(zip(flat[::2], flat[1::2], strict=True))


def fetch(ctx: Context, session_id: str, last: int | None) -> Program[SessionRecord | None]:
    """The session with all its messages, or (``last``) its last ones and its count."""
    keys = ctx.keys(session_id)
    if ctx.cluster:
        args = ["" if last is None else str(last)]
        replies = yield Eval("fetch", [keys.meta, keys.log], args)
        replies[0] = _hash_of(replies[0])
    else:
        reads = [Command("hgetall", (keys.meta,))]
        if last is None:
            reads.append(Command("lrange", (keys.log, 0, -1)))
        else:
            if last:
                reads.append(Command("lrange", (keys.log, -last, -1)))
            reads.append(Command("llen", (keys.log,)))
        replies = yield Pipeline(reads, atomic=True)
    meta, count = replies[0], replies[-1]
    if not meta:
        return None
    raw = replies[1] if last is None or last else []
    return protocol.decode_record(session_id, meta, raw, None if last is None else count, ctx.url)


def list_page(
    ctx: Context, user_id: str | None, limit: int, after: tuple[float, str] | None, now: float
) -> Program[list[SessionRecord]]:
    """Up to ``limit`` live sessions after ``after``, newest first, from the sorted index."""
    index = ctx.index.updated if user_id is None else ctx.index.user(user_id)
    top = "+inf" if after is None else num(after[0])
    found: list[SessionRecord] = []
    offset = 0
    while len(found) < limit:
        rows = yield from _index_rows(ctx, index, top, offset, limit)
        offset += len(rows)
        for session_id, score, meta, count in rows:
            if after is not None and (score, session_id) >= after:
                continue
            record = _listed(ctx, session_id, meta, count, user_id, now)
            if record is not None:
                found.append(record)
        if len(rows) < limit:
            break
    return found[:limit]


#: One index entry with its session's stored hash (empty: gone) and message count.
Row: TypeAlias = tuple[str, float, Mapping[bytes, bytes], int]


def _index_rows(ctx: Context, index: str, top: str, offset: int, count: int) -> Program[list[Row]]:
    """``count`` index entries from ``offset`` down from ``top``, with their sessions'
    headers: one script call on a single server, else the entries and then a pipeline of
    the sessions' reads (they live in other slots)."""
    if ctx.page_script:
        args = [top, str(offset), str(count), ctx.session_prefix]
        rows = protocol.page_rows((yield Eval("list_page", [index], args)))
        if rows is not None:
            return rows
        # Bytes that are not UTF-8 somewhere in the page: read it the long way.
    entries: list[tuple[bytes, float]] = yield Command(
        "zrevrangebyscore",
        (index, top, "-inf"),
        {"start": offset, "num": count, "withscores": True},
    )
    reads: list[Command] = []
    for member, _ in entries:
        keys = ctx.keys(member.decode())
        reads += (Command("hgetall", (keys.meta,)), Command("llen", (keys.log,)))
    replies = (yield Pipeline(reads, atomic=False)) if reads else []
    return [
        (member.decode(), score, replies[2 * n], replies[2 * n + 1])
        for n, (member, score) in enumerate(entries)
    ]


def _listed(
    ctx: Context,
    session_id: str,
    meta: Mapping[bytes, bytes],
    count: int,
    user_id: str | None,
    now: float,
) -> SessionRecord | None:
    """The record to list for an index entry, or None: its session is gone, expired, now
    another user's, or its header is damaged (logged)."""
    if not meta:
        return None
    try:
        record = protocol.decode_record(session_id, meta, [], count, ctx.url)
    except CorruptSessionError as exc:
        logger.warning(
            "left session %r in %s out of the listing: its stored header is corrupt (%s)",
            session_id,
            ctx.url,
            exc,
        )
        return None
    if record.expired(now):
        return None
    if user_id is not None and record.metadata.get("user_id") != user_id:
        return None
    return record


def checkpoints(
    ctx: Context, session_id: str, now: float
) -> Program[list[CheckpointRecord] | None]:
    keys = ctx.keys(session_id)
    if ctx.cluster:
        fields, infos, pointers = yield Eval(
            "fetch_checkpoints", [keys.meta, keys.cp, keys.cpp], []
        )
        infos, pointers = _hash_of(infos), _hash_of(pointers)
    else:
        reads = [
            Command("hmget", (keys.meta, ["v", "e"])),
            Command("hgetall", (keys.cp,)),
            Command("hgetall", (keys.cpp,)),
        ]
        fields, infos, pointers = yield Pipeline(reads, atomic=True)
    version, expires = fields
    if version is None or (expires is not None and float(expires) <= now):
        return None
    found = [
        protocol.decode_checkpoint(session_id, int(number), info, _count(pointers, number), ctx.url)
        for number, info in infos.items()
    ]
    return sorted(found, key=lambda cp: cp.number)


def _count(pointers: dict[bytes, bytes], number: bytes) -> int:
    """The message count of a stored pointer, ``count`` or ``count@offset@length``."""
    return int(pointers.get(number, b"0").split(b"@", 1)[0])


def checkpoint_state(
    ctx: Context, session_id: str, number: int, now: float
) -> Program[CheckpointState]:
    args = protocol.read_args(session_id, now, str(number))
    reply = yield Eval("checkpoint_state", ctx.keys(session_id), args)
    if reply[0] != b"ok":
        raise protocol.refusal(reply, session_id, ctx.url, number)
    what = f"checkpoint {number} of session {session_id!r} in {ctx.url}"
    messages = protocol.decode_messages(reply[2:], what)
    cp = protocol.decode_checkpoint(session_id, number, reply[1], len(messages), ctx.url)
    return messages, cp.metadata
