"""URL → store resolution through entry points and in-process registration."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import ailib
from ailib import ConfigurationError, UnknownStoreError, open_store, register_store
from ailib.hooks import plugin_manager
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


def test_unknown_option_is_an_error_naming_known_ones() -> None:
    expected = r"^unknown option 'colour' for memory://; known options: .*namespace, .*ttl"
    with pytest.raises(ConfigurationError, match=expected) as info:
        open_store("memory://?colour=blue")
    assert "encrypt" in str(info.value)  # the options of ailib's own plugins count too
    assert "did you mean" not in str(info.value)


@pytest.mark.parametrize(
    ("url", "typo", "meant"),
    [
        ("memory://?tll=1d", "tll", "ttl"),
        ("memory://?namspace=x", "namspace", "namespace"),
        ("memory://?encryt=env:KEY", "encryt", "encrypt"),
    ],
)
def test_a_mistyped_option_gets_a_did_you_mean(url: str, typo: str, meant: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        open_store(url)
    assert str(info.value).startswith(
        f"unknown option {typo!r} for memory://; did you mean {meant!r}? known options: "
    )


def test_a_mistyped_option_of_a_keyword_is_reported_too() -> None:
    with pytest.raises(ConfigurationError, match=r"did you mean 'namespace'\?"):
        open_store("memory://", namspace="x")


def test_a_mistyped_option_is_refused_before_the_store_is_built(tmp_path: Path) -> None:
    """Nothing is created for a URL that is refused: the SQLite file does not appear."""
    pytest.importorskip("ailib_store_sql")
    database = tmp_path / "typo" / "x.db"
    with pytest.raises(ConfigurationError, match=r"did you mean 'ttl'\?"):
        open_store(f"sqlite:///{database}?tll=1d")
    assert list(tmp_path.iterdir()) == []


def test_a_plugin_that_lists_its_url_options_gets_them_suggested() -> None:
    class Colouring:
        url_options = frozenset({"colour"})

        @ailib.hookimpl
        def ailib_configure_store(self, store: object, options: dict[str, str]) -> None:
            options.pop("colour", None)

    manager = plugin_manager()
    manager.register(Colouring(), name="test.colouring")
    try:
        with open_store("memory://?colour=blue"):
            pass
        with pytest.raises(ConfigurationError, match=r"did you mean 'colour'\?"):
            open_store("memory://?color=blue")
    finally:
        manager.unregister(name="test.colouring")


@pytest.mark.parametrize("empty", ["", "   "])
def test_an_empty_url_is_an_error_not_memory(empty: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AILIB_STORE_URL", raising=False)
    for opener in (open_store, ailib.open_async_store):
        with pytest.raises(ConfigurationError, match=r"the store URL is empty.*scheme://"):
            opener(empty)


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


def _printed(code: str) -> str:
    """What ``code`` prints, run by a new interpreter."""
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()


def _imported_after(code: str, modules: tuple[str, ...]) -> list[str]:
    """Which of ``modules`` a new interpreter has imported once it ran ``code``."""
    found = _printed(
        f"{code}\nimport sys\nprint(sorted(m for m in {modules!r} if m in sys.modules))"
    )
    return list(ast.literal_eval(found))


def test_opening_memory_imports_no_backend_driver() -> None:
    code = "import ailib; ailib.open_store('memory://').create().add_message('user', 'x')"
    assert _imported_after(code, ("redis", "sqlalchemy", "boto3", "openai")) == []


def test_named_memory_is_shared_and_unnamed_is_private() -> None:
    with open_store("memory://shared-x") as a, open_store("memory://shared-x") as b:
        a.create(session_id="s1")
        assert b.exists("s1")
    with open_store("memory://") as c, open_store("memory://") as d:
        c.create(session_id="s1")
        assert not d.exists("s1")


def test_import_ailib_loads_neither_asyncio_nor_rich_nor_typer() -> None:
    assert _imported_after("import ailib", ("asyncio", "rich", "typer")) == []


def test_every_public_name_resolves_lazily() -> None:
    """``ailib.X`` and ``from ailib import X`` work for every name in ``__all__``."""
    code = (
        "import ailib\n"
        "missing = [n for n in ailib.__all__ if getattr(ailib, n, None) is None]\n"
        "from ailib import Session, open_store, AsyncBaseStore, OpenAIClient\n"
        "print(missing, sorted(set(ailib.__all__) - set(dir(ailib))))"
    )
    assert _printed(code) == "[] []"


def test_version_comes_from_the_installed_distribution() -> None:
    from importlib.metadata import version

    assert ailib.__version__ == version("ailib-core")
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        getattr(ailib, "nope")  # noqa: B009
