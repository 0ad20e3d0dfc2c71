"""The program stores: a store base whose operations are programs of I/O steps.

A store that writes each operation once, as a program (see :mod:`ailib.programs`), gives
its programs (``_programs``, a :class:`~ailib.programs.Programs`), the context they take
(``_context``) and one ``_perform(step)``; this base implements every underscore operation
of the store by running the program of the same name with ``drive`` (``drive_async`` on the
async twin). ``AsyncProgramStore`` (``ailib.async_program_store``) is the source of both
twins; ``ProgramStore`` (``ailib.program_store``) is generated from it by
``scripts/generate_sync.py``.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence
from typing import Generic, TypeVar

from ailib.async_base import AsyncBaseStore
from ailib.messages import Message
from ailib.programs import Programs, drive_async
from ailib.records import Change, CheckpointRecord, SessionRecord
from ailib.storecore import CheckpointState

__all__ = ("AsyncProgramStore",)

C = TypeVar("C")
S = TypeVar("S")


class AsyncProgramStore(AsyncBaseStore, Generic[C, S]):
    """Every operation the program of the same name, each step performed by ``_perform``.

    A subclass sets ``_programs`` (a module of generator functions will do, as a class
    attribute) and ``_context`` (usually in ``__init__``), and implements ``_perform``.
    """

    #: The programs that are this store's operations.
    _programs: Programs[C, S]
    #: What the programs take first: what they need to know of this store.
    _context: C

    @abstractmethod
    async def _perform(self, step: S) -> object:
        """Do one step and return its result, which is sent into the program. An error it
        raises ends the operation (a store that retries a step does so here)."""

    async def _create(self, record: SessionRecord) -> None:
        await drive_async(self._programs.create(self._context, record), self._perform)

    async def _fetch(self, session_id: str, last: int | None) -> SessionRecord | None:
        return await drive_async(
            self._programs.fetch(self._context, session_id, last), self._perform
        )

    async def _apply(self, session_id: str, change: Change, now: float) -> int:
        return await drive_async(
            self._programs.apply(self._context, session_id, change, now), self._perform
        )

    async def _replace(self, record: SessionRecord, expected_version: int, now: float) -> int:
        return await drive_async(
            self._programs.replace(self._context, record, expected_version, now), self._perform
        )

    async def _delete(self, session_id: str) -> bool:
        return await drive_async(self._programs.delete(self._context, session_id), self._perform)

    async def _list(
        self, user_id: str | None, limit: int, after: tuple[float, str] | None, now: float
    ) -> Sequence[SessionRecord]:
        return await drive_async(
            self._programs.list_page(self._context, user_id, limit, after, now), self._perform
        )

    async def _purge(self, now: float) -> int:
        return await drive_async(self._programs.purge(self._context, now), self._perform)

    async def _pop(self, session_id: str, count: int, now: float) -> list[Message]:
        return await drive_async(
            self._programs.pop(self._context, session_id, count, now), self._perform
        )

    async def _checkpoint(self, session_id: str, label: str | None, now: float) -> int:
        return await drive_async(
            self._programs.checkpoint(self._context, session_id, label, now), self._perform
        )

    async def _checkpoints(self, session_id: str, now: float) -> Sequence[CheckpointRecord] | None:
        return await drive_async(
            self._programs.checkpoints(self._context, session_id, now), self._perform
        )

    async def _checkpoint_state(self, session_id: str, number: int, now: float) -> CheckpointState:
        return await drive_async(
            self._programs.checkpoint_state(self._context, session_id, number, now),
            self._perform,
        )

    async def _restore(self, session_id: str, number: int, now: float) -> int:
        return await drive_async(
            self._programs.restore(self._context, session_id, number, now), self._perform
        )
