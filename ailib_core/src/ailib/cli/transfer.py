"""``ailib sessions export / import / copy``: move sessions between files and stores.

The file format is JSON Lines, one ``store.export_session`` dict per line (the session, its
``ttl`` and its checkpoints with their messages), identical for every backend.

Writing a session that already exists at the destination (``import``, ``copy``) follows one
rule so that re-running is safe:

* same content (kind, messages, metadata, ttl and checkpoints): skipped;
* different content: left as it is and reported, exit status 1; ``--overwrite`` replaces it
  with the incoming copy (delete, then import: not atomic).

Content, not ``version``/``updated_at``, decides "the same": ``import_session`` stores every
session at version 1 with the time of the import, so those never match the source's.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import IO, TYPE_CHECKING, Annotated, Any

import typer

from ailib.cli.checkfile import parse_line
from ailib.cli.common import (
    Access,
    StoreOption,
    complete_session_id,
    open_cli_store,
    open_url,
    session_ids,
)
from ailib.cli.output import emit_json, error, note, one_line, progress, say, warn
from ailib.cli.wording import for_cli
from ailib.errors import (
    AilibError,
    ConflictError,
    CorruptSessionError,
    SessionNotFound,
    StoreUnavailable,
)

if TYPE_CHECKING:
    from ailib.base import BaseStore

__all__ = ("copy", "export", "import_", "reencrypt")

Overwrite = Annotated[
    bool,
    typer.Option(
        "--overwrite",
        help="Replace sessions that exist at the destination with different content.",
    ),
]
ResultJson = Annotated[
    bool, typer.Option("--json", help="Print the counts as one JSON object.", show_default=False)
]
User = Annotated[
    str | None, typer.Option("--user", "-u", help="Only sessions whose user_id is USER.")
]


class Outcome(StrEnum):
    COPIED = "copied"
    SKIPPED = "skipped"
    DIFFERS = "differs"
    FAILED = "failed"


@dataclass
class Tally:
    counts: dict[Outcome, int] = field(default_factory=lambda: dict.fromkeys(Outcome, 0))

    def add(self, outcome: Outcome) -> None:
        self.counts[outcome] += 1

    def summary(self, verb: str) -> str:
        c = self.counts
        return (
            f"{verb} {c[Outcome.COPIED]}, skipped {c[Outcome.SKIPPED]} (already identical), "
            f"differ {c[Outcome.DIFFERS]} (left as is), failed {c[Outcome.FAILED]}"
        )

    def as_json(self) -> dict[str, int]:
        return {outcome.value: count for outcome, count in self.counts.items()}

    @property
    def ok(self) -> bool:
        return not (self.counts[Outcome.DIFFERS] or self.counts[Outcome.FAILED])


def oldest_first(store: BaseStore, user: str | None) -> list[str]:
    """Session ids, least recently updated first: a store stamps what it imports with the
    time of the import, so importing in this order keeps the sessions' listing order."""
    return list(reversed(list(session_ids(store, user))))


def _content(data: Mapping[str, Any]) -> tuple[Any, ...]:
    """What must match for two exported copies of a session to count as the same."""
    checkpoints = [
        (c.get("number"), c.get("label"), c.get("message_count"), c.get("metadata"), c["messages"])
        for c in data.get("checkpoints") or ()
    ]
    return (
        data.get("kind"),
        data.get("messages"),
        data.get("metadata"),
        data.get("ttl"),
        checkpoints,
    )


def put(destination: BaseStore, data: Mapping[str, Any], overwrite: bool) -> Outcome:
    """Store one exported session in ``destination`` by the module's rule."""
    session_id = str(data["session_id"])
    if destination.exists(session_id):
        if _content(destination.export_session(session_id)) == _content(data):
            return Outcome.SKIPPED
        if not overwrite:
            warn(
                f"{session_id} already exists in {destination.url} with different content; "
                "left as is (--overwrite replaces it)"
            )
            return Outcome.DIFFERS
        destination.delete(session_id)
    try:
        destination.import_session(data)
    except ConflictError:
        warn(f"{session_id} was created in {destination.url} meanwhile; left as is")
        return Outcome.DIFFERS
    return Outcome.COPIED


