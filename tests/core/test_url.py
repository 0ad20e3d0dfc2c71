"""StoreURL parses once and never shows a password."""

from __future__ import annotations

from urllib.parse import unquote

import pytest

from ailib import ConfigurationError, StoreURL, make_url


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
