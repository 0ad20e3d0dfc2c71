"""Write the sync twins of ailib's async core modules, or check that they are up to date.

    python scripts/generate_sync.py          # regenerate the sync modules
    python scripts/generate_sync.py --check  # exit 1, naming them, if any is stale

Each async module in ``TWINS`` is the one source of both twins: ``unasync`` drops ``async``
and ``await`` and renames the names in ``RENAMES`` (``AsyncBaseStore`` to ``BaseStore``, …);
ruff then sorts the imports and formats the result, as it does every other module.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import unasync  # type: ignore[import-untyped]

ROOT = Path(__file__).resolve().parent.parent
CORE = ROOT / "ailib_core" / "src" / "ailib"
COMMAND = "python scripts/generate_sync.py"

#: Each async source module and the sync module generated from it, in ``CORE``.
TWINS = {
    "async_base.py": "base.py",
    "async_program_store.py": "program_store.py",
}

#: The names (whole tokens, and strings that are exactly one of them) of the sync twin.
RENAMES = {
    "AsyncBaseStore": "BaseStore",
    "AsyncProgramStore": "ProgramStore",
    "AsyncSession": "Session",
    "AsyncUserMemories": "UserMemories",
    "aclose": "close",
    "async_base": "base",
    "async_program_store": "program_store",
    "async_session": "session",
    "drive_async": "drive",
}


def header(source: str) -> str:
    return (
        f"# Generated from {source} by scripts/generate_sync.py: do not edit.\n"
        f"# Edit {source} and run `{COMMAND}`.\n"
    )


def _ruff(*args: str, path: Path, text: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "ruff", *args, "--stdin-filename", str(path), "-"],
        input=text,
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    if done.returncode != 0:
        raise SystemExit(f"ruff {' '.join(args)} failed on generated {path}:\n{done.stderr}")
    return done.stdout


def generate() -> dict[Path, str]:
    """The text of each sync module, generated from its async source."""
    generated = {}
    with tempfile.TemporaryDirectory() as temp:
        source_dir, target_dir = Path(temp, "async"), Path(temp, "sync")
        source_dir.mkdir()
        sources = []
        for source, target in TWINS.items():
            # Named as the target, since unasync keeps the file name.
            copy = source_dir / target
            copy.write_text((CORE / source).read_text(encoding="utf-8"), encoding="utf-8")
            sources.append(str(copy))
        rule = unasync.Rule(f"{source_dir}/", f"{target_dir}/", additional_replacements=RENAMES)
        unasync.unasync_files(sources, rules=[rule])
        for source, target in TWINS.items():
            path = CORE / target
            text = header(source) + (target_dir / target).read_text(encoding="utf-8")
            text = _ruff("check", "--fix", "--quiet", "--select", "I", path=path, text=text)
            generated[path] = _ruff("format", "--quiet", path=path, text=text)
    return generated


def stale() -> list[Path]:
    """The sync modules whose checked-in text differs from what their source generates."""
    return [
        path
        for path, text in generate().items()
        if not path.exists() or path.read_text(encoding="utf-8") != text
    ]


def main(argv: list[str]) -> int:
    if argv == ["--check"]:
        paths = stale()
        for path in paths:
            print(f"{path.relative_to(ROOT)} is stale; run `{COMMAND}`", file=sys.stderr)
        return 1 if paths else 0
    if argv:
        print(__doc__, file=sys.stderr)
        return 2
    for path, text in generate().items():
        path.write_text(text, encoding="utf-8")
        print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
