"""What the CLI prints: Rich on a terminal, plain lines when piped, errors as one line.

Results go to stdout; progress, notes, warnings and errors go to stderr, so that
``ailib sessions export > file.jsonl`` or ``ailib sessions ls | cut -f1`` get only data. Each
check of "is this a terminal" is made when printing, because Typer's test runner swaps
``sys.stdout`` per invocation. Rich is imported only when something is drawn on a terminal, so
piped output and ``ailib --help`` never load it.
"""

from __future__ import annotations

import json
import sys
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ailib.errors import AilibError

if TYPE_CHECKING:
    from rich.console import Console

    from ailib.messages import Message

__all__ = (
    "emit_json",
    "error",
    "note",
    "one_line",
    "progress",
    "report_failure",
    "say",
    "table",
    "transcript",
    "warn",
)


def _console(*, stderr: bool = False) -> Console:
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, soft_wrap=True)


def escape(text: str) -> str:
    """``text`` with Rich markup disabled."""
    from rich.markup import escape as rich_escape

    return rich_escape(text)


def is_terminal(*, stderr: bool = False) -> bool:
    """Whether stdout (stderr) is a terminal. Only a real one counts, not Rich's FORCE_COLOR:
    that asks for colour, while piped output must keep its plain layout."""
    stream = sys.stderr if stderr else sys.stdout
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def say(text: str, style: str | None = None) -> None:
    """A result line on stdout."""
    if is_terminal():
        _console().print(escape(text), style=style)
    else:
        print(text, file=sys.stdout, flush=True)


def note(text: str, style: str | None = "dim") -> None:
    """A status line on stderr."""
    if is_terminal(stderr=True):
        _console(stderr=True).print(escape(text), style=style)
    else:
        print(text, file=sys.stderr, flush=True)


def warn(text: str) -> None:
    note(f"warning: {text}", style="yellow")


def error(text: str) -> None:
    note(f"error: {text}", style="bold red")


def one_line(exc: BaseException) -> str:
    """The exception as one line: its message with whitespace collapsed, and for file errors
    the file name, which ``str(OSError)`` buries."""
    if isinstance(exc, OSError) and exc.strerror:
        where = f": {exc.filename}" if exc.filename is not None else ""
        text = f"{exc.strerror}{where}"
    else:
        text = str(exc) or type(exc).__name__
    if not isinstance(exc, AilibError | OSError):
        text = f"{type(exc).__name__}: {text}"
    return " ".join(text.split())


def report_failure(exc: BaseException, *, debug: bool, text: str | None = None) -> None:
    """Print ``exc`` for a user, as ``text`` (default: :func:`one_line`), with the traceback
    under ``debug``."""
    if debug:
        traceback.print_exception(exc, file=sys.stderr)
    error(text or one_line(exc))
    if not debug:
        note("(run with --debug to see the traceback)")


def table(columns: Sequence[str], rows: Sequence[Sequence[Any]], title: str | None = None) -> None:
    """A Rich table on a terminal; tab-separated lines with a header row when piped."""
    if is_terminal():
        from rich.table import Table

        grid = Table(title=title, title_justify="left", show_edge=False)
        for number, column in enumerate(columns):
            grid.add_column(column, no_wrap=number == 0)  # ids must stay copyable
        for row in rows:
            grid.add_row(*(escape(_cell(value)) for value in row))
        _console().print(grid)
        return
    print("\t".join(columns), file=sys.stdout)
    for row in rows:
        print("\t".join(_cell(value).replace("\t", " ") for value in row), file=sys.stdout)
    sys.stdout.flush()


def emit_json(value: Any, *, indent: int | None = None) -> None:
    """One JSON document on stdout (one line unless ``indent``), never styled by Rich, so
    that scripts can parse it on a terminal too."""
    print(json.dumps(value, ensure_ascii=False, indent=indent, default=str), file=sys.stdout)
    sys.stdout.flush()


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, datetime):
        return when(value)
    return str(value)


def when(value: datetime) -> str:
    """A timestamp in the local time zone, to the second."""
    return value.astimezone().strftime("%Y-%m-%d %H:%M:%S")


@contextmanager
def progress(label: str, total: int | None) -> Iterator[Callable[[], None]]:
    """Yield a function to call once per item done. On a terminal (stderr) a Rich progress
    bar, a spinner if ``total`` is None; otherwise about ten plain ``label: n/total`` lines."""
    if is_terminal(stderr=True):
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            ProgressColumn,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
        )

        columns: list[ProgressColumn] = [SpinnerColumn(), TextColumn("{task.description}")]
        if total is not None:
            columns += [BarColumn(), MofNCompleteColumn()]
        with Progress(*columns, TimeElapsedColumn(), console=_console(stderr=True)) as bar:
            task = bar.add_task(escape(label), total=total)
            yield lambda: bar.advance(task)
        return
    done = 0
    step = max(1, (total or 0) // 10)
    print(f"{label}: 0/{total}" if total is not None else f"{label} …", file=sys.stderr)

    def advance() -> None:
        nonlocal done
        done += 1
        if total is not None and (done % step == 0 or done == total):
            print(f"{label}: {done}/{total}", file=sys.stderr, flush=True)

    yield advance
    sys.stderr.flush()


def transcript(messages: Sequence[Message], *, start: int = 0) -> None:
    """Print messages as a readable conversation, numbered from ``start + 1``."""
    rich = is_terminal()
    console = _console() if rich else None
    styles = {"user": "bold cyan", "assistant": "bold green", "system": "bold magenta"}
    for number, message in enumerate(messages, start + 1):
        role = str(message.get("role") or message.get("type") or "item")
        head = f"[{number}] {role}"
        if message.get("name"):
            head += f" ({message['name']})"
        if message.get("tool_call_id"):
            head += f" (result of {message['tool_call_id']})"
        body = _body(message)
        if console is not None:
            console.print(f"[{styles.get(role, 'bold')}]{escape(head)}:[/] {escape(body)}")
        else:
            print(f"{head}: {body}", file=sys.stdout)
    sys.stdout.flush()


def _body(message: Message) -> str:
    from ailib.window import message_text

    if "role" not in message:
        return json.dumps(message, ensure_ascii=False)
    parts = [message_text(message)]
    content = message.get("content")
    if isinstance(content, list):
        kinds = [str(p.get("type")) for p in content if isinstance(p, dict) and "text" not in p]
        parts += [f"[{kind}]" for kind in kinds]
    for call in message.get("tool_calls") or ():
        function = call.get("function", {}) if isinstance(call, dict) else {}
        parts.append(
            f"→ calls {function.get('name', '?')}({function.get('arguments', '')})"
            f" [{call.get('id', '?') if isinstance(call, dict) else '?'}]"
        )
    if message.get("refusal"):
        parts.append(f"(refused: {message['refusal']})")
    return " ".join(part for part in parts if part)
