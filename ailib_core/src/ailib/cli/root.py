"""The Typer app of the ``ailib`` command: the root group, its global options and errors.

Each noun has its module (``chat``, ``sessions``, ``transfer``); this one builds the app, the
global options and the error handling: an :class:`~ailib.AilibError` or a file error ends the
command with one line on stderr, in the command line's terms (:mod:`ailib.cli.wording`), and
exit status 1, with the traceback only under ``--debug``.

Start-up is kept short: the command modules import stores, Rich and the ``openai`` package
only inside the commands that use them, so ``ailib --help`` and shell completion load little
more than Typer.
"""

from __future__ import annotations

import os
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from ailib.cli import chat, sessions, transfer
from ailib.cli.common import ENV_URL, State, StoreOption, default_store_url, state_of
from ailib.cli.output import emit_json, report_failure, say, table
from ailib.cli.shapes import store_json
from ailib.cli.wording import for_cli
from ailib.errors import AilibError

__all__ = ("app",)


class _AilibGroup(TyperGroup):
    """The root group; every subcommand runs inside its ``invoke``, so errors end here."""

    def invoke(self, ctx: Any) -> Any:  # typer's vendored click.Context
        try:
            return super().invoke(ctx)
        except BrokenPipeError:
            # `ailib sessions ls | head`: the reader has gone; nothing more to say.
            raise typer.Exit(1) from None
        except (AilibError, OSError) as exc:
            state = state_of(ctx)
            debug = state.debug or os.environ.get("AILIB_DEBUG") == "1"
            report_failure(exc, debug=debug, text=for_cli(exc, store=state.opened))
            raise typer.Exit(1) from None


app = typer.Typer(
    name="ailib",
    cls=_AilibGroup,
    help="Conversation sessions for LLM apps, in any store named by URL.",
    no_args_is_help=True,
    add_completion=True,
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
        from ailib.cli import version_line

        say(version_line())
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
def stores(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object.")] = False,
) -> None:
    """List installed store backends: scheme, distribution, version."""
    import ailib
    from ailib.registry import available_stores
    from ailib.url import make_url

    found = available_stores()
    default = make_url(default_store_url()).render()
    env = os.environ.get(ENV_URL) or None
    given = state_of(ctx).store_url
    shown_env = None if env is None else make_url(env).render()
    in_use = make_url(given).render() if given is not None else shown_env or default
    if as_json:
        emit_json(
            {
                "ailib_core": ailib.__version__,
                "stores": [store_json(info) for info in found],
                "default_url": default,
                "env_url": shown_env,
                "url_in_use": in_use,
            }
        )
        return
    table(
        ["SCHEME", "DISTRIBUTION", "VERSION", "CLASS"],
        [(info.scheme, info.distribution, info.version, info.target) for info in found],
    )
    say("")
    say(f"default store: {default}" + ("  (in use)" if in_use == default else ""))
    if shown_env is not None:
        say(f"{ENV_URL}: {shown_env}" + ("  (in use)" if in_use == shown_env else ""))
    if given is not None:
        say(f"--store: {in_use}  (in use)")
