"""The pluggy hooks: plugins configure stores from URL options and see every write."""

from __future__ import annotations

from collections.abc import Iterator
from importlib.metadata import EntryPoint
from typing import Any

import pytest

import ailib
from ailib import ConfigurationError, hookimpl, open_store
from ailib.hooks import plugin_manager
from ailib.registry import _entry_points


class ShoutPlugin:
    """Turns on, per store, with ``?shout=yes``: upper-cases user text before it is stored."""

    @hookimpl
    def ailib_configure_store(self, store: Any, options: dict[str, str]) -> None:
        if options.pop("shout", None) == "yes":
            store.hooks.register(_Shouter())


class _Shouter:
    @hookimpl
    def ailib_before_write(
        self, store: Any, session_id: str, messages: list[dict[str, Any]], metadata: dict[str, Any]
    ) -> None:
        # Declares fewer arguments than the hookspec offers, as pluggy allows.
        for message in messages:
            if message.get("role") == "user" and isinstance(message.get("content"), str):
                message["content"] = message["content"].upper()
        if messages:
            metadata["shouted"] = True


@pytest.fixture
def shout_plugin() -> Iterator[None]:
    plugin = ShoutPlugin()
    plugin_manager().register(plugin, name="shout-test")
    yield
    plugin_manager().unregister(plugin)


@pytest.mark.usefixtures("shout_plugin")
def test_plugin_consumes_its_option_and_rewrites_writes() -> None:
    with open_store("memory://?shout=yes") as store:
        session = store.create()
        session.add_message("user", "quiet please")
        stored = store.load(session.session_id)
        assert stored.messages == [{"role": "user", "content": "QUIET PLEASE"}]
    with open_store("memory://") as plain:
        untouched = plain.create()
        untouched.add_message("user", "quiet please")
        assert plain.load(untouched.session_id).messages[0]["content"] == "quiet please"


@pytest.mark.usefixtures("shout_plugin")
def test_save_and_create_pass_through_the_hook() -> None:
    with open_store("memory://?shout=yes") as store:
        session = ailib.Session(messages=[{"role": "user", "content": "abc"}])
        store.save(session)
        loaded = store.load(session.session_id)
        assert loaded.messages[0]["content"] == "ABC"
        assert loaded.get_metadata("shouted") is True


def test_option_nobody_consumes_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="unknown option"):
        open_store("memory://?shout=yes")


def test_store_plugin_that_fails_to_import_names_its_distribution(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    broken = EntryPoint("broken", "ailib_no_such_module_xyz:Store", "ailib.stores")
    points = {**_entry_points(), "broken": broken}
    monkeypatch.setattr("ailib.registry._entry_points", lambda: points)
    with pytest.raises(ConfigurationError, match="failed to import") as info:
        open_store("broken://x")
    assert isinstance(info.value.__cause__, ModuleNotFoundError)
    assert "ailib_no_such_module_xyz:Store" in str(info.value)


def test_entry_point_that_is_not_a_store_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    wrong = EntryPoint("wrong", "json:dumps", "ailib.stores")
    monkeypatch.setattr("ailib.registry._entry_points", lambda: {"wrong": wrong})
    with pytest.raises(ConfigurationError, match="not a BaseStore subclass"):
        open_store("wrong://")
