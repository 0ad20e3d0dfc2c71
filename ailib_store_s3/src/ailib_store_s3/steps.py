"""Programs and steps: how every store operation is written once, free of I/O.

An operation is a *program*: a generator that yields steps and is sent back each step's
result (or has its error thrown in, so ``try``/``except``/``finally`` inside a program work
as in plain code). A step is one S3 call (:class:`Call`), programs run concurrently
(:class:`Parallel`), best-effort clean-up off the caller's path (:class:`Later`), a backoff
(:class:`Sleep`) or waiting for a group-commit turn (:class:`Wait`).

A *driver* carries the steps out: :class:`ailib_store_s3.bucket.Bucket` with boto3 and a
thread pool (:func:`run`), :class:`ailib_store_s3.aio.AsyncBucket` with aiobotocore and
asyncio tasks (:func:`run_async`). Each step names the driver method that performs it
(:meth:`via`), so neither driver decides anything an operation does.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeAlias, TypeVar

from botocore.exceptions import ClientError

from ailib_store_s3.client import error_code, is_missing, is_precondition_failed, translate

__all__ = (
    "Call",
    "Later",
    "Parallel",
    "Program",
    "Sleep",
    "Step",
    "Wait",
    "run",
    "run_async",
)

T = TypeVar("T")


@dataclass(frozen=True)
class Call:
    """One S3 API call on the store's bucket: the client method ``method`` (``action`` in
    messages) with ``kwargs``; ``decode`` turns the response into the step's result."""

    action: str
    method: str
    kwargs: Mapping[str, Any]
    decode: Callable[[Mapping[str, Any]], Any]
    #: The response has a body to read (GetObject): the driver reads it into ``Body``.
    streamed: bool = False
    #: A missing key answers None (GetObject) rather than raising.
    missing_is_none: bool = False

    def via(self, driver: Any) -> Any:
        return driver.call(self)

    def failed(self, exc: BaseException, bucket: str, endpoint: str) -> None:
        """What a failed call gives: None for a missing key where that is an answer; 412,
        missing-key and unsatisfiable-range (an empty object) answers re-raised as
        ClientError for the program to decide on; anything else an ailib error naming the
        bucket and endpoint."""
        if isinstance(exc, ClientError):
            if self.missing_is_none and is_missing(exc):
                return None
            if is_precondition_failed(exc) or is_missing(exc) or error_code(exc) == "InvalidRange":
                raise exc
        raise translate(exc, bucket=bucket, endpoint=endpoint, action=self.action) from exc


@dataclass(frozen=True)
class Parallel:
    """Run ``programs`` concurrently (one round trip for the caller); their results in
    order. Every program finishes before the first error, if any, is raised."""

    programs: Sequence[Program[Any]]

    def via(self, driver: Any) -> Any:
        return driver.parallel(self)

    @staticmethod
    def settle(outcomes: Sequence[object]) -> list[Any]:
        """The results, given each program's result or exception."""
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome
        return list(outcomes)


@dataclass(frozen=True)
class Later:
    """Start ``program`` in the background and go on at once (best-effort clean-up; the
    store's ``flush``/``close`` wait for it)."""

    program: Program[None]

    def via(self, driver: Any) -> Any:
        return driver.later(self)


@dataclass(frozen=True)
class Sleep:
    seconds: float

    def via(self, driver: Any) -> Any:
        return driver.sleep(self)


class Event(Protocol):
    """``threading.Event`` (sync store) or ``asyncio.Event`` (async store)."""

    def set(self) -> None: ...


@dataclass(frozen=True)
class Wait:
    """Wait until ``event`` is set."""

    event: Event = field(compare=False)

    def via(self, driver: Any) -> Any:
        return driver.wait(self)


Step: TypeAlias = Call | Parallel | Later | Sleep | Wait
#: An operation's logic: yields steps, receives their results, returns the outcome.
Program: TypeAlias = Generator[Step, Any, T]


class _Cursor:
    """Where a driven program stands: the answer to send it next, or the error to throw."""

    def __init__(self, program: Program[Any]) -> None:
        self.program = program
        self.value: Any = None
        self.error: BaseException | None = None
        self.result: Any = None

    def next(self) -> Step | None:
        """The program's next step; None once it has returned (its value in ``result``)."""
        try:
            if self.error is None:
                return self.program.send(self.value)
            return self.program.throw(self.error)  # its except and finally blocks run
        except StopIteration as done:
            self.result = done.value
            return None

    def answer(self, value: Any) -> None:
        self.value, self.error = value, None

    def fail(self, error: BaseException) -> None:
        self.value, self.error = None, error


def run(program: Program[T], driver: Any) -> T:
    """Drive ``program`` with a blocking driver; its result."""
    cursor = _Cursor(program)
    while (step := cursor.next()) is not None:
        try:
            cursor.answer(step.via(driver))
        except BaseException as exc:
            cursor.fail(exc)
    result: T = cursor.result
    return result


async def run_async(program: Program[T], driver: Any) -> T:
    """:func:`run` for an asyncio driver: the same program, each step awaited."""
    cursor = _Cursor(program)
    while (step := cursor.next()) is not None:
        try:
            cursor.answer(await step.via(driver))
        except BaseException as exc:
            cursor.fail(exc)
    result: T = cursor.result
    return result
