"""The store's options, read once for the sync store and its async twin alike.

A URL's query and the keyword options merge (keywords win); unknown names are an error that
lists the accepted ones. What is left for SQLAlchemy is the URL without ailib's options, plus
the driver options of ``engine.DRIVER_OPTIONS``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import sqlalchemy as sa

from ailib.errors import ConfigurationError
from ailib.spi import StoreURL, make_url
from ailib_store_sql.engine import DRIVER_OPTIONS, E, Engines, MakeEngines, sqlalchemy_url
from ailib_store_sql.schema import Tables, define

__all__ = ("OPTIONS", "Settings", "read_settings")

_OWN_OPTIONS: Final = frozenset({"table_prefix", "create", "pool_size", "pool_pre_ping"})
#: Options of both SQL stores besides ailib's common ``namespace`` and ``ttl``.
OPTIONS: Final = _OWN_OPTIONS | DRIVER_OPTIONS


@dataclass(frozen=True)
class Settings:
    """A SQL store's configuration, validated."""

    url: StoreURL
    namespace: str
    ttl: Any
    tables: Tables
    #: Create or upgrade the tables on open (false: refuse with ConfigurationError).
    create: bool
    #: The SQLAlchemy URL (sync driver, password included, driver options in its query).
    target: sa.URL
    pool_size: int | None
    pool_pre_ping: bool

    def open_engines(self, make: MakeEngines[E]) -> Engines[E]:
        """The engines built by ``make`` (``engine.make_engines`` or ``make_async_engines``)."""
        return make(
            self.target,
            self.url.render(),
            pool_size=self.pool_size,
            pool_pre_ping=self.pool_pre_ping,
        )


def read_settings(
    url: str | StoreURL, options: dict[str, Any], accepted: frozenset[str], store: str
) -> Settings:
    """Validate ``options`` (and the URL's query) against ``accepted`` for class ``store``."""
    parsed = make_url(url)
    merged: dict[str, Any] = {**parsed.query, **options}
    unknown = set(merged) - accepted
    if unknown:
        raise ConfigurationError(
            f"unknown option(s) {', '.join(sorted(unknown))} for {parsed.render()}; "
            f"{store} accepts: {', '.join(sorted(accepted))}"
        )
    driver = {k: str(v) for k, v in merged.items() if k in DRIVER_OPTIONS}
    pool_size = merged.get("pool_size")
    return Settings(
        url=parsed,
        namespace=merged.get("namespace", "default"),
        ttl=merged.get("ttl"),
        tables=define(str(merged.get("table_prefix", "ailib_"))),
        create=flag(merged.get("create", True), "create"),
        target=sqlalchemy_url(parsed.without_query(parsed.query), driver),
        pool_size=None if pool_size is None else count(pool_size, "pool_size"),
        pool_pre_ping=flag(merged.get("pool_pre_ping", False), "pool_pre_ping"),
    )


def flag(value: object, name: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ConfigurationError(f"option {name}={value!r} is not a boolean; use true or false")


def count(value: object, name: str) -> int:
    try:
        number = int(str(value))
    except ValueError:
        number = 0
    if number < 1:
        raise ConfigurationError(f"option {name}={value!r} must be a whole number >= 1")
    return number
