"""The ``ailib`` command line: chat, inspect and move sessions in any store named by URL.

Each noun has its module (``chat``, ``sessions``, ``transfer``); this one builds the app, the
global options and the error handling: an :class:`~ailib.AilibError` or a file error ends the
command with one line on stderr and exit status 1, with the traceback only under ``--debug``.
"""

from __future__ import annotations

import os
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from ailib import __version__
from ailib.cli import chat, sessions, transfer
from ailib.cli.common import ENV_URL, State, StoreOption, default_store_url, state_of
from ailib.cli.output import report_failure, say, table
from ailib.errors import AilibError
from ailib.registry import available_stores
from ailib.url import make_url

__all__ = ("app", "main")


class _AilibGroup(TyperGroup):
    """The root group; every subcommand runs inside its ``invoke``, so errors end here."""

    def invoke(self, ctx: Any) -> Any:  # typer's vendored click.Context
        try:
            return super().invoke(ctx)
        except BrokenPipeError:
            # `ailib sessions ls | head`: the reader has gone; nothing more to say.
            raise typer.Exit(1) from None
        except (AilibError, OSError) as exc:
            debug = state_of(ctx).debug or os.environ.get("AILIB_DEBUG") == "1"
            report_failure(exc, debug=debug)
            raise typer.Exit(1) from None


app = typer.Typer(
    name="ailib",
    cls=_AilibGroup,
    help="Conversation sessions for LLM apps, in any store named by URL.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(sessions.app, name="sessions")
sessions.app.command("export")(transfer.export)
sessions.app.command("import")(transfer.import_)
sessions.app.command("copy")(transfer.copy)
sessions.app.command("reencrypt")(transfer.reencrypt)
app.command("chat")(chat.chat)


def _show_version(value: bool) -> None:
    if value:
        say(f"ailib {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    ctx: typer.Context,
    store: StoreOption = None,
    debug: Annotated[
        bool, typer.Option("--debug", help="Show the traceback of an error.", show_default=False)
    ] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_show_version, is_eager=True, help="Show ailib's version."
        ),
    ] = False,
) -> None:
    ctx.obj = State(store_url=store, debug=debug)


@app.command("stores")
def stores() -> None:
    """List installed store backends: scheme, distribution, version."""
    found = available_stores()
    table(
        ["SCHEME", "DISTRIBUTION", "VERSION", "CLASS"],
        [(info.scheme, info.distribution, info.version, info.target) for info in found],
    )
    default = default_store_url()
    env = os.environ.get(ENV_URL)
    say("")
    say(f"default store: {make_url(default).render()}" + ("" if env else "  (in use)"))
    if env:
        say(f"{ENV_URL}: {make_url(env).render()}  (in use)")


def main() -> None:
    """The ``ailib`` console script."""
    app(prog_name="ailib")
