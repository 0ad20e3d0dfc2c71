"""What every command shares: the global options and which store a command opens, and how.

A command opens its store for one of three kinds of access (:class:`Access`). Only commands
that write new sessions (``chat``, ``import``, the destination of ``copy``) may bring a store
into being; every other command refuses a store that does not exist ("no such store", exit 1)
and creates no file, folder or table on the way. Store modules are imported only when a store
is opened, so ``ailib --help`` does not load them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import unquote

import typer

from ailib.cli.output import warn
from ailib.cli.wording import NoSuchStore
from ailib.errors import ConfigurationError

if TYPE_CHECKING:
    from ailib.base import BaseStore
    from ailib.url import StoreURL

__all__ = (
    "ENV_URL",
    "Access",
    "State",
    "StoreOption",
    "default_store_url",
    "open_cli_store",
    "open_url",
    "session_ids",
    "state_of",
)

ENV_URL = "AILIB_STORE_URL"


def complete_url(incomplete: str) -> list[str]:
    """Shell completion of ``--store``: the installed schemes, as ``scheme://``."""
    from ailib.registry import available_stores

    return [
        f"{info.scheme}://"
        for info in available_stores()
        if f"{info.scheme}://".startswith(incomplete)
    ]


StoreOption = Annotated[
    str | None,
    typer.Option(
        "--store",
        "-s",
        metavar="URL",
        help=f"Store URL, e.g. sqlite:///sessions.db or redis://localhost:6379/0 "
        f"[default: ${ENV_URL}, else SQLite in your user data directory]",
        show_default=False,
        autocompletion=complete_url,
    ),
]


class Access(Enum):
    """What a command does with its store."""

    #: Only reads (``ls``, ``show``, ``checkpoints``, ``export``, the source of ``copy``): the
    #: store must exist, and nothing is created, not even missing tables.
    READ = "read"
    #: Changes sessions that must already exist (``rm``, ``prune``, ``restore``, ``fork``,
    #: ``reencrypt``): the store must exist; its tables may be upgraded.
    EXISTING = "existing"
    #: Stores new sessions (``chat``, ``import``, the destination of ``copy``): a missing store
    #: is created.
    WRITE = "write"


@dataclass
class State:
    """Options given before the command (``ailib --store URL --debug sessions ls``), and the
    store the command opened (its URL, masked), for error messages."""

    store_url: str | None = None
    debug: bool = False
    opened: str | None = None


def state_of(ctx: typer.Context) -> State:
    obj = ctx.find_root().obj
    if not isinstance(obj, State):
        obj = ctx.find_root().obj = State()
    return obj


def _data_dir() -> Path:
    import platformdirs

    return Path(platformdirs.user_data_dir("ailib"))


def default_store_url() -> str:
    """SQLite in the user's data directory when the ``sqlite`` scheme is installed, else
    ``memory://``."""
    from ailib.registry import available_stores

    if any(info.scheme == "sqlite" for info in available_stores()):
        return "sqlite:///" + (_data_dir() / "sessions.db").as_posix()
    return "memory://"


def open_cli_store(
    ctx: typer.Context, url: str | None = None, *, access: Access = Access.READ
) -> BaseStore:
    """Open the store a command works on: ``url`` (the command's own ``--store``), else the
    global ``--store``, else ``$AILIB_STORE_URL``, else the embedded default. An empty URL is
    an error, as in ``open_store``."""
    state = state_of(ctx)
    chosen = next((u for u in (url, state.store_url) if u is not None), None)
    if chosen is None:
        chosen = os.environ.get(ENV_URL) or None
    if chosen is None:
        chosen = default_store_url()
        if chosen.startswith("memory:"):
            warn(
                "no persistent store is installed, so sessions live in memory and are lost "
                "when this command ends; pip install ailib-store-sql, or pass --store URL"
            )
    store = open_url(chosen, access)
    state.opened = store.url
    ctx.call_on_close(store.close)
    return store


def open_url(url: str, access: Access) -> BaseStore:
    """``open_store(url)`` for ``access``: see :class:`Access`."""
    from ailib.registry import open_store, resolve
    from ailib.url import make_url

    if not url.strip():
        return open_store(url)  # its error says how to write a URL
    parsed = make_url(url)
    if access is Access.WRITE:
        return open_store(parsed)
    missing = _missing_file(parsed)
    if missing is not None:
        raise NoSuchStore(
            f"no such store: {parsed.render()} does not exist (no file {str(missing)!r}); "
            "check the URL, or create the store by writing to it (ailib chat, ailib sessions "
            "import)"
        )
    options: dict[str, Any] = {}
    if access is Access.READ and "create" in resolve(parsed).options:
        options["create"] = False  # the SQL stores' switch: never create or upgrade tables
    try:
        return open_store(parsed, **options)
    except ConfigurationError as exc:
        if options and "create=false" in str(exc):
            raise NoSuchStore(
                f"no such store: {parsed.render()} holds no ailib tables of the current "
                "version (a command that only reads creates or upgrades none); write to it "
                "first (ailib chat, ailib sessions import), or check the URL and table_prefix"
            ) from exc
        raise


def _missing_file(url: StoreURL) -> Path | None:
    """The database file a ``sqlite://`` URL names, if it does not exist (SQLite would create
    it on connect); None for every other URL."""
    if url.base_scheme != "sqlite" or url.query.get("mode") == "memory":
        return None
    database = unquote(url.path[1:] if url.path.startswith("/") else url.path)
    if database in ("", ":memory:") or database.startswith("file:"):
        return None
    path = Path(database).expanduser()
    return None if path.exists() else path


#: Shell completion of a session id looks at no more than this many sessions.
COMPLETION_SCAN = 1000


def complete_session_id(ctx: typer.Context, incomplete: str) -> list[str]:
    """Shell completion of a session id: the live sessions starting with ``incomplete`` in
    the store the command line names, opened read-only. Best effort: a store that cannot be
    opened or read offers nothing rather than an error in the middle of the user's typing."""
    url = next(
        (c.params["store"] for c in (ctx, ctx.find_root()) if c.params.get("store") is not None),
        None,
    )
    try:
        store = open_url(url or os.environ.get(ENV_URL) or default_store_url(), Access.READ)
    except Exception:  # whatever went wrong, completion offers nothing
        return []
    found: list[str] = []
    try:
        for scanned, session_id in enumerate(session_ids(store), 1):
            if session_id.startswith(incomplete):
                found.append(session_id)
            if scanned >= COMPLETION_SCAN:
                break
    except Exception:  # likewise
        return []
    finally:
        store.close()
    return sorted(found)


def session_ids(store: BaseStore, user: str | None = None) -> Iterator[str]:
    """Every live session id in ``store`` (of ``user``), newest first, page by page."""
    cursor: str | None = None
    while True:
        page = store.list(user_id=user, limit=200, cursor=cursor)
        for summary in page:
            yield summary.session_id
        if page.next_cursor is None:
            return
        cursor = page.next_cursor
