"""`StoreURL`: a store URL parsed once, immutable, with its password masked when shown."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

from ailib.errors import ConfigurationError

__all__ = ("StoreURL", "make_url")

_MASK = "***"
#: Query options whose values are masked along with the password.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_SECRET_OPTION = re.compile(r"(?i)password|passwd|secret|token|credential|api_?key|access_?key")


@dataclass(frozen=True)
class StoreURL:
    """A parsed store URL such as ``redis://user:pw@host:6379/0?ttl=1h``.

    ``hosts`` holds every ``host:port`` pair of a multi-host URL (Redis Cluster seeds);
    ``host``/``port`` are the first of them. ``repr`` and :meth:`render` hide the password
    and the values of query options named like secrets (``…secret…``, ``…token…``, …).
    """

    scheme: str
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    hosts: tuple[tuple[str, int | None], ...] = ()
    path: str = ""
    query: Mapping[str, str] = field(default_factory=dict)

    @property
    def host(self) -> str | None:
        return self.hosts[0][0] if self.hosts else None

    @property
    def port(self) -> int | None:
        return self.hosts[0][1] if self.hosts else None

    @property
    def base_scheme(self) -> str:
        """The scheme before any ``+driver`` suffix: ``postgresql`` for ``postgresql+psycopg``."""
        return self.scheme.split("+", 1)[0]

    def render(self, *, hide_password: bool = True) -> str:
        netloc = ""
        if self.username is not None or self.password is not None:
            netloc = quote(self.username or "", safe="")
            if self.password is not None:
                netloc += ":" + (_MASK if hide_password else quote(self.password, safe=""))
            netloc += "@"
        netloc += ",".join(
            (f"[{h}]" if ":" in h else h) + (f":{p}" if p is not None else "")
            for h, p in self.hosts
        )
        text = f"{self.scheme}://{netloc}{self.path}"
        if self.query:
            shown = {
                k: (_MASK if _SECRET_OPTION.search(k) else _masked_text(v)) if hide_password else v
                for k, v in self.query.items()
            }
            text += "?" + urlencode(shown)
        return text

    def without_query(self, names: Iterable[str]) -> StoreURL:
        """A copy with the given query options removed (options ailib consumed itself)."""
        drop = set(names)
        return replace(self, query={k: v for k, v in self.query.items() if k not in drop})

    def __str__(self) -> str:
        return self.render()

    def __repr__(self) -> str:
        return f"StoreURL({self.render()!r})"


def make_url(value: str | StoreURL) -> StoreURL:
    """Parse ``value`` into a :class:`StoreURL` (returned unchanged if it already is one)."""
    if isinstance(value, StoreURL):
        return value
    if not isinstance(value, str) or "://" not in value:
        raise ConfigurationError(
            f"not a store URL: {_masked_text(value)!r}; expected scheme://…, "
            "for example 'memory://', 'sqlite:///sessions.db' or 'redis://localhost:6379/0'"
        )
    _refuse_control_characters(value, value)
    try:
        parts = urlsplit(value)
    except ValueError as exc:
        raise ConfigurationError(
            f"cannot parse the store URL {_masked_text(value)!r}: {exc}; an IPv6 host goes in "
            "brackets ('redis://[::1]:6379/0') and a '@', ':' or '/' in a user name or password "
            "is percent-encoded ('%40', '%3A', '%2F')"
        ) from None
    scheme = parts.scheme.lower()
    netloc = parts.netloc
    username = password = None
    if "@" in netloc:
        userinfo, netloc = netloc.rsplit("@", 1)
        user, sep, pw = userinfo.partition(":")
        username = unquote(user) or None
        password = unquote(pw) if sep else None
    hosts = tuple(_parse_host(item, value) for item in netloc.split(",") if item)
    query: dict[str, str] = {}
    for key, val in parse_qsl(parts.query, keep_blank_values=True):
        if key in query:
            raise ConfigurationError(f"option {key!r} is given twice in {_masked_text(value)!r}")
        query[key] = val
    decoded = [username or "", password or "", unquote(parts.path), *(h for h, _ in hosts)]
    decoded += [*query, *query.values()]
    for text in decoded:
        _refuse_control_characters(text, value)
    return StoreURL(scheme, username, password, hosts, parts.path, query)


def _refuse_control_characters(text: str, original: str) -> None:
    """A NUL, newline or other control character (as typed or percent-encoded) has no place
    in a store URL; drivers would refuse it with a bare ValueError, or silently drop it."""
    bad = _CONTROL.search(text)
    if bad is None:
        return
    shown = repr(bad.group())[1:-1]
    where = "" if text is original else " once percent-decoded"
    raise ConfigurationError(
        f"the store URL contains a control character ({shown}){where}: "
        f"{_masked_text(original)!r}; remove it (a URL from a file or an environment variable "
        "may carry a stray newline or NUL)"
    )


def _parse_host(item: str, original: str) -> tuple[str, int | None]:
    if item.startswith("["):
        host, _, rest = item[1:].partition("]")
        port_text = rest[1:] if rest.startswith(":") else ""
    else:
        host, _, port_text = item.partition(":")
    if not port_text:
        return unquote(host), None
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ConfigurationError(
            f"bad port {port_text!r} in {_masked_text(original)!r}; give a number from 1 to 65535"
        )
    return unquote(host), int(port_text)


def _masked_text(value: object) -> str:
    """Best-effort masking for text that failed to parse as a URL."""
    text = str(value)
    if "://" in text and "@" in text:
        head, _, rest = text.partition("://")
        userinfo, _, tail = rest.rpartition("@")
        if ":" in userinfo:
            userinfo = userinfo.split(":", 1)[0] + ":" + _MASK
        return f"{head}://{userinfo}@{tail}"
    return text
