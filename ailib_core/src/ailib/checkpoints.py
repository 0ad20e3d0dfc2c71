"""Copy-on-write checkpoints, shared by every backend.

A checkpoint records a message count and the metadata; its messages are the first
``message_count`` of the session's log, which is append-only until something rewrites it
(``save`` of changed history, ``restore``). Before a rewrite that keeps only the first
``keep`` messages, every pointer checkpoint reaching past ``keep`` gets its own copy.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from ailib.messages import Message
from ailib.records import CheckpointRecord

__all__ = ("common_prefix", "materialize", "needs_copy")


def common_prefix(old: Sequence[Message], new: Sequence[Message]) -> int:
    """How many leading messages ``old`` and ``new`` share."""
    n = 0
    for a, b in zip(old, new, strict=False):
        if a != b:
            break
        n += 1
    return n


def needs_copy(checkpoints: Iterable[CheckpointRecord], keep: int) -> list[CheckpointRecord]:
    """The pointer checkpoints that a rewrite keeping ``keep`` messages would break."""
    return [c for c in checkpoints if c.messages is None and c.message_count > keep]


def materialize(checkpoints: Iterable[CheckpointRecord], log: Sequence[Message], keep: int) -> None:
    """Give each checkpoint broken by the rewrite a copy of its messages from ``log``."""
    for checkpoint in needs_copy(checkpoints, keep):
        checkpoint.messages = [dict(m) for m in log[: checkpoint.message_count]]
