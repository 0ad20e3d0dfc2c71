"""`Context`: what an operation's program knows of its store, and the manifest cache.

The cache holds the manifests this store wrote or read last. Writes base themselves on it
and are checked by ``If-Match``, so a stale entry costs one retry, never a wrong write. Its
lock is held only between steps, so the async store's tasks share it as threads do.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import NamedTuple

from ailib.errors import AilibError
from ailib.spi import Change
from ailib_store_s3.client import translate
from ailib_store_s3.groupcommit import GroupCommit
from ailib_store_s3.layout import Layout
from ailib_store_s3.manifest import Manifest

__all__ = ("Context", "ManifestCache", "Op")

_CACHE_SIZE = 128


class Op(NamedTuple):
    """A change to apply, with the op id that makes applying it again a no-op."""

    op_id: str
    change: Change


class ManifestCache:
    """The last ``size`` manifests read or written, with their ETags (thread-safe)."""

    def __init__(self, size: int = _CACHE_SIZE) -> None:
        self._size = size
        self._items: OrderedDict[str, tuple[str, Manifest]] = OrderedDict()
        self._lock = threading.Lock()

    def remember(self, session_id: str, etag: str, manifest: Manifest) -> None:
        with self._lock:
            known = self._items.get(session_id)
            if known and known[1].gen == manifest.gen and known[1].version > manifest.version:
                return  # a slow read finishing after a newer write: keep the newer one
            self._items[session_id] = (etag, manifest)
            self._items.move_to_end(session_id)
            while len(self._items) > self._size:
                self._items.popitem(last=False)

    def forget(self, session_id: str) -> None:
        with self._lock:
            self._items.pop(session_id, None)

    def get(self, session_id: str) -> tuple[Manifest, str] | None:
        with self._lock:
            found = self._items.get(session_id)
        return None if found is None else (found[1], found[0])


@dataclass
class Context:
    """What the programs know of their store: its keys, manifest cache and group commit,
    and where it is, as messages name it (its masked URL, bucket and endpoint)."""

    layout: Layout
    group: GroupCommit[Op]
    url: str
    bucket: str
    endpoint: str
    cache: ManifestCache = field(default_factory=ManifestCache)

    def error(self, exc: BaseException, action: str) -> AilibError:
        return translate(exc, bucket=self.bucket, endpoint=self.endpoint, action=action)
