"""The one trampoline that runs a store operation written once, for sync and async alike.

A store may write each operation as a generator (a *program*) that yields the I/O steps it
needs (a statement, a command, a request) and receives each step's result; it never does
I/O itself. :func:`drive` runs a program with a blocking ``perform``, :func:`drive_async`
with an awaitable one, so the sync store and its asyncio twin share every operation and
differ only in how a step is performed. :class:`Programs` is the set of programs a
:class:`ailib.program_store.ProgramStore` runs as its operations.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Generator, Sequence
from typing import Any, Protocol, TypeVar

from ailib.messages import Message
from ailib.records import Change, CheckpointRecord, SessionRecord
from ailib.storecore import CheckpointState

__all__ = ("Program", "Programs", "drive", "drive_async")

S = TypeVar("S")
T = TypeVar("T")
C_contra = TypeVar("C_contra", contravariant=True)
S_co = TypeVar("S_co", covariant=True)

#: A program yielding steps of type ``S`` and returning ``T``.
Program = Generator[S, Any, T]


class Programs(Protocol[C_contra, S_co]):
    """Every store operation as a program: what a ``ProgramStore`` runs.

    A module of generator functions satisfies it as well as a class does. Each takes the
    store's context (``C_contra``: what the programs need to know of the store, such as its
    namespace, key prefix or tables) and the operation's arguments, yields steps of type
    ``S_co``, and returns what the ``BaseStore`` operation of the same name (with a leading
    underscore; ``list_page`` is ``_list``) returns, under the same contract.
    """

    def create(self, context: C_contra, record: SessionRecord, /) -> Program[S_co, None]: ...

    def fetch(
        self, context: C_contra, session_id: str, last: int | None, /
    ) -> Program[S_co, SessionRecord | None]: ...

    def apply(
        self, context: C_contra, session_id: str, change: Change, now: float, /
    ) -> Program[S_co, int]: ...

    def replace(
        self, context: C_contra, record: SessionRecord, expected_version: int, now: float, /
    ) -> Program[S_co, int]: ...

    def delete(self, context: C_contra, session_id: str, /) -> Program[S_co, bool]: ...

    def list_page(
        self,
        context: C_contra,
        user_id: str | None,
        limit: int,
        after: tuple[float, str] | None,
        now: float,
        /,
    ) -> Program[S_co, Sequence[SessionRecord]]: ...

    def purge(self, context: C_contra, now: float, /) -> Program[S_co, int]: ...

    def pop(
        self, context: C_contra, session_id: str, count: int, now: float, /
    ) -> Program[S_co, list[Message]]: ...

    def checkpoint(
        self, context: C_contra, session_id: str, label: str | None, now: float, /
    ) -> Program[S_co, int]: ...

    def checkpoints(
        self, context: C_contra, session_id: str, now: float, /
    ) -> Program[S_co, Sequence[CheckpointRecord] | None]: ...

    def checkpoint_state(
        self, context: C_contra, session_id: str, number: int, now: float, /
    ) -> Program[S_co, CheckpointState]: ...

    def restore(
        self, context: C_contra, session_id: str, number: int, now: float, /
    ) -> Program[S_co, int]: ...


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
