"""The documentation's code runs: every ```python block of every page, in order, each page in
a namespace of its own (a block continues the ones above it on its page).

Blocks may use top-level ``await``; they run on one event loop per page. A block that cannot
run here is opted out in the Markdown, on the line right above it, saying why::

    <!-- not-run: needs OPENAI_API_KEY -->

A block that talks to one of the local test servers says which, so that on a laptop without
it the page is skipped with instructions (under ``CI=true`` it fails)::

    <!-- needs: redis -->

Known servers: redis (127.0.0.1:6379), postgresql (127.0.0.1:5432), mariadb (127.0.0.1:3306).
Pages run without ``OPENAI_API_KEY`` or AWS credentials in the environment, with ``HOME`` and
the working directory in a temporary folder, and with host names other than the loopback's
refused (``socket.getaddrinfo``, which every driver here resolves through), so nothing
reaches a paid API, a remote host or the developer's files.
"""

from __future__ import annotations

import ast
import asyncio
import inspect
import re
import socket
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ailib.testing.servers import require_server

ROOT = Path(__file__).resolve().parents[2]
PAGES = sorted(
    [ROOT / "README.md", *(ROOT / "docs").rglob("*.md")],
    key=lambda p: p.relative_to(ROOT).as_posix(),
)
MARKER = re.compile(r"<!--\s*(not-run|needs)\s*:(.*?)-->")
SERVERS = {
    "redis": ("Redis", 6379, "start redis-server on 127.0.0.1:6379"),
    "postgresql": ("PostgreSQL", 5432, "start PostgreSQL on 127.0.0.1:5432 (database 'test')"),
    "mariadb": ("MariaDB", 3306, "start MariaDB on 127.0.0.1:3306 (root, database 'test')"),
}


@dataclass(frozen=True)
class Block:
    line: int
    code: str
    not_run: str | None
    needs: tuple[str, ...]


def blocks(page: Path) -> list[Block]:
    """The page's python blocks, with the markers on the lines right above each."""
    lines = page.read_text(encoding="utf-8").splitlines()
    found: list[Block] = []
    pending: list[tuple[str, str, int]] = []
    index = 0
    while index < len(lines):
        stripped = lines[index].strip()
        marker = MARKER.fullmatch(stripped)
        if marker:
            pending.append((marker[1], marker[2].strip(), index + 1))
            index += 1
            continue
        if stripped.startswith("```"):
            fence = stripped[: len(stripped) - len(stripped.lstrip("`"))]
            end = index + 1
            while end < len(lines) and lines[end].strip() != fence:
                end += 1
            assert end < len(lines), f"{page.name}:{index + 1}: code block never closed"
            if stripped[len(fence) :].strip().split(" ")[0] == "python":
                code = textwrap.dedent("\n".join(lines[index + 1 : end]))
                found.append(_block(page, index + 1, code, pending))
                pending = []
            index = end
        assert not pending, (
            f"{page.name}:{pending[0][2]}: a marker must be right above a python block"
        )
        index += 1
    assert not pending, f"{page.name}:{pending[0][2]}: a marker must be right above a python block"
    return found


def _block(page: Path, line: int, code: str, markers: list[tuple[str, str, int]]) -> Block:
    not_run: str | None = None
    needs: list[str] = []
    for kind, value, _ in markers:
        if kind == "not-run":
            assert value, f"{page.name}:{line}: <!-- not-run: ... --> must say why"
            not_run = value
        else:
            names = [n.strip() for n in value.split(",") if n.strip()]
            known = f"{page.name}:{line}: <!-- needs: ... --> takes {', '.join(SERVERS)}"
            assert names, known
            assert set(names) <= set(SERVERS), known
            needs.extend(names)
    return Block(line, code, not_run, tuple(needs))


LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", "", None})


