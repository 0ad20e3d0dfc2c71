"""The sync store bases are generated from their async sources and checked in up to date."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "generate_sync.py"


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("generate_sync", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_checked_in_sync_modules_are_what_their_async_sources_generate() -> None:
    generator = _generator()
    stale = [str(path.relative_to(generator.ROOT)) for path in generator.stale()]
    assert not stale, (
        f"{', '.join(stale)} differ from their async source; run `{generator.COMMAND}`"
    )


def test_each_generated_module_says_where_it_comes_from() -> None:
    generator = _generator()
    for source, target in generator.TWINS.items():
        first = (generator.CORE / target).read_text(encoding="utf-8").splitlines()[0]
        assert first == f"# Generated from {source} by scripts/generate_sync.py: do not edit."
