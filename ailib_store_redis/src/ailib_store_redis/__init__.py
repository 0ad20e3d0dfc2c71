"""Redis, Redis Cluster and fakeredis session stores for ailib.

Installing this distribution registers the ``redis``, ``rediss``, ``unix``, ``redis+cluster``,
``rediss+cluster`` and ``fakeredis`` URL schemes with :func:`ailib.open_store`.
"""

from __future__ import annotations

from ailib_store_redis.store import RedisStore

__all__ = ("RedisStore",)
