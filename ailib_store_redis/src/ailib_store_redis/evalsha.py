"""The store's Lua scripts sent as bare ``EVALSHA`` commands.

One ``execute_command("EVALSHA", sha, numkeys, *keys, *args)`` per call: redis-py's
``Script`` objects send the same command but cost the client more per call (about 15 µs on
the append path). A server that does not hold the script (never loaded, restarted, or
``SCRIPT FLUSH``) replies ``NOSCRIPT``; the script is then loaded (``SCRIPT LOAD``, on every
primary of a cluster) and the call sent once more, as ``Script`` does.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any, Final

from redis.exceptions import NoScriptError

from ailib_store_redis.connection import CLUSTER_CLIENTS, AsyncClient, Client
from ailib_store_redis.scripts import BY_NAME

__all__ = ("SHAS", "AsyncScripts", "Scripts")

#: The SHA1 of each script's source, by name, as the server names it.
SHAS: Final = {
    name: hashlib.sha1(source.encode()).hexdigest().encode() for name, source in BY_NAME.items()
}


def _command(client: Client | AsyncClient) -> str | bytes:
    """The command's name as ``client`` packs it fastest: bytes are sent as they are (a
    name given as text is encoded and split on spaces on every call), but a cluster client
    routes EVALSHA to its key's slot only when it finds the name as text."""
    return "EVALSHA" if isinstance(client, CLUSTER_CLIENTS) else b"EVALSHA"


class Scripts:
    """Runs the scripts of ``scripts.BY_NAME`` on a blocking client."""

    def __init__(self, client: Client) -> None:
        self._client = client
        self._evalsha = _command(client)

    def __call__(self, name: str, keys: Sequence[str], args: Sequence[str | bytes]) -> Any:
        command = (self._evalsha, SHAS[name], b"%d" % len(keys), *keys, *args)
        try:
            return self._client.execute_command(*command)  # type: ignore[no-untyped-call]
        except NoScriptError:
            self._client.script_load(BY_NAME[name])
            return self._client.execute_command(*command)  # type: ignore[no-untyped-call]


class AsyncScripts:
    """Runs the scripts of ``scripts.BY_NAME`` on an asyncio client."""

    def __init__(self, client: AsyncClient) -> None:
        self._client = client
        self._evalsha = _command(client)

    async def __call__(self, name: str, keys: Sequence[str], args: Sequence[str | bytes]) -> Any:
        command = (self._evalsha, SHAS[name], b"%d" % len(keys), *keys, *args)
        try:
            return await self._client.execute_command(*command)
        except NoScriptError:
            await self._client.script_load(BY_NAME[name])
            return await self._client.execute_command(*command)
