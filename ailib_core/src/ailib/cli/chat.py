"""``ailib chat``: a conversation on stdin/stdout whose every turn is stored.

Each turn is written with one ``store.append(user, reply, expected_version=…)`` after the
model answered: a failed model call leaves no unanswered question behind, and a session
changed meanwhile by another process is a ConflictError (reported, session reloaded) instead
of a reply computed from stale history landing after someone else's turn. A new session is
stored with its first exchange (one ``store.create(…, messages=…)``), so a chat whose model
never answered leaves no empty session behind.

Lines come from stdin, so ``printf 'hi\\n/exit\\n' | ailib chat --offline`` works; without a
terminal, no prompt is shown and each input line is echoed, making the output a transcript.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Annotated
from urllib.parse import urlsplit

import typer

from ailib.cli.common import Access, StoreOption, complete_session_id, open_cli_store
from ailib.cli.output import error, note, one_line, say, table, transcript
from ailib.cli.wording import for_cli
from ailib.errors import AilibError, ConflictError, SessionNotFound, StoreUnavailable

if TYPE_CHECKING:
    from ailib.base import BaseStore
    from ailib.client import ChatClient
    from ailib.messages import Message
    from ailib.session import Session

__all__ = ("chat",)

_RESUME_SHOWN = 20

_HELP = """commands:
  /history             the whole conversation so far
  /checkpoint [LABEL]  save the current state as a checkpoint
  /checkpoints         list the checkpoints
  /restore N           go back to checkpoint N (the current state is kept as a checkpoint)
  /help                this list
  /exit                leave (so does end of input, Ctrl-D)"""


def _client(model: str | None, offline: bool) -> tuple[ChatClient, str]:
    """The chat client and a line saying what answers."""
    if not offline and os.environ.get("OPENAI_API_KEY"):
        from ailib.client import OpenAIClient

        client = OpenAIClient(model)
        host = urlsplit(client.base_url).hostname if client.base_url else None
        where = f" at {host}" if host else ""
        return client, f"model {client.model}{where}"
    from ailib.testing.fake_client import FakeChatClient

    why = "--offline" if offline else "OPENAI_API_KEY is not set"
    return (
        FakeChatClient(model=model or "offline"),
        f"OFFLINE ({why}): replies come from ailib's deterministic offline responder, "
        "not from a model",
    )


class _Chat:
    """One conversation. ``stored`` is False for a new session until its first exchange
    creates it; until then ``session`` is unbound and holds only the system prompt."""

    def __init__(
        self, store: BaseStore, session: Session, client: ChatClient, *, stored: bool
    ) -> None:
        self.store = store
        self.session = session
        self.client = client
        self.stored = stored
        self.failures = 0

    def reload(self) -> None:
        self.session = self.store.session(self.session.session_id)

    def turn(self, text: str) -> None:
        question: Message = {"role": "user", "content": text}
        try:
            answer = self.client.chat([*self.session.messages, question])
        except Exception as exc:  # any failure of the model call (openai.APIError, ...)
            self.fail(f"the model request failed, nothing was saved: {one_line(exc)}")
            return
        reply: Message = {"role": "assistant", "content": answer}
        if not self.stored:
            self.first_turn(question, reply, answer)
            return
        try:
            version = self.store.append(
                self.session.session_id, question, reply, expected_version=self.session.version
            )
        except ConflictError:
            self.reload()
            self.fail(
                "the session was changed by someone else meanwhile, so this turn was not saved; "
                f"reloaded it ({len(self.session)} messages), send your message again"
            )
            return
        self.session.messages += [question, reply]
        self.session.version = version
        say(f"assistant> {answer}", style="green")

    def first_turn(self, question: Message, reply: Message, answer: str) -> None:
        """Create the new session with its system prompt and this first exchange, at once."""
        pending = self.session
        try:
            self.session = self.store.create(
                pending.metadata or None,
                session_id=pending.session_id,
                messages=[*pending.messages, question, reply],
            )
        except ConflictError:
            try:
                self.reload()
            except SessionNotFound:  # created and deleted again meanwhile: try anew next turn
                self.session = pending
            else:
                self.stored = True
            self.fail(
                f"a session {pending.session_id} was created by someone else meanwhile, so this "
                f"turn was not saved; the chat goes on in that session ({len(self.session)} "
                "messages), send your message again"
            )
            return
        self.stored = True
        say(f"assistant> {answer}", style="green")

    def command(self, line: str) -> bool:
        """Run a /command; False when the chat should end."""
        name, _, argument = line[1:].partition(" ")
        argument = argument.strip()
        sid = self.session.session_id
        if name in ("exit", "quit"):
            return False
        if name == "help":
            say(_HELP)
        elif name == "history":
            if self.session.messages:
                transcript(self.session.messages)
            else:
                say("(no messages yet)")
        elif not self.stored and name in ("checkpoint", "checkpoints", "restore"):
            self.fail(
                f"/{name}: session {sid} is not stored yet; a new session is stored with its "
                "first exchange"
            )
        elif name == "checkpoint":
            number = self.store.checkpoint(sid, argument or None)
            self.reload()  # a checkpoint may bump the session's version
            label = f" ({argument})" if argument else ""
            say(f"checkpoint {number}{label} saved at {len(self.session)} messages")
        elif name == "checkpoints":
            found = self.store.checkpoints(sid)
            rows = [(c.number, c.label, c.message_count, c.created_at) for c in found]
            if rows:
                table(["VERSION", "LABEL", "MESSAGES", "CREATED"], rows)
            else:
                say("(no checkpoints yet)")
        elif name == "restore":
            if not argument.isdigit():
                self.fail("usage: /restore N (see /checkpoints)")
                return True
            self.store.restore(sid, int(argument))
            self.reload()
            saved = self.store.checkpoints(sid)[-1].number
            say(
                f"restored checkpoint {argument}: {len(self.session)} messages "
                f"(the state before is checkpoint {saved})"
            )
        else:
            self.fail(f"unknown command /{name}; /help lists them")
        return True

    def fail(self, text: str) -> None:
        self.failures += 1
        error(text)


def chat(
    ctx: typer.Context,
    session_id: Annotated[
        str | None,
        typer.Option(
            "--session",
            metavar="ID",
            help="Resume this session (created with this id if it does not exist).",
            autocompletion=complete_session_id,
        ),
    ] = None,
    system: Annotated[
        str | None,
        typer.Option("--system", metavar="TEXT", help="System prompt of a new session."),
    ] = None,
    model: Annotated[
        str | None,
        typer.Option("--model", "-m", help="Model name [default: $AILIB_MODEL or gpt-4o-mini]."),
    ] = None,
    offline: Annotated[
        bool,
        typer.Option("--offline", help="Answer with the deterministic offline responder."),
    ] = False,
    user: Annotated[
        str | None,
        typer.Option("--user", "-u", help="user_id metadata of a new session."),
    ] = None,
    store: StoreOption = None,
) -> None:
    """Chat with a model; every turn is stored. Type /help for the commands."""
    from ailib.session import Session

    opened = open_cli_store(ctx, store, access=Access.WRITE)
    client, label = _client(model, offline)
    existing = None if session_id is None else opened.get(session_id)
    if existing is None:
        session = Session(
            session_id,
            messages=[{"role": "system", "content": system}] if system else (),
            metadata={"user_id": user} if user else None,
        )
        say(f"new session {session.session_id} in {opened.url}", style="bold")
    else:
        session = existing.bind(opened)
        say(f"resumed session {session.session_id} from {opened.url}: {len(session)} messages")
        if system:
            note("--system applies to new sessions only; the stored history is kept as it is")
        shown = session.messages[-_RESUME_SHOWN:]
        if len(session) > len(shown):
            say(f"… {len(session) - len(shown)} earlier messages (/history shows them)")
        transcript(shown, start=len(session) - len(shown))
    say(label, style="bold yellow" if label.startswith("OFFLINE") else "bold")
    say("type a message, or /help for commands")
    _loop(_Chat(opened, session, client, stored=existing is not None))


def _loop(state: _Chat) -> None:
    interactive = sys.stdin.isatty()
    while True:
        try:
            line = input("you> ") if interactive else sys.stdin.readline()
        except (EOFError, KeyboardInterrupt):
            say("")
            break
        if not interactive and not line:
            break
        line = line.strip()
        if not line:
            continue
        if not interactive:
            say(f"you> {line}", style="cyan")
        if line.startswith("/"):
            try:
                if not state.command(line):
                    break
            except StoreUnavailable:
                raise
            except AilibError as exc:
                state.fail(for_cli(exc, store=state.store.url, in_chat=True))
        else:
            state.turn(line)
    sid = state.session.session_id
    if state.stored:
        plural = "" if len(state.session) == 1 else "s"
        say(f"session {sid} holds {len(state.session)} message{plural}")
        say(f"resume later with: ailib chat --session {sid}")
    else:
        say(
            f"nothing was saved: a new session ({sid}) is stored with its first exchange, "
            "and none took place"
        )
    if state.failures:
        raise typer.Exit(1)
