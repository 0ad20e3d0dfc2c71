"""The S3 calls the store makes, as programs, and the steps those programs yield.

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

GETs answer None for a missing key; conditional PUTs and DELETEs let 412 and missing-key
answers through as ``ClientError`` for the operation to decide on; DeleteObjects goes in
batches of 1,000; listing is ListObjectsV2 one page a step. Clean-up is best effort, off the
caller's path: a failure is logged, and the next writer or purge retries it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Generator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeAlias, TypeVar, cast

from botocore.exceptions import ClientError

from ailib_store_s3.client import error_code, is_missing, is_precondition_failed, translate

if TYPE_CHECKING:
    import asyncio
    import threading

__all__ = (
    "Call",
    "Event",
    "Failed",
    "Later",
    "Page",
    "Parallel",
    "Program",
    "Sleep",
    "Step",
    "Wait",
    "Write",
    "all_keys",
    "delete_keys",
    "delete_object",
    "delete_prefix",
    "discard",
    "get",
    "get_all",
    "later",
    "list_page",
    "put",
    "put_all",
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


#: What a group-commit writer waits on: ``threading.Event`` (sync store) or
#: ``asyncio.Event`` (async store).
Event: TypeAlias = "threading.Event | asyncio.Event"


@dataclass(frozen=True)
class Wait:
    """Wait until ``event`` is set."""

    event: Event = field(compare=False)


Step: TypeAlias = Call[Any] | Parallel | Later | Sleep | Wait
#: An operation's logic: yields steps, is sent their answers, returns the outcome.
Program: TypeAlias = Generator[Step, Any, T]


log = logging.getLogger(__name__)

#: An object to PUT: (key, body).
Write = tuple[str, bytes]
#: One ListObjectsV2 page: its keys, and the token of the next page (None: the last).
Page = tuple[list[str], str | None]

_DELETE_BATCH = 1000


def _object(response: Mapping[str, Any]) -> tuple[bytes, str]:
    return response["Body"], response["ETag"]


def _etag(response: Mapping[str, Any]) -> str:
    return str(response["ETag"])


def _page(response: Mapping[str, Any]) -> Page:
    keys = [item["Key"] for item in response.get("Contents", ())]
    token = response.get("NextContinuationToken") if response.get("IsTruncated") else None
    return keys, token


def _nothing(response: Mapping[str, Any]) -> None:
    return None


def get(key: str, byte_range: str | None = None) -> Program[tuple[bytes, str] | None]:
    """The object's bytes and ETag; None if there is no such key."""
    extra = {"Range": byte_range} if byte_range else {}
    call = Call(
        "GetObject", "get_object", {"Key": key, **extra}, _object, True, missing_is_none=True
    )
    found: tuple[bytes, str] | Failed | None = yield call
    return unwrap(found)


def get_all(keys: Sequence[str]) -> Program[list[tuple[bytes, str] | None]]:
    """:func:`get` of each key, in parallel."""
    found: list[tuple[bytes, str] | Failed | None] | Failed = yield Parallel([get(k) for k in keys])
    return unwrap_all(found)


def put(
    key: str, body: bytes, *, if_match: str | None = None, create: bool = False
) -> Program[str]:
    """PUT an object (If-Match ``if_match``, or If-None-Match when ``create``); its ETag."""
    extra: dict[str, str] = {}
    if if_match is not None:
        extra["IfMatch"] = if_match
    elif create:
        extra["IfNoneMatch"] = "*"
    kwargs = {"Key": key, "Body": body, "ContentType": "application/json", **extra}
    etag: str | Failed = yield Call("PutObject", "put_object", kwargs, _etag)
    return unwrap(etag)


def put_all(writes: Sequence[Write]) -> Program[None]:
    if writes:
        unwrap_all((yield Parallel([put(key, body) for key, body in writes])))


def delete_object(key: str, if_match: str | None = None) -> Program[None]:
    extra = {"IfMatch": if_match} if if_match else {}
    unwrap((yield Call("DeleteObject", "delete_object", {"Key": key, **extra}, _nothing)))


def list_page(
    prefix: str, start_after: str | None, token: str | None, max_keys: int | None = None
) -> Program[Page]:
    """One page of the keys under ``prefix`` in ascending order (up to ``max_keys``, else
    the service's 1,000)."""
    kwargs: dict[str, Any] = {"Prefix": prefix}
    if max_keys is not None:
        kwargs["MaxKeys"] = max_keys
    if token:
        kwargs["ContinuationToken"] = token
    elif start_after:
        kwargs["StartAfter"] = start_after
    page: Page | Failed = yield Call("ListObjectsV2", "list_objects_v2", kwargs, _page)
    return unwrap(page)


def all_keys(prefix: str) -> Program[list[str]]:
    keys: list[str] = []
    token: str | None = None
    while True:
        page, token = yield from list_page(prefix, None, token)
        keys += page
        if token is None:
            return keys


def delete_keys(keys: Iterable[str]) -> Program[None]:
    """Delete ``keys`` with DeleteObjects, 1,000 a request."""
    unique = list(dict.fromkeys(keys))
    for start in range(0, len(unique), _DELETE_BATCH):
        batch = unique[start : start + _DELETE_BATCH]
        delete = {"Objects": [{"Key": k} for k in batch], "Quiet": True}
        unwrap((yield Call("DeleteObjects", "delete_objects", {"Delete": delete}, _nothing)))


def delete_prefix(prefix: str) -> Program[None]:
    token: str | None = None
    while True:
        page, token = yield from list_page(prefix, None, token)
        yield from delete_keys(page)
        if token is None:
            return


def _best_effort(program: Program[None], what: str) -> Program[None]:
    try:
        yield from program
    except Exception as exc:  # clean-up only: the next writer or purge retries it
        log.warning("%s failed: %s", what, exc)


def later(program: Program[None], what: str) -> Program[None]:
    """Run ``program`` in the background (best effort)."""
    unwrap((yield Later(_best_effort(program, what))))


def discard(keys: Sequence[str], what: str = "deleting unused objects") -> Program[None]:
    """Delete ``keys`` in the background (best effort)."""
    if keys:
        yield from later(delete_keys(list(keys)), what)
