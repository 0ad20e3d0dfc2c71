"""What every command shares: the global options and which store a command opens."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import platformdirs
import typer

from ailib.base import BaseStore
from ailib.cli.output import warn
from ailib.registry import available_stores, open_store

__all__ = (
    "ENV_URL",
    "State",
    "StoreOption",
    "default_store_url",
    "open_cli_store",
    "session_ids",
    "state_of",
)

ENV_URL = "AILIB_STORE_URL"

StoreOption = Annotated[
    str | None,
    typer.Option(
        "--store",
        "-s",
        metavar="URL",
        help=f"Store URL, e.g. sqlite:///sessions.db or redis://localhost:6379/0 "
        f"[default: ${ENV_URL}, else SQLite in your user data directory]",
        show_default=False,
    ),
]


@dataclass
class State:
    """Options given before the command (``ailib --store URL --debug sessions ls``)."""

    store_url: str | None = None
    debug: bool = False


def state_of(ctx: typer.Context) -> State:
    obj = ctx.find_root().obj
    return obj if isinstance(obj, State) else State()


def default_store_url() -> str:
    """SQLite in the user's data directory when the ``sqlite`` scheme is installed, else
    ``memory://``."""
    if any(info.scheme == "sqlite" for info in available_stores()):
        return "sqlite:///" + (Path(platformdirs.user_data_dir("ailib")) / "sessions.db").as_posix()
    return "memory://"


def open_cli_store(ctx: typer.Context, url: str | None = None) -> BaseStore:
    """Open the store a command works on: ``url`` (the command's own ``--store``), else the
    global ``--store``, else ``$AILIB_STORE_URL``, else the embedded default."""
    chosen = url or state_of(ctx).store_url or os.environ.get(ENV_URL)
    if not chosen:
        chosen = default_store_url()
        if chosen.startswith("sqlite:"):
            (Path(platformdirs.user_data_dir("ailib"))).mkdir(parents=True, exist_ok=True)
        else:
            warn(
                "no persistent store is installed, so sessions live in memory and are lost "
                "when this command ends; pip install ailib-store-sql, or pass --store URL"
            )
    store = open_store(chosen)
    ctx.call_on_close(store.close)
    return store


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