def _put_reporting(destination: BaseStore, data: Mapping[str, Any], overwrite: bool) -> Outcome:
    """``put``, turning a failure of this one session into a reported FAILED. A store that
    cannot be reached stops the whole run instead."""
    try:
        return put(destination, data, overwrite)
    except StoreUnavailable:
        raise
    except AilibError as exc:
        error(f"{data.get('session_id')}: {for_cli(exc, store=destination.url)}")
        return Outcome.FAILED


def _json_line(data: Mapping[str, Any]) -> str:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")) + "\n"


def export(
    ctx: typer.Context,
    session_ids_: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="[ID...]",
            help="Sessions to export [default: all of them].",
            autocompletion=complete_session_id,
        ),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", metavar="FILE", help="Write here instead of stdout.", dir_okay=False
        ),
    ] = None,
    user: User = None,
    store: StoreOption = None,
) -> None:
    """Write sessions with their checkpoints as JSON Lines.

    One session a line, the same format for every backend. A file appears only once complete.
    """
    opened = open_cli_store(ctx, store)
    for session_id in session_ids_ or ():
        if not opened.exists(session_id):
            raise SessionNotFound(session_id, opened.url)
    wanted = list(session_ids_ or oldest_first(opened, user))
    to_file = output is not None and str(output) != "-"
    if to_file and output is not None:
        output = output.expanduser().resolve()
        output.parent.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(dir=output.parent, prefix=f".{output.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as file:
                _write_sessions(opened, wanted, file)
            os.replace(temp, output)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise
    else:
        _write_sessions(opened, wanted, sys.stdout)
    where = str(output) if to_file else "stdout"
    note(f"exported {len(wanted)} session{'' if len(wanted) == 1 else 's'} to {where}", None)


def _write_sessions(store: BaseStore, wanted: list[str], file: IO[str]) -> None:
    with progress(f"exporting from {store.url}", len(wanted)) as advance:
        for session_id in wanted:
            file.write(_json_line(store.export_session(session_id)))
            advance()
    file.flush()


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    """Numbered non-blank lines of ``path`` ("-": stdin, read once and kept)."""
    if str(path) == "-":
        text = sys.stdin.read()
        yield from ((n, line) for n, line in enumerate(text.splitlines(), 1) if line.strip())
        return
    with path.open(encoding="utf-8") as file:
        yield from ((n, line) for n, line in enumerate(file, 1) if line.strip())


def validate(lines: Iterable[tuple[int, str]], where: str) -> int:
    """Check a whole file before anything is written: every line must be a session that a
    store would import (tried on a throwaway memory store, so the checks are the stores' own),
    and no id may appear twice. Returns how many sessions it holds."""
    from ailib.stores.memory import MemoryStore

    scratch = MemoryStore()
    seen: dict[str, int] = {}
    try:
        for number, line in lines:
            data = parse_line(number, line, where)
            try:
                session = scratch.import_session(data)
            except AilibError as exc:
                raise CorruptSessionError(
                    f"{where} line {number} is not a valid session: {one_line(exc)}"
                ) from exc
            if session.session_id in seen:
                raise CorruptSessionError(
                    f"{where} holds session {session.session_id!r} twice "
                    f"(lines {seen[session.session_id]} and {number})"
                )
            seen[session.session_id] = number
            scratch.delete(session.session_id)
    except UnicodeDecodeError as exc:
        raise CorruptSessionError(f"{where} is not UTF-8 text ({exc.reason})") from exc
    return len(seen)


def import_(
    ctx: typer.Context,
    file: Annotated[
        Path,
        typer.Argument(metavar="FILE", help="A JSON Lines export; - reads stdin."),
    ],
    overwrite: Overwrite = False,
    as_json: ResultJson = False,
    store: StoreOption = None,
) -> None:
    """Import sessions from a JSON Lines export.

    The whole file is checked first: if any line is unreadable, nothing is written."""
    where = "stdin" if str(file) == "-" else str(file)
    stdin = list(_lines(file)) if where == "stdin" else None
    total = validate(_lines(file) if stdin is None else stdin, where)
    opened = open_cli_store(ctx, store, access=Access.WRITE)
    tally = Tally()
    with progress(f"importing into {opened.url}", total) as advance:
        for number, line in _lines(file) if stdin is None else stdin:
            tally.add(_put_reporting(opened, parse_line(number, line, where), overwrite))
            advance()
    if as_json:
        emit_json(tally.as_json())
    else:
        say(tally.summary("imported"))
    if not tally.ok:
        raise typer.Exit(1)


def copy(
    ctx: typer.Context,
    source_url: Annotated[str, typer.Argument(metavar="SRC_URL", help="Copy from this store.")],
    destination_url: Annotated[
        str, typer.Argument(metavar="DST_URL", help="Copy into this store.")
    ],
    user: User = None,
    overwrite: Overwrite = False,
    as_json: ResultJson = False,
) -> None:
    """Copy sessions with their checkpoints from one store to another.

    Safe to re-run: sessions already copied are skipped. A session that exists at the
    destination with different content is left as is and reported, unless --overwrite.
    """
    source = open_url(source_url, Access.READ)
    ctx.call_on_close(source.close)
    destination = open_url(destination_url, Access.WRITE)
    ctx.call_on_close(destination.close)
    if source.url == destination.url and source.namespace == destination.namespace:
        raise AilibError(f"source and destination are the same store ({source.url})")
    wanted = oldest_first(source, user)
    plural = "" if len(wanted) == 1 else "s"
    note(f"copying {len(wanted)} session{plural} from {source.url} to {destination.url}", None)
    tally = Tally()
    with progress("copying", len(wanted)) as advance:
        for session_id in wanted:
            try:
                data = source.export_session(session_id)
            except StoreUnavailable:
                raise
            except AilibError as exc:
                error(f"{session_id}: {for_cli(exc, store=source.url)}")
                tally.add(Outcome.FAILED)
            else:
                tally.add(_put_reporting(destination, data, overwrite))
            advance()
    if as_json:
        emit_json(tally.as_json())
    else:
        say(tally.summary("copied"))
    if not tally.ok:
        raise typer.Exit(1)


def reencrypt(
    ctx: typer.Context,
    backup: Annotated[
        Path,
        typer.Option(
            "--backup",
            metavar="FILE",
            help="Where the sessions are exported first, in case a rewrite fails.",
            dir_okay=False,
        ),
    ],
    user: User = None,
    store: StoreOption = None,
) -> None:
    """Rewrite sessions (and their checkpoints) with the newest encryption key.

    The store must be opened with its keys, newest first (``?encrypt=env:AILIB_KEY`` with
    AILIB_KEY=new,old). Every session is exported to --backup first; each one is then deleted
    and imported again, sealed with the newest key. Afterwards the old key can be retired.
    """
    opened = open_cli_store(ctx, store, access=Access.EXISTING)
    if not opened.hooks.has("encryption"):
        raise AilibError(
            f"{opened.url} is not opened with encryption keys; add ?encrypt=env:AILIB_KEY "
            "(or file:PATH) to the store URL"
        )
    wanted = oldest_first(opened, user)
    backup = backup.expanduser().resolve()
    backup.parent.mkdir(parents=True, exist_ok=True)
    exported = [opened.export_session(session_id) for session_id in wanted]
    backup.write_text("".join(_json_line(data) for data in exported), encoding="utf-8")
    note(f"backed up {len(exported)} session(s) to {backup}", None)
    with progress(f"re-encrypting in {opened.url}", len(exported)) as advance:
        for data in exported:
            opened.delete(str(data["session_id"]))
            opened.import_session(data)
            advance()
    say(f"re-encrypted {len(exported)} session(s) with the newest key")
