"""Steps: what the store's programs yield, and what a step's answer is.

Every operation is a *program* (``ailib.spi.Program``): a generator that yields steps and is
sent back each step's answer. A step is one S3 call (:class:`Call`), programs run
concurrently (:class:`Parallel`), best-effort clean-up off the caller's path
(:class:`Later`), a backoff (:class:`Sleep`) or waiting for a group-commit turn
(:class:`Wait`). The core's ``drive`` / ``drive_async`` run the programs; each store's
``_perform`` carries one step out, choosing by its type: ``S3Store`` with boto3 and a thread
pool (:mod:`ailib_store_s3.store`), ``AsyncS3Store`` with aiobotocore and asyncio tasks
(:mod:`ailib_store_s3.aio`).

A step never raises: a failed one answers :class:`Failed`, and the program raises its error
where it stands with :func:`unwrap`, so ``try``/``except``/``finally`` in programs work as in
plain code. A parallel step answers each program's result or :class:`Failed`, in order.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeAlias, TypeVar, cast

from botocore.exceptions import ClientError

from ailib_store_s3.client import error_code, is_missing, is_precondition_failed, translate

__all__ = (
    "Call",
    "Failed",
    "Later",
    "Parallel",
    "Program",
    "Sleep",
    "Step",
    "Wait",
    "unwrap",
    "unwrap_all",
)

T = TypeVar("T")


@dataclass(frozen=True)
class Failed:
    """The answer of a step (or of one program of a parallel step) that failed."""

    error: BaseException


def unwrap(answer: T | Failed) -> T:
    """A step's result; a failed step's error is raised (inside the program)."""
    if isinstance(answer, Failed):
        raise answer.error
    return answer


def unwrap_all(answers: Sequence[T | Failed] | Failed) -> list[T]:
    """A parallel step's results in order; the first failure, if any, is raised (every
    program has finished by then), as is the step's own (a cancelled wait for them)."""
    if isinstance(answers, Failed):
        raise answers.error
    for answer in answers:
        if isinstance(answer, Failed):
            raise answer.error
    return cast("list[T]", list(answers))


@dataclass(frozen=True)
class Call(Generic[T]):
    """One S3 API call on the store's bucket: the client method ``method`` (``action`` in
    messages) with ``kwargs``; ``decode`` turns the response into the step's result."""

    action: str
    method: str
    kwargs: Mapping[str, Any]
    decode: Callable[[Mapping[str, Any]], T]
    #: The response has a body to read (GetObject): the driver reads it into ``Body``.
    streamed: bool = False
    #: A missing key answers None (GetObject) rather than failing.
    missing_is_none: bool = False

    def failed(self, exc: BaseException, bucket: str, endpoint: str) -> Failed | None:
        """What a failed call answers: None for a missing key where that is an answer; 412,
        missing-key and unsatisfiable-range (an empty object) answers as the ClientError,
        for the program to decide on; anything else an ailib error naming the bucket and
        endpoint."""
        if isinstance(exc, ClientError):
            if self.missing_is_none and is_missing(exc):
                return None
            if is_precondition_failed(exc) or is_missing(exc) or error_code(exc) == "InvalidRange":
                return Failed(exc)
        error = translate(exc, bucket=bucket, endpoint=endpoint, action=self.action)
        error.__cause__ = exc
        return Failed(error)


@dataclass(frozen=True)
class Parallel:
    """Run ``programs`` concurrently (one round trip for the caller); answers each one's
    result or :class:`Failed`, in order."""

    programs: Sequence[Program[Any]]


@dataclass(frozen=True)
class Later:
    """Start ``program`` in the background and go on at once (best-effort clean-up; the
    store's ``flush``/``close`` wait for it)."""

    program: Program[None]


@dataclass(frozen=True)
class Sleep:
    seconds: float


class Event(Protocol):
    """``threading.Event`` (sync store) or ``asyncio.Event`` (async store)."""

    def set(self) -> None: ...


@dataclass(frozen=True)
class Wait:
    """Wait until ``event`` is set."""

    event: Event = field(compare=False)


Step: TypeAlias = Call[Any] | Parallel | Later | Sleep | Wait
#: An operation's logic: yields steps, is sent their answers, returns the outcome.
Program: TypeAlias = Generator[Step, Any, T]
