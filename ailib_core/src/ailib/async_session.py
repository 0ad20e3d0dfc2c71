"""`AsyncSession`: a session bound to an async store, whose writes are awaited."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ailib.codec import decode_metadata, encode_metadata
from ailib.messages import Message, check_message, make_message
from ailib.session import Session
from ailib.stats import SessionStats
from ailib.window import TokenCounter, approximate_tokens

if TYPE_CHECKING:
    from ailib.async_base import AsyncBaseStore

__all__ = ("AsyncSession", "bound")


class AsyncSession:
    """Reads come from the wrapped :class:`Session`; ``add_message``, ``add`` and
    ``set_metadata`` are coroutines that write through to the store first."""

    def __init__(self, session: Session, store: AsyncBaseStore) -> None:
        self.detached = session
        self.store = store

    @property
    def session_id(self) -> str:
        return self.detached.session_id

    @property
    def kind(self) -> str:
        return self.detached.kind

    @property
    def messages(self) -> list[Message]:
        return self.detached.messages

    @property
    def metadata(self) -> dict[str, Any]:
        return self.detached.metadata

    @property
    def version(self) -> int:
        return self.detached.version

    async def add_message(self, role: str, content: Any = None, **fields: Any) -> Message:
        return await self.add(make_message(role, content, fields))

    async def add(self, message: Message) -> Message:
        check_message(message, self.detached.kind)
        self.detached.version = await self.store.append(self.session_id, message)
        self.detached.messages.append(message)
        return message

    async def set_metadata(self, key: str, value: Any) -> None:
        encoded = encode_metadata({key: value})
        self.detached.version = await self.store.update_metadata(
            self.session_id, decode_metadata(encoded)
        )
        self.detached.metadata[key] = value

    async def save(self) -> int:
        return await self.store.save(self.detached)

    def get_messages(self) -> list[Message]:
        return self.detached.get_messages()

    def get_metadata(self, key: str, default: Any = None) -> Any:
        return self.detached.get_metadata(key, default)

    def get_all_metadata(self) -> dict[str, Any]:
        return self.detached.get_all_metadata()

    def window(
        self,
        max_messages: int | None = None,
        max_tokens: int | None = None,
        *,
        token_counter: TokenCounter = approximate_tokens,
    ) -> list[Message]:
        return self.detached.window(max_messages, max_tokens, token_counter=token_counter)

    def stats(self) -> SessionStats:
        return self.detached.stats()

    def to_dict(self) -> dict[str, Any]:
        return self.detached.to_dict()

    def __len__(self) -> int:
        return len(self.detached)

    def __repr__(self) -> str:
        return f"<AsyncSession {self.session_id} messages={len(self)} store={self.store!r}>"


def bound(session: Session, store: AsyncBaseStore) -> AsyncSession:
    """``session`` bound to ``store``: its writes go through to it (the twin of
    :func:`ailib.session.bound`)."""
    return AsyncSession(session, store)
