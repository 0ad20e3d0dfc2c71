"""The Agents SDK's own sessions against ailib's AilibSession, on the same servers, in one run.

For each backend: the median time of one ``add_items([item])`` on a session that already
holds 10 and 1,000 items (flat means the cost does not grow with history), and of
``get_items()`` / ``get_items(limit=20)`` on the 1,000-item session.

    .venv/bin/python bench/agents_bench.py

Needs Redis on 127.0.0.1:6379 and PostgreSQL on 127.0.0.1:5432 (database ``test``);
a backend whose server is down is reported and left out. MariaDB is not compared: the SDK's
SQLAlchemySession cannot create its tables there ("VARCHAR requires a length on dialect
mysql"), while ailib's SQL store runs on it.
"""

from __future__ import annotations

import asyncio
import socket
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

from agents.extensions.memory.redis_session import RedisSession
from agents.extensions.memory.sqlalchemy_session import SQLAlchemySession
from agents.memory import SQLiteSession

from ailib.integrations.openai_agents import AilibSession

APPENDS = 100
READS = 20
HISTORIES = (10, 1000)


def item(n: int) -> dict[str, Any]:
    return {"role": "user", "content": f"message {n}: " + "lorem ipsum " * 8}


def up(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


async def median_us(action: Callable[[], Awaitable[Any]], times: int) -> float:
    samples = []
    for _ in range(times):
        started = time.perf_counter()
        await action()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples) * 1e6


async def measure(make: Callable[[str], Any]) -> dict[str, float]:
    results: dict[str, float] = {}
    for history in HISTORIES:
        session = make(f"b{uuid.uuid4().hex[:12]}")
        await session.add_items([item(n) for n in range(history)])
        counter = iter(range(history, history + APPENDS + 1))

        async def append_one(s: Any = session, c: Iterator[int] = counter) -> None:
            await s.add_items([item(next(c))])

        async def tail(s: Any = session) -> Any:
            return await s.get_items(limit=20)

        results[f"append @{history}"] = await median_us(append_one, APPENDS)
        if history == HISTORIES[-1]:
            results["get_items() @1000"] = await median_us(session.get_items, READS)
            results["get_items(20) @1000"] = await median_us(tail, READS)
        await session.clear_session()
    return results


def backends(workdir: Path) -> list[tuple[str, Callable[[str], Any], Callable[[str], Any]]]:
    namespace = f"bench{uuid.uuid4().hex[:8]}"
    found: list[tuple[str, Callable[[str], Any], Callable[[str], Any]]] = [
        (
            "SQLite file",
            lambda sid: SQLiteSession(sid, workdir / "sdk.db"),
            lambda sid: AilibSession(sid, f"sqlite:///{workdir / 'ailib.db'}"),
        )
    ]
    if up(6379):
        found.append(
            (
                "Redis",
                lambda sid: RedisSession.from_url(
                    sid, url="redis://127.0.0.1:6379/0", key_prefix=f"{namespace}:sdk"
                ),
                lambda sid: AilibSession(sid, f"redis://127.0.0.1:6379/0?namespace={namespace}"),
            )
        )
    else:
        print("Redis is not running on 127.0.0.1:6379: left out")
    if up(5432):
        found.append(
            (
                "PostgreSQL",
                lambda sid: SQLAlchemySession.from_url(
                    sid,
                    url="postgresql+asyncpg://postgres@127.0.0.1:5432/test",
                    create_tables=True,
                ),
                lambda sid: AilibSession(
                    sid, f"postgresql+psycopg://postgres@127.0.0.1:5432/test?namespace={namespace}"
                ),
            )
        )
    else:
        print("PostgreSQL is not running on 127.0.0.1:5432: left out")
    return found


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        rows = []
        for name, sdk, ours in backends(Path(tmp)):
            theirs = await measure(sdk)
            mine = await measure(ours)
            rows += [(name, op, theirs[op], mine[op]) for op in theirs]
    print(
        f"\n{'backend':<12} {'operation':<22} {'Agents SDK µs':>14} {'ailib µs':>10} {'ratio':>7}"
    )
    for name, op, theirs_us, mine_us in rows:
        print(
            f"{name:<12} {op:<22} {theirs_us:>14.0f} {mine_us:>10.0f} {mine_us / theirs_us:>6.2f}x"
        )
    print(
        "\nratio = ailib / SDK (below 1 means ailib is faster); medians of "
        f"{APPENDS} appends and {READS} reads per cell"
    )


if __name__ == "__main__":
    asyncio.run(main())
