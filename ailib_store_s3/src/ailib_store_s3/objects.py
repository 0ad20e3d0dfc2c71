"""The S3 calls the store makes, as programs (see :mod:`ailib_store_s3.steps`).

GETs answer None for a missing key; conditional PUTs and DELETEs let 412 and missing-key
answers through as ``ClientError`` for the operation to decide on; DeleteObjects goes in
batches of 1,000; listing is ListObjectsV2 one page a step. Clean-up is best effort, off the
caller's path: a failure is logged, and the next writer or purge retries it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ailib_store_s3.steps import Call, Failed, Later, Parallel, Program, unwrap, unwrap_all

__all__ = (
    "Page",
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
)

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


def list_page(prefix: str, start_after: str | None, token: str | None) -> Program[Page]:
    """One page of the keys under ``prefix`` in ascending order."""
    kwargs: dict[str, Any] = {"Prefix": prefix}
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
