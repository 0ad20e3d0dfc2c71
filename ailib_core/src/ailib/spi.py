"""The contract between ailib and a store plugin: the one core module a plugin imports.

A store plugin imports ``ailib`` (the public API), ``ailib.errors`` and this module, nothing
else; every other ``ailib.*`` module is internal and may change in any release. Everything
named here is kept stable across minor releases.

A store subclasses :class:`BaseStore` (and, for asyncio, :class:`AsyncBaseStore`, or lets
``open_async_store`` wrap the sync store in a :class:`ThreadedAsyncStore`) and implements its
underscore operations. Each operation must be **atomic**: another process sees all of it or
none of it. In short (the docstrings on :class:`BaseStore` are the reference):

========================  ======================================================================
operation                 contract
========================  ======================================================================
``_create(record)``       insert a new session (an expired one with its id may be replaced);
                          ``ConflictError`` if a live one has the id
``_fetch(id, last)``      the record with all its messages, or at least the last ``last``;
                          ``message_count`` always the total; None if absent (expired is fine)
``_apply(id, change,      append and/or change metadata; return the new version;
now)``                    ``SessionNotFound`` if absent or expired, ``ConflictError`` if
                          ``change.expected_version`` is stale; a ``change.op_id`` the session
                          already applied is not applied again (return its first version)
``_replace(record,        make the stored session equal ``record`` if its version is
expected, now)``          ``expected``; copy what broken checkpoints need first
``_delete(id)``           delete with checkpoints; True if it existed
``_list(user, limit,      up to ``limit`` live sessions, newest ``updated_at`` first, ties by id
after, now)``             descending, after the ``after`` key
``_purge(now)``           delete every session expired at ``now``; return how many
``_checkpoint``,          record / list / read / restore checkpoints (pointers into the log:
``_checkpoints``,         never copy the history)
``_checkpoint_state``,
``_restore``
========================  ======================================================================

Errors: raise only :mod:`ailib.errors` classes. A backend that cannot be reached raises
``StoreUnavailable`` only after it has found out whether a write whose reply it lost landed;
stored data that does not decode raises ``CorruptSessionError`` naming the session.

A plugin small rather than fast subclasses :class:`DocumentStore` and implements four
compare-and-set document primitives instead.

A store that writes each operation once for its sync and async classes writes it as a
:data:`Program`: a generator that yields the I/O steps it needs and is sent each step's
result, never doing I/O itself. It then subclasses :class:`ProgramStore` and
:class:`AsyncProgramStore` instead of the two bases, and gives each of them three things:

* ``_programs``: its :class:`Programs`, one generator function per operation (``create``,
  ``fetch``, ``apply``, ``replace``, ``delete``, ``list_page``, ``purge``, ``pop``,
  ``checkpoint``, ``checkpoints``, ``checkpoint_state``, ``restore``), each taking the
  context and the arguments of the underscore operation of the same name and returning
  what it returns, under the contract above. A module of such functions will do;
* ``_context``: what the programs take first (the namespace, key prefix, tables…);
* ``_perform(step)``: do one step and return its result (``async def`` on the async twin).

Every underscore operation is then implemented once per twin, by running the program with
:func:`drive` or :func:`drive_async`, which a store may also call itself.

A store that retries (a lost reply resent, a conflict re-read, a deadlock run again) calls
:func:`note_retry` once per retry, so a traced call reports ``ailib.retries``.

A store built from a URL records it with :func:`set_store_url`, so that ``store.url``
(password masked) names the store in every error.
"""

from __future__ import annotations

from ailib.async_adapter import InlineAsyncStore, ThreadedAsyncStore
from ailib.async_base import AsyncBaseStore
from ailib.async_program_store import AsyncProgramStore
from ailib.base import BaseStore
from ailib.checkpoints import common_prefix
from ailib.codec import dumps, loads
from ailib.document import DocumentStore
from ailib.durations import parse_duration
from ailib.messages import Message
from ailib.program_store import ProgramStore
from ailib.programs import Program, Programs, drive, drive_async
from ailib.records import Change, CheckpointRecord, SessionRecord
from ailib.storecore import CheckpointState, StoreCore
from ailib.tracing import note_retry
from ailib.url import StoreURL, make_url

__all__ = (
    "AsyncBaseStore",
    "AsyncProgramStore",
    "BaseStore",
    "Change",
    "CheckpointRecord",
    "CheckpointState",
    "DocumentStore",
    "InlineAsyncStore",
    "Message",
    "Program",
    "ProgramStore",
    "Programs",
    "SessionRecord",
    "StoreCore",
    "StoreURL",
    "ThreadedAsyncStore",
    "common_prefix",
    "drive",
    "drive_async",
    "dumps",
    "loads",
    "make_url",
    "note_retry",
    "parse_duration",
    "set_store_url",
)


def set_store_url(store: StoreCore, url: str | StoreURL) -> StoreURL:
    """Record the URL ``store`` was opened with (what ``store.url`` shows, masked) and
    return it parsed."""
    parsed = make_url(url)
    store._url = parsed
    return parsed
