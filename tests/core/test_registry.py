"""URL → store resolution through entry points and in-process registration."""

from __future__ import annotations

import subprocess
import sys

import pytest

import ailib
from ailib import ConfigurationError, UnknownStoreError, open_store, register_store
from ailib.stores.memory import MemoryStore


def test_default_url_is_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AILIB_STORE_URL", raising=False)
    with open_store() as store:
        assert isinstance(store, MemoryStore)


def test_env_url_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AILIB_STORE_URL", "memory://from-env?namespace=envns")
    with open_store() as store:
        assert store.namespace == "envns"
        assert isinstance(store, MemoryStore)
        assert store.name == "from-env"


def test_keyword_options_override_query() -> None:
    with open_store("memory://?namespace=fromquery&ttl=1h", namespace="fromkw") as store:
        assert store.namespace == "fromkw"
        assert store.default_ttl == 3600


def test_unknown_scheme_lists_installed_and_suggests() -> None:
    with pytest.raises(UnknownStoreError) as info:
        open_store("memroy://x")
    text = str(info.value)
    assert "memroy://" in text
    assert "memory" in text
    assert "Did you mean 'memory'?" in text


def test_known_but_missing_scheme_names_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    from ailib import registry

    installed = registry._entry_points()
    without_s3 = {name: ep for name, ep in installed.items() if not name.startswith("s3")}
    monkeypatch.setattr(registry, "_entry_points", lambda: without_s3)
    with pytest.raises(UnknownStoreError, match="pip install ailib-store-s3"):
        open_store("s3://bucket")


def test_nope_scheme_from_the_command_line() -> None:
    result = subprocess.run(
        [sys.executable, "-c", "import ailib; ailib.open_store('nope://x')"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert "UnknownStoreError" in result.stderr
    assert "Installed schemes:" in result.stderr
    assert "memory" in result.stderr


def test_unknown_option_is_an_error_naming_accepted_ones() -> None:
    expected = r"unknown option.*colour.*accepts: namespace, ttl"
    with pytest.raises(ConfigurationError, match=expected):
        open_store("memory://?colour=blue")


def test_bad_ttl_is_a_clear_error() -> None:
    with pytest.raises(ConfigurationError, match="invalid ttl 'soon'"):
        open_store("memory://?ttl=soon")


def test_register_store_as_context_manager() -> None:
    class Custom(MemoryStore):
        pass

    with register_store("custom+thing", Custom):
        with open_store("custom+thing://") as store:
            assert type(store) is Custom
        assert any(s.scheme == "custom+thing" for s in ailib.available_stores())
    with pytest.raises(UnknownStoreError):
        open_store("custom+thing://")


def test_plus_scheme_falls_back_to_base_scheme() -> None:
    with register_store("fallbacktest", MemoryStore), open_store("fallbacktest+driver://") as s:
        assert isinstance(s, MemoryStore)


def test_memory_scheme_is_an_entry_point_of_ailib_core() -> None:
    info = {s.scheme: s for s in ailib.available_stores()}["memory"]
    assert info.distribution == "ailib-core"
    assert info.target == "ailib.stores.memory:MemoryStore"


def test_opening_memory_imports_no_backend_driver() -> None:
    code = (
        "import sys, ailib; ailib.open_store('memory://').create().add_message('user', 'x');"
        "print(sorted(m for m in ('redis', 'sqlalchemy', 'boto3', 'openai') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


def test_named_memory_is_shared_and_unnamed_is_private() -> None:
    with open_store("memory://shared-x") as a, open_store("memory://shared-x") as b:
        a.create(session_id="s1")
        assert b.exists("s1")
    with open_store("memory://") as c, open_store("memory://") as d:
        c.create(session_id="s1")
        assert not d.exists("s1")
