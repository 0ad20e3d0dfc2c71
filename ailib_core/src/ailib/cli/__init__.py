"""The ``ailib`` command line: chat, inspect and move sessions in any store named by URL.

This module is what the ``ailib`` console script imports, so it imports almost nothing:
``ailib --version`` is answered before Typer is loaded, and the app itself
(:mod:`ailib.cli.root`, also reachable as ``ailib.cli.app``) is imported for every other
command.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ailib.cli.root import app

__all__ = ("app", "main", "version_line")


def version_line() -> str:
    """What ``ailib --version`` prints: the installed version of ailib-core."""
    from ailib import installed_version

    return f"ailib {installed_version()}"


def main() -> None:
    """The ``ailib`` console script."""
    if sys.argv[1:] == ["--version"]:
        print(version_line(), flush=True)
        return
    from ailib.cli.root import app

    app(prog_name="ailib")


if not TYPE_CHECKING:

    def __getattr__(name: str) -> Any:
        if name == "app":
            from ailib.cli.root import app

            return app
        raise AttributeError(f"module 'ailib.cli' has no attribute {name!r}")
