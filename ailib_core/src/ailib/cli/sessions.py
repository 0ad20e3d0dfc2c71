"""``ailib sessions …``: list, read, delete, checkpoint and fork the sessions of a store.

``export``, ``import`` and ``copy`` join this group from :mod:`ailib.cli.transfer`.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer

from ailib.cli.common import Access, StoreOption, complete_session_id, open_cli_store
from ailib.cli.output import emit_json, note, progress, say, table, transcript, when
from ailib.cli.shapes import checkpoint_json, summary_json
from ailib.errors import AilibError

__all__ = ("app",)

app = typer.Typer(
    help="List, show, delete, checkpoint, fork and move sessions.", no_args_is_help=True
)

SessionId = Annotated[
    str,
    typer.Argument(metavar="ID", help="The session's id.", autocompletion=complete_session_id),
]
ResultJson = Annotated[
    bool, typer.Option("--json", help="Print the result as one JSON object.", show_default=False)
]


@app.command("ls")
def ls(
    ctx: typer.Context,
    user: Annotated[
        str | None, typer.Option("--user", "-u", help="Only sessions whose user_id is USER.")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="Show at most N.")] = 50,
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON object per session, one a line.")
    ] = False,
    store: StoreOption = None,
) -> None:
    """List live sessions, most recently updated first."""
    opened = open_cli_store(ctx, store)
    page = opened.list(user_id=user, limit=limit)
    if as_json:
        for item in page:
            emit_json(summary_json(item))
    elif page.items:
        table(
            ["ID", "USER", "MESSAGES", "VERSION", "UPDATED", "EXPIRES"],
            [
                (s.session_id, s.user_id, s.message_count, s.version, s.updated_at, s.expires_at)
                for s in page
            ],
        )
    else:
        note(f"no sessions in {opened.url}" + (f" for user {user!r}" if user else ""))
    if page.next_cursor is not None:
        note(f"more sessions than {limit}; raise --limit to see them")


@app.command("show")
def show(
    ctx: typer.Context,
    session_id: SessionId,
    as_json: Annotated[
        bool,
        typer.Option("--json", help="The exported form (with checkpoints), as JSON."),
    ] = False,
    store: StoreOption = None,
) -> None:
    """Print a session's transcript and metadata."""
    opened = open_cli_store(ctx, store)
    if as_json:
        emit_json(opened.export_session(session_id), indent=2)
        return
    session = opened.load(session_id)
    say(f"session {session.session_id}", style="bold")
    say(
        f"  {session.kind}, {len(session)} messages, version {session.version}, "
        f"created {when(session.created_at)}, updated {when(session.updated_at)}"
        + (f", expires {when(session.expires_at)}" if session.expires_at else "")
    )
    if session.metadata:
        metadata = json.dumps(session.metadata, ensure_ascii=False, default=str, sort_keys=True)
        say(f"  metadata: {metadata}")
    say("")
    if session.messages:
        transcript(session.messages)
    else:
        say("(no messages yet)")


@app.command("rm")
def rm(
    ctx: typer.Context,
    session_ids: Annotated[
        list[str],
        typer.Argument(
            metavar="ID...", help="The sessions to delete.", autocompletion=complete_session_id
        ),
    ],
    as_json: ResultJson = False,
    store: StoreOption = None,
) -> None:
    """Delete sessions with their checkpoints.

    A missing id is an error, reported after the others are deleted."""
    opened = open_cli_store(ctx, store, access=Access.EXISTING)
    deleted, missing = [], []
    for session_id in session_ids:
        if opened.delete(session_id):
            deleted.append(session_id)
            if not as_json:
                say(f"deleted {session_id}")
        else:
            missing.append(session_id)
    if as_json:
        emit_json({"deleted": deleted, "missing": missing})
    if missing:
        plural = "s" if len(missing) > 1 else ""
        raise AilibError(
            f"no session{plural} {', '.join(map(repr, missing))} in {opened.url} (never "
            "created, deleted, or expired); `ailib sessions ls` lists the live ones"
        )


@app.command("prune")
def prune(ctx: typer.Context, as_json: ResultJson = False, store: StoreOption = None) -> None:
    """Delete every expired session (and its checkpoints) for good."""
    opened = open_cli_store(ctx, store, access=Access.EXISTING)
    with progress(f"purging expired sessions in {opened.url}", None):
        count = opened.purge_expired()
    if as_json:
        emit_json({"purged": count})
        return
    say(f"purged {count} expired session{'' if count == 1 else 's'} from {opened.url}")


@app.command("checkpoints")
def checkpoints(
    ctx: typer.Context,
    session_id: SessionId,
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON object per checkpoint, one a line.")
    ] = False,
    store: StoreOption = None,
) -> None:
    """List a session's checkpoints, oldest first."""
    opened = open_cli_store(ctx, store)
    found = opened.checkpoints(session_id)
    if as_json:
        for info in found:
            emit_json(checkpoint_json(info))
        return
    if not found:
        note(f"session {session_id} has no checkpoints; make one with /checkpoint in a chat")
        return
    table(
        ["VERSION", "LABEL", "MESSAGES", "CREATED"],
        [(c.number, c.label, c.message_count, c.created_at) for c in found],
    )


@app.command("restore")
def restore(
    ctx: typer.Context,
    session_id: SessionId,
    version: Annotated[int, typer.Argument(help="The checkpoint to go back to.")],
    as_json: ResultJson = False,
    store: StoreOption = None,
) -> None:
    """Make a checkpoint the current state.

    The state it replaces is kept as a new checkpoint, so a restore can be undone."""
    opened = open_cli_store(ctx, store, access=Access.EXISTING)
    opened.restore(session_id, version)
    session = opened.load(session_id)
    saved = opened.checkpoints(session_id)[-1]
    if as_json:
        emit_json(
            {
                "session_id": session_id,
                "restored": version,
                "message_count": len(session),
                "previous_state": saved.number,
            }
        )
        return
    say(
        f"restored {session_id} to checkpoint {version}: {len(session)} messages; "
        f"the previous state is checkpoint {saved.number}"
    )


@app.command("fork")
def fork(
    ctx: typer.Context,
    session_id: SessionId,
    version: Annotated[
        int | None,
        typer.Argument(help="Fork from this checkpoint instead of the current state."),
    ] = None,
    as_json: ResultJson = False,
    store: StoreOption = None,
) -> None:
    """Copy a session, or one of its checkpoints, into a new session.

    The new id goes to stdout, the explanation to stderr."""
    opened = open_cli_store(ctx, store, access=Access.EXISTING)
    forked = opened.fork(session_id, version)
    if as_json:
        emit_json(
            {
                "session_id": forked.session_id,
                "source": session_id,
                "checkpoint": version,
                "message_count": len(forked),
            }
        )
        return
    source = f"checkpoint {version} of {session_id}" if version is not None else session_id
    note(f"forked {source} into a new session with {len(forked)} messages:", style=None)
    say(forked.session_id)
