"""The one trampoline that runs a store operation written once, for sync and async alike.

A store may write each operation as a generator (a *program*) that yields the I/O steps it
needs (a statement, a command, a request) and receives each step's result; it never does
I/O itself. :func:`drive` runs a program with a blocking ``perform``, :func:`drive_async`
with an awaitable one, so the sync store and its asyncio twin share every operation and
differ only in how a step is performed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Generator
from typing import Any, TypeVar

__all__ = ("Program", "drive", "drive_async")

S = TypeVar("S")
T = TypeVar("T")

#: A program yielding steps of type ``S`` and returning ``T``.
Program = Generator[S, Any, T]


def drive(program: Program[S, T], perform: Callable[[S], object]) -> T:
    """Run ``program``, performing each step it yields and sending back the result."""
    try:
        step = next(program)
        while True:
            step = program.send(perform(step))
    except StopIteration as done:
        result: T = done.value
        return result


async def drive_async(program: Program[S, T], perform: Callable[[S], Awaitable[object]]) -> T:
    """:func:`drive` with each step awaited."""
    try:
        step = next(program)
        while True:
            step = program.send(await perform(step))
    except StopIteration as done:
        result: T = done.value
        return result
