"""StoreURL parses once and never shows a password."""

from __future__ import annotations

from urllib.parse import unquote

import pytest

from ailib import ConfigurationError, StoreURL, make_url, open_store


def test_parse_full_url() -> None:
    url = make_url("redis://user:s3cr%40t@cache.local:6380/2?ttl=1h&namespace=app1")
    assert url.scheme == "redis"
    assert url.username == "user"
    assert url.password == "s3cr@t"
    assert url.host == "cache.local"
    assert url.port == 6380
    assert url.path == "/2"
    assert dict(url.query) == {"ttl": "1h", "namespace": "app1"}


def test_password_is_masked_everywhere() -> None:
    url = make_url("postgresql+psycopg://app:hunter2@db:5432/x")
    for text in (repr(url), str(url), url.render(), f"{url}"):
        assert "hunter2" not in text
        assert "***" in text
    assert "hunter2" in url.render(hide_password=False)


def test_multi_host_url() -> None:
    url = make_url("redis+cluster://10.0.0.1:7000,10.0.0.2:7001")
    assert url.hosts == (("10.0.0.1", 7000), ("10.0.0.2", 7001))
    assert url.base_scheme == "redis"
    assert url.render() == "redis+cluster://10.0.0.1:7000,10.0.0.2:7001"


def test_without_query_drops_consumed_options() -> None:
    url = make_url("sqlite:///x.db?ttl=5&timeout=3")
    assert url.without_query(["ttl"]).render() == "sqlite:///x.db?timeout=3"


@pytest.mark.parametrize("bad", ["no-scheme", "redis://h:notaport", "redis://h:70000"])
def test_bad_urls(bad: str) -> None:
    with pytest.raises(ConfigurationError):
        make_url(bad)


def test_error_for_unparseable_url_masks_password() -> None:
    with pytest.raises(ConfigurationError) as info:
        make_url("redis://u:topsecret@h:bad")
    assert "topsecret" not in str(info.value)


def test_repeated_option_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="given twice"):
        make_url("memory://?ttl=1&ttl=2")


def test_make_url_passes_through() -> None:
    url = make_url("memory://")
    assert make_url(url) is url
    assert isinstance(url, StoreURL)


def test_secret_looking_query_options_are_masked() -> None:
    url = make_url("s3://bucket?aws_secret_access_key=abc123&region=eu-west-1&auth_token=t0k")
    shown = url.render()
    assert "abc123" not in shown
    assert "t0k" not in shown
    assert "region=eu-west-1" in shown
    assert "abc123" in url.render(hide_password=False)


def test_credentials_inside_query_values_are_masked() -> None:
    url = make_url("s3://bucket?endpoint_url=http://minio:s3cr3t@127.0.0.1:9000")
    assert "s3cr3t" not in url.render()
    assert "minio:***@127.0.0.1:9000" in unquote(url.render())


@pytest.mark.parametrize(
    "bad",
    [
        "sqlite:///a\x00b.db",
        "memory://a\x00b",
        "redis://h\n:6379/0",  # urlsplit would silently drop the newline
        "redis://localhost:6379/0\r",
        "redis://u:pw\x00@h/0",
        "memory://?ttl=1\x7f",
        "sqlite:///a%00b.db",  # percent-encoded
        "memory://?ttl=1%0A",
        "redis://u:p%00w@h/0",
    ],
)
def test_a_control_character_is_a_configuration_error(bad: str) -> None:
    with pytest.raises(ConfigurationError, match=r"contains a control character \(\\"):
        make_url(bad)


def test_a_nul_in_a_url_given_to_open_store_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match=r"control character \(\\x00\)"):
        open_store("memory://x\x00y")


def test_a_control_character_error_masks_the_password() -> None:
    with pytest.raises(ConfigurationError) as info:
        make_url("redis://app:hunter2@h\x00/0")
    assert "hunter2" not in str(info.value)
    assert "app:***@" in str(info.value)


def test_an_unbalanced_ipv6_bracket_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match=r"cannot parse the store URL.*brackets"):
        make_url("redis://[::1:6379/0")


def test_reprs_never_show_secrets() -> None:
    url = make_url(
        "redis://app:hunter2@h:6379/0?auth_token=t0k&ssl_password=pw9&endpoint_url="
        "http%3A%2F%2Fminio%3As3cr3t%40127.0.0.1%3A9000"
    )
    for text in (repr(url), str(url), f"{url!r}", repr([url]), repr({"u": url})):
        for secret in ("hunter2", "t0k", "pw9", "s3cr3t"):
            assert secret not in unquote(text), text
    assert repr(url).startswith("StoreURL('redis://app:***@h:6379/0?")
