"""`RedisStoreCore`: what the sync store and its asyncio twin share beyond the operations'
programs: options, opening from a URL, the client, what sends its scripts and the programs'
context. The two stores only add how they wait on the client (and on closing it).
"""

from __future__ import annotations

from typing import Any, ClassVar, Generic, Self, TypeVar

from ailib.spi import StoreCore, StoreURL, make_url, note_retry, set_store_url
from ailib_store_redis.connection import (
    CLUSTER_CLIENTS,
    OPTIONS,
    AsyncClient,
    Client,
    ConnectionSettings,
)
from ailib_store_redis.operations import Context, RunScript, Step, resendable
from ailib_store_redis.resend import Resending

__all__ = ("RedisStoreCore",)

ClientT = TypeVar("ClientT", Client, AsyncClient)


class RedisStoreCore(StoreCore, Generic[ClientT]):
    """A Redis store on a ``ClientT`` (redis-py's blocking or asyncio client)."""

    options: ClassVar[frozenset[str]] = OPTIONS

    def __init__(
        self,
        client: ClientT,
        url: str | StoreURL,
        *,
        namespace: str = "default",
        ttl: float | str | None = None,
        resend_for: float = ConnectionSettings.resend_for,
    ) -> None:
        super().__init__(namespace=namespace, ttl=ttl)
        self._resend_for = resend_for
        self._where = set_store_url(self, url)
        self._client: ClientT = client
        # Each script is loaded on its first use (EVALSHA, then SCRIPT LOAD on NOSCRIPT).
        self._scripts: RunScript = self._scripts_on(client)
        self._context = Context.of(
            self.namespace,
            self.url,
            isinstance(client, CLUSTER_CLIENTS),
            page_script=self._where.scheme != "fakeredis",
        )

    @classmethod
    def from_url(cls, url: str | StoreURL, **options: Any) -> Self:
        parsed = make_url(url)
        settings = ConnectionSettings.parse(
            parsed, {k: v for k, v in options.items() if k in OPTIONS}
        )
        common = {k: v for k, v in options.items() if k in cls.common_options}
        return cls(cls._connect(parsed, settings), parsed, resend_for=settings.resend_for, **common)

    @staticmethod
    def _scripts_on(client: Any) -> RunScript:
        """What sends the scripts on ``client`` (``evalsha.Scripts`` or ``AsyncScripts``)."""
        raise NotImplementedError

    @classmethod
    def _connect(cls, url: StoreURL, settings: ConnectionSettings) -> ClientT:
        """The client the store runs on (the sync or the asyncio one)."""
        raise NotImplementedError

    def _resending(self, current: Resending | None, step: Step, exc: BaseException) -> Resending:
        """How to go on after ``step`` failed with ``exc``: resend it (a write whose reply
        may have been lost), or raise the ailib error."""
        resending = Resending.after(current, exc, resendable(step), self._resend_for, self._where)
        note_retry()
        return resending

    @property
    def client(self) -> ClientT:
        """The redis-py client (``redis.Redis``, ``redis.cluster.RedisCluster``, or their
        ``redis.asyncio`` counterparts for the async store)."""
        return self._client
