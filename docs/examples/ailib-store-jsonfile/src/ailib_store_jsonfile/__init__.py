"""``jsonfile:///path/to/dir``: an example ailib store keeping one JSON file per session.

Sessions live in ``<dir>/<namespace>/<session id>.json``. Reads take no lock because every
write replaces the file atomically with ``os.replace``. A write holds an exclusive ``flock`` on
``<dir>/<namespace>/.lock`` while it compares the stored version with the expected one, which
makes compare-and-set safe between threads (each acquisition opens the file anew, and flock
locks belong to the open file) and between processes. POSIX only.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ailib.errors import ConfigurationError, ConflictError, CorruptSessionError
from ailib.spi import DocumentStore, SessionRecord, StoreURL, make_url, set_store_url

__all__ = ("JsonFileStore",)

logger = logging.getLogger("ailib")


class JsonFileStore(DocumentStore):
    def __init__(self, *, directory: str | os.PathLike[str], **options: Any) -> None:
        super().__init__(**options)
        if not self.namespace.strip("."):
            raise ConfigurationError(f"namespace {self.namespace!r} cannot name a directory")
        self.root = Path(directory) / self.namespace
        self.root.mkdir(parents=True, exist_ok=True)

    @classmethod
    def from_url(cls, url: str | StoreURL, **options: Any) -> JsonFileStore:
        parsed = make_url(url)
        directory = (parsed.host or "") + parsed.path
        if not directory:
            raise ConfigurationError(
                f"{parsed.render()} names no directory; use jsonfile:///absolute/path "
                "or jsonfile://relative/path"
            )
        store = cls(directory=directory, **options)
        set_store_url(store, parsed)
        return store

    def _path(self, session_id: str) -> Path:
        # Session ids are checked by BaseStore (letters, digits, . _ : @ -, no leading dot),
        # so they are safe file names.
        return self.root / f"{session_id}.json"

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        with open(self.root / ".lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield  # closing the file releases the lock

    def _read(self, session_id: str) -> SessionRecord | None:
        try:
            text = self._path(session_id).read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        try:
            return SessionRecord.loads(text)
        except CorruptSessionError as exc:
            if session_id in str(exc):
                raise
            raise CorruptSessionError(f"session {session_id!r} in {self.url}: {exc}") from None

    def _write(self, record: SessionRecord, expected_version: int | None) -> None:
        with self._locked():
            current = self._read(record.session_id)
            if (None if current is None else current.version) != expected_version:
                raise ConflictError(
                    f"session {record.session_id!r} changed concurrently in {self.url}"
                )
            fd, temp = tempfile.mkstemp(dir=self.root, prefix=".", suffix=".tmp")
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as file:
                    file.write(record.dumps())
                    file.flush()
                    os.fsync(file.fileno())
                os.replace(temp, self._path(record.session_id))
            except BaseException:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(temp)
                raise

    def _remove(self, session_id: str) -> bool:
        with self._locked():
            try:
                self._path(session_id).unlink()
            except FileNotFoundError:
                return False
            return True

    def _scan(self) -> Iterator[SessionRecord]:
        """Every readable session; a file that does not decode is left out with a warning,
        so one damaged session does not break listing the others."""
        for path in sorted(self.root.glob("*.json")):
            try:
                record = self._read(path.name.removesuffix(".json"))
            except CorruptSessionError as exc:
                logger.warning("left %s out of the listing: %s", path, exc)
                continue
            if record is not None:
                yield record
