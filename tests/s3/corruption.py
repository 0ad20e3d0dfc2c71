"""Damaging what the S3 store stored, with a raw boto3 client, for the conformance suite's
``corrupt_session`` and the S3 corruption tests.

Kinds of damage (the values of ``ailib.testing.Damage``):

* ``metadata``: the manifest's header line holds garbage bytes where the metadata (and the
  user_id in it) was, so the header no longer decodes;
* ``message``: stored message 1 (the second) replaced by garbage bytes;
* ``missing_message``: stored message 1 removed;
* ``count``: the message count in the manifest's header made wrong.
"""

from __future__ import annotations

import json
from typing import Any

import boto3

from ailib_store_s3.core import S3StoreCore
from ailib_store_s3.manifest import Manifest
from ailib_store_s3.mock import MockS3Store

__all__ = ("DAMAGES", "corrupt", "damage_chunk", "raw_client", "s3_core")

DAMAGES = ("metadata", "message", "missing_message", "count")

_GARBAGE = b"\x00\xff garbage \xfe"


def s3_core(store: Any) -> S3StoreCore:
    """The S3 store behind ``store``: the conformance suite's async mode wraps the store
    under test (``.store``), and the threaded async mock store wraps a sync one (``.sync``)."""
    inner = getattr(store, "store", store)
    inner = getattr(inner, "sync", inner)
    assert isinstance(inner, S3StoreCore), type(inner)
    return inner


def raw_client(store: S3StoreCore) -> Any:
    if isinstance(store, MockS3Store):  # moto's mock_aws is active while the store is open
        return boto3.client("s3", region_name=store.settings.region or "us-east-1")
    return boto3.client("s3", endpoint_url=store.settings.endpoint_url, region_name="us-east-1")


def corrupt(store: Any, session_id: str, damage: str) -> None:
    """Damage the stored session ``session_id`` of ``store`` behind its back."""
    core = s3_core(store)
    client = raw_client(core)
    key = core.layout.manifest(session_id)
    body: bytes = client.get_object(Bucket=core.bucket, Key=key)["Body"].read()
    head, _, rest = body.partition(b"\n")
    tail, sep, ops = rest.partition(b"\n")
    header = json.loads(head)
    messages: list[Any] = json.loads(tail)
    if damage == "metadata":
        header["metadata"] = "@@"
        head = json.dumps(header).encode().replace(b'"@@"', _GARBAGE)
    elif damage == "count":
        header["count"] += 3
        head = json.dumps(header).encode()
    elif damage in ("message", "missing_message"):
        if len(messages) < 2:
            damage_chunk(client, core, body, damage)
            return
        tail = _damaged_list(messages, damage)
    else:
        raise ValueError(f"unknown damage {damage!r}")
    client.put_object(Bucket=core.bucket, Key=key, Body=head + b"\n" + tail + sep + ops)


def damage_chunk(client: Any, core: S3StoreCore, body: bytes, damage: str) -> None:
    """The same damage to the first sealed chunk, for a session whose tail is too short."""
    manifest = Manifest.decode(body)
    if not manifest.chunks:
        raise ValueError("the session needs at least two messages to damage one")
    key = manifest.chunks[0].key
    messages = json.loads(client.get_object(Bucket=core.bucket, Key=key)["Body"].read())
    client.put_object(Bucket=core.bucket, Key=key, Body=_damaged_list(messages, damage))


def _damaged_list(messages: list[Any], damage: str) -> bytes:
    """``messages`` as a JSON list with message 1 (not the last) garbage or left out."""
    parts = [json.dumps(m).encode() for m in messages]
    victim = 1 if len(parts) > 2 else 0
    if damage == "message":
        parts[victim] = _GARBAGE
    else:
        del parts[victim]
    return b"[" + b",".join(parts) + b"]"
