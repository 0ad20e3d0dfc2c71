"""Session statistics: what the tutorial's AnalyticsSession computes by hand."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from ailib.messages import Message
from ailib.window import message_text

__all__ = ("SessionStats", "compute_stats")


@dataclass(frozen=True)
class SessionStats:
    message_count: int
    messages_by_role: dict[str, int] = field(default_factory=dict)
    chars_by_role: dict[str, int] = field(default_factory=dict)
    tool_calls: int = 0
    duration_seconds: float = 0.0

    def average_length(self, role: str) -> float:
        """Mean characters per message of ``role`` (0.0 when there is none)."""
        count = self.messages_by_role.get(role, 0)
        return self.chars_by_role.get(role, 0) / count if count else 0.0

    @property
    def messages_per_minute(self) -> float:
        return self.message_count / max(self.duration_seconds / 60, 1.0)


def compute_stats(
    messages: Sequence[Message], started: datetime, last_activity: datetime
) -> SessionStats:
    roles: Counter[str] = Counter()
    chars: Counter[str] = Counter()
    calls = 0
    for message in messages:
        role = str(message.get("role", message.get("type", "item")))
        roles[role] += 1
        chars[role] += len(message_text(message))
        calls += len(message.get("tool_calls") or ())
    return SessionStats(
        message_count=len(messages),
        messages_by_role=dict(roles),
        chars_by_role=dict(chars),
        tool_calls=calls,
        duration_seconds=max(0.0, (last_activity - started).total_seconds()),
    )
