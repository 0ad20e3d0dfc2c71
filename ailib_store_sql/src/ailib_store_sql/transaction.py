"""The attempts at one transaction of an operation, once for both twins.

What to do after a failed attempt (run it again, look up whether a lost write landed, pause,
give up) is written here once as a *work*: a generator that yields the transactions it
needs (``Run``) and the pauses between them (``Pause``) and is sent back each transaction's
result, or ``Failed`` with the database error that ended it. ``SQLStore`` performs the steps
on its engines with ``ailib.spi.drive``, ``AsyncSQLStore`` with ``drive_async``; each twin
only opens the transaction, runs the program in it, and sleeps. Performing one
``operations.Operation`` (a step of a store operation) is driving its ``attempts``.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import sqlalchemy as sa

from ailib.spi import note_retry
from ailib_store_sql import operations as ops
from ailib_store_sql.errors import Attempts

__all__ = ("Failed", "Pause", "Run", "Step", "Work", "attempts")

T = TypeVar("T")


@dataclass(frozen=True)
class Run(Generic[T]):
    """Run a fresh ``program()`` in one transaction; sent back its result, or ``Failed``."""

    program: Callable[[], ops.Program[T]]
    write: bool
    #: Atomic as one statement: may run in autocommit mode (``Operation.single``).
    single: bool = False


@dataclass(frozen=True)
class Pause:
    """Wait ``seconds`` before the next attempt."""

    seconds: float


@dataclass(frozen=True)
class Failed:
    """A transaction the database ended with ``error`` (rolled back, or its connection lost)."""

    error: sa.exc.DBAPIError


Step = Run[Any] | Pause
#: The attempts at one ``Operation``: its transactions and the pauses between them.
Work = Generator[Step, Any, T]


def attempts(operation: ops.Operation[T]) -> Work[T]:
    """Run ``operation`` until it succeeds or there is no point in trying again: after a
    deadlock or serialization failure it runs again (the database rolled it back); after a
    lost connection, a read runs again, and a write with an op id first looks up whether the
    lost attempt landed (``errors.Attempts`` keeps count and paces them). A repeated op id
    (the op table's primary key refused it) returns what its first application produced."""
    policy = Attempts(write=operation.write, recoverable=operation.recover is not None)
    recover = operation.recover
    while True:
        outcome: Any = None
        if policy.lost and recover is not None:
            outcome = yield Run(recover, write=False)
            if not isinstance(outcome, Failed) and outcome is not None:
                result: T = outcome
                return result
        if not isinstance(outcome, Failed):
            outcome = yield Run(operation.program, operation.write, operation.single)
            if not isinstance(outcome, Failed):
                done: T = outcome
                return done
        error = outcome.error
        if isinstance(error, sa.exc.IntegrityError):
            landed = None if recover is None else (yield Run(recover, write=False))
            if isinstance(landed, Failed):
                raise landed.error
            if landed is None:
                raise error
            found: T = landed
            return found
        pause = Pause(policy.delay(error))
        note_retry()
        yield pause