def _local_only(resolve: Any) -> Any:
    def getaddrinfo(host: str | bytes | None, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else host
        if name not in LOCAL_HOSTS:
            raise OSError(
                f"a docs block tried to reach {name!r}: the docs test talks to local servers "
                "only; use one, or put <!-- not-run: why --> above the block"
            )
        return resolve(host, *args, **kwargs)

    return getaddrinfo


def _page_id(page: Path) -> str:
    return page.relative_to(ROOT).as_posix()


@pytest.mark.parametrize("page", PAGES, ids=_page_id)
def test_page_runs(page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    for name in ("OPENAI_API_KEY", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(socket, "getaddrinfo", _local_only(socket.getaddrinfo))
    namespace: dict[str, object] = {"__name__": f"docs_{page.stem}"}
    loop = asyncio.new_event_loop()
    try:
        for block in blocks(page):
            if block.not_run is not None:
                continue
            for name in block.needs:
                label, port, how = SERVERS[name]
                require_server(label, "127.0.0.1", port, how)
            where = f"{_page_id(page)}, block at line {block.line}"
            code = compile(block.code, where, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
            result = eval(code, namespace)
            if inspect.iscoroutine(result):
                loop.run_until_complete(result)
    finally:
        loop.close()


def test_opt_outs_are_few_and_explained() -> None:
    """Every page has its markers in order; lists what is opted out, for the record."""
    skipped = {
        f"{_page_id(page)}:{block.line}": block.not_run
        for page in PAGES
        for block in blocks(page)
        if block.not_run is not None
    }
    total = sum(len(blocks(page)) for page in PAGES)
    assert total > 0
    assert all(skipped.values())
    assert len(skipped) < total, skipped


def _page(tmp_path: Path, text: str) -> Path:
    page = tmp_path / "page.md"
    page.write_text(text, encoding="utf-8")
    return page


def test_markers_apply_to_the_block_below(tmp_path: Path) -> None:
    page = _page(
        tmp_path,
        "intro\n\n<!-- not-run: needs OPENAI_API_KEY -->\n```python\nx = 1\n```\n\n"
        "<!-- needs: redis, postgresql -->\n```python\ny = 2\n```\n\n"
        "```console\n<!-- not-run: inside another block, not a marker -->\n```\n\n"
        "- a list\n\n  ```python\n  z = 3\n  ```\n",
    )
    found = blocks(page)
    assert [(b.line, b.code.strip(), b.not_run, b.needs) for b in found] == [
        (4, "x = 1", "needs OPENAI_API_KEY", ()),
        (9, "y = 2", None, ("redis", "postgresql")),
        (19, "z = 3", None, ()),
    ]


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("<!-- not-run: -->\n```python\nx = 1\n```\n", "must say why"),
        ("<!-- not-run: why -->\n\n```python\nx = 1\n```\n", "right above a python block"),
        ("<!-- not-run: why -->\n```console\nls\n```\n", "right above a python block"),
        ("<!-- needs: mongodb -->\n```python\nx = 1\n```\n", "takes redis"),
        ("```python\nx = 1\n", "never closed"),
    ],
)
def test_bad_markers_fail(tmp_path: Path, text: str, error: str) -> None:
    with pytest.raises(AssertionError, match=error):
        blocks(_page(tmp_path, text))


@pytest.mark.parametrize(
    ("backend", "store_class"),
    [("memory://", "MemoryStore"), ("sqlite", "SQLStore"), ("redis", "RedisStore")],
)
def test_testing_page_passes_under_pytest(
    backend: str,
    store_class: str,
    pytester: pytest.Pytester,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """docs/testing.md's blocks, as one test module, pass on each backend, chosen with
    ``--ailib-store`` (SQLite, memory) or ``AILIB_TEST_STORE_URL`` (Redis)."""
    page = ROOT / "docs" / "testing.md"
    code = "\n\n".join(b.code for b in blocks(page) if b.not_run is None)
    pytester.makepyfile(
        test_page=code,
        test_backend=f"""
        def test_the_chosen_backend(session_store):
            assert type(session_store).__name__ == {store_class!r}
        """,
    )
    option: tuple[str, ...] = ()
    if backend == "redis":
        monkeypatch.setenv("AILIB_TEST_STORE_URL", request.getfixturevalue("shared_redis"))
    else:
        monkeypatch.delenv("AILIB_TEST_STORE_URL", raising=False)
        url = f"sqlite:///{pytester.path / 'suite.db'}" if backend == "sqlite" else backend
        option = ("--ailib-store", url)
    result = pytester.runpytest_subprocess("-q", "-p", "no:randomly", *option)
    result.assert_outcomes(passed=5)
