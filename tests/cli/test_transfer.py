"""``ailib sessions export / import / copy``: JSON Lines files and migrations between stores,
including SQLite <-> Redis and memory <-> S3 (moto)."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import Result

from ailib import BaseStore, open_store

Invoke = Callable[..., Result]


def _memory_url() -> str:
    return f"memory://transfer-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def src_url() -> str:
    return _memory_url()


@pytest.fixture
def dst_url() -> str:
    return _memory_url()


@pytest.fixture
def src(src_url: str) -> BaseStore:
    return open_store(src_url)


@pytest.fixture
def dst(dst_url: str) -> BaseStore:
    return open_store(dst_url)


def _fill(store: BaseStore, count: int = 3, user: str = "ann") -> list[str]:
    """Sessions with history, metadata and checkpoints, one of which had to be copied out
    of the log by a restore."""
    ids = []
    for n in range(count):
        session = store.create(
            {"user_id": user, "n": n}, session_id=f"{user}-{n}-{uuid.uuid4().hex[:6]}"
        )
        session.add_message("system", "Be brief.")
        session.add_message("user", f"question {n} ✓")
        store.checkpoint(session.session_id, "asked")
        session = store.session(session.session_id)
        session.add_message("assistant", f"answer {n}")
        store.checkpoint(session.session_id)
        store.restore(session.session_id, 1)
        store.append(session.session_id, {"role": "assistant", "content": "another answer"})
        ids.append(session.session_id)
    return ids


def _content(store: BaseStore, session_id: str) -> dict[str, Any]:
    """What a copy must preserve: everything but versions and times of the last write."""
    data = store.export_session(session_id)
    for key in ("version", "updated_at", "expires_at"):
        data.pop(key)
    for checkpoint in data["checkpoints"]:
        checkpoint["created_at"] = round(checkpoint["created_at"], 3)
    return data


def _assert_same(a: BaseStore, b: BaseStore, ids: list[str]) -> None:
    assert sorted(s.session_id for s in b.list(limit=1000)) == sorted(ids)
    for session_id in ids:
        assert _content(a, session_id) == _content(b, session_id)


# -- export -------------------------------------------------------------------------------


def test_export_all_to_stdout_is_json_lines(cli: Invoke, src: BaseStore, src_url: str) -> None:
    ids = _fill(src)
    result = cli("sessions", "export", "--store", src_url)
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert sorted(line["session_id"] for line in lines) == sorted(ids)
    assert all(line["format"] == "ailib.session" for line in lines)
    assert [len(line["checkpoints"]) for line in lines] == [3, 3, 3]
    assert f"exporting from {src_url}: 3/3" in result.stderr
    assert "exported 3 sessions to stdout" in result.stderr


def test_export_some_to_a_file(cli: Invoke, src: BaseStore, src_url: str, tmp_path: Path) -> None:
    ids = _fill(src)
    target = tmp_path / "out" / "two.jsonl"
    result = cli("sessions", "export", ids[0], ids[2], "-o", str(target), "-s", src_url)
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    exported = [json.loads(line) for line in target.read_text().splitlines()]
    assert [line["session_id"] for line in exported] == [ids[0], ids[2]]
    assert exported[0] == src.export_session(ids[0])
    assert os.listdir(target.parent) == ["two.jsonl"]


def test_export_by_user(cli: Invoke, src: BaseStore, src_url: str) -> None:
    _fill(src, 2, "ann")
    bob = _fill(src, 1, "bob")
    result = cli("sessions", "export", "--user", "bob", "-s", src_url)
    assert [json.loads(line)["session_id"] for line in result.stdout.splitlines()] == bob


def test_export_of_a_missing_session_writes_no_file(
    cli: Invoke, src: BaseStore, src_url: str, tmp_path: Path
) -> None:
    ids = _fill(src, 1)
    target = tmp_path / "out.jsonl"
    result = cli("sessions", "export", ids[0], "missing-one", "-o", str(target), "-s", src_url)
    assert result.exit_code == 1
    assert f"error: no session 'missing-one' in {src_url} (never created" in result.stderr
    assert "store.create()" not in result.stderr
    assert list(tmp_path.iterdir()) == []


# -- import -------------------------------------------------------------------------------


def _export(cli: Invoke, url: str, path: Path) -> Path:
    assert cli("sessions", "export", "-o", str(path), "-s", url).exit_code == 0
    return path


def test_import_round_trip_and_rerun(
    cli: Invoke, src: BaseStore, src_url: str, dst: BaseStore, dst_url: str, tmp_path: Path
) -> None:
    ids = _fill(src)
    file = _export(cli, src_url, tmp_path / "all.jsonl")
    first = cli("sessions", "import", str(file), "--store", dst_url)
    assert first.exit_code == 0, first.output
    assert (
        first.stdout
        == "imported 3, skipped 0 (already identical), differ 0 (left as is), failed 0\n"
    )
    assert f"importing into {dst_url}: 3/3" in first.stderr
    _assert_same(src, dst, ids)
    # Checkpoints came along: restoring one at the destination gives the source's state.
    dst.restore(ids[0], 2)
    src.restore(ids[0], 2)
    assert dst.load(ids[0]).messages == src.load(ids[0]).messages

    rerun = cli("sessions", "import", str(file), "--store", dst_url)
    assert rerun.exit_code == 1
    assert "imported 0, skipped 2 (already identical), differ 1 (left as is)" in rerun.stdout
    assert f"{ids[0]} already exists in {dst_url} with different content" in rerun.stderr


def test_import_overwrite_replaces_differing_copies(
    cli: Invoke, src: BaseStore, src_url: str, dst: BaseStore, dst_url: str, tmp_path: Path
) -> None:
    ids = _fill(src, 2)
    file = _export(cli, src_url, tmp_path / "all.jsonl")
    cli("sessions", "import", str(file), "-s", dst_url)
    dst.append(ids[1], {"role": "user", "content": "only at the destination"})
    kept = cli("sessions", "import", str(file), "-s", dst_url)
    assert kept.exit_code == 1
    assert dst.load(ids[1]).messages[-1]["content"] == "only at the destination"
    replaced = cli("sessions", "import", str(file), "--overwrite", "-s", dst_url)
    assert replaced.exit_code == 0, replaced.output
    assert "imported 1, skipped 1" in replaced.stdout
    _assert_same(src, dst, ids)


def test_import_from_stdin(
    cli: Invoke, src: BaseStore, src_url: str, dst: BaseStore, dst_url: str
) -> None:
    ids = _fill(src, 2)
    exported = cli("sessions", "export", "-s", src_url).stdout
    result = cli("sessions", "import", "-", "-s", dst_url, input=exported)
    assert result.exit_code == 0, result.output
    _assert_same(src, dst, ids)


def test_import_of_an_empty_file(cli: Invoke, dst: BaseStore, dst_url: str, tmp_path: Path) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    result = cli("sessions", "import", str(empty), "-s", dst_url)
    assert result.exit_code == 0
    assert result.stdout.startswith("imported 0, skipped 0")


def _valid_line(src: BaseStore) -> str:
    return json.dumps(src.export_session(_fill(src, 1)[0]))


@pytest.mark.parametrize(
    ("third_line", "expected"),
    [
        ("this is not json", "line 3 is not JSON: a value is missing or is not JSON at column 1"),
        (
            '{"session_id": "x", "messages": ["a\tb"]}',
            "line 3 is not JSON: a raw control character (tab, newline, ...) inside a string at "
            "column 36; JSON writes them as \\t, \\n, ...",
        ),
        (
            '["a", "list"]',
            "line 3 is a list, not an exported session (a JSON object per line, as "
            "`ailib sessions export` writes)",
        ),
        (
            '{"format": "something.else"}',
            "line 3: the field 'format' is 'something.else'; an exported ailib session has "
            "'ailib.session'",
        ),
        ('{"session_id": "x"}', "line 3: the field 'messages' is missing (a list of messages"),
        ('{"session_id": 7, "messages": []}', "line 3: the field 'session_id' is a number; text"),
        ('{"session_id": "x", "messages": [3]}', "line 3: message 1 is a number; an object"),
        (
            '{"session_id": "x", "messages": [], "created_at": "yesterday"}',
            "line 3: the field 'created_at' is text; a date and time (ISO 8601) expected",
        ),
        (
            '{"session_id": "bad id!", "messages": []}',
            "line 3: the field 'session_id' holds an invalid session id 'bad id!': use 1-128 "
            "characters from letters, digits",
        ),
        (
            '{"session_id": "robot", "messages": [{"role": "robot", "content": "beep"}]}',
            "line 3 is not a valid session",
        ),
        (
            '{"session_id": "cp", "messages": [], "checkpoints": [{"number": "one"}]}',
            "line 3: checkpoint 1 of the list: the field 'number' is text; a whole number expected",
        ),
        (
            '{"session_id": "cp", "messages": [], "checkpoints": [{"number": 1, "created_at": 1,'
            ' "message_count": 0, "metadata": {}}]}',
            "line 3: checkpoint 1 of the list: the field 'messages' is missing (a list of messages",
        ),
    ],
)
def test_a_corrupt_line_imports_nothing(
    cli: Invoke, src: BaseStore, dst: BaseStore, dst_url: str, tmp_path: Path,
    third_line: str, expected: str,
) -> None:  # fmt: skip
    file = tmp_path / "broken.jsonl"
    file.write_text(f"{_valid_line(src)}\n{_valid_line(src)}\n{third_line}\n{_valid_line(src)}\n")
    result = cli("sessions", "import", str(file), "-s", dst_url)
    assert result.exit_code == 1
    assert result.stdout == ""
    first, *rest = result.stderr.splitlines()
    assert first.startswith(f"error: {file} ")
    assert expected in first
    assert rest == ["(run with --debug to see the traceback)"]
    assert len(dst.list()) == 0


def test_duplicate_ids_in_a_file_import_nothing(
    cli: Invoke, src: BaseStore, dst: BaseStore, dst_url: str, tmp_path: Path
) -> None:
    line = _valid_line(src)
    file = tmp_path / "twice.jsonl"
    file.write_text(f"{line}\n{_valid_line(src)}\n{line}\n")
    result = cli("sessions", "import", str(file), "-s", dst_url)
    assert result.exit_code == 1
    assert "twice (lines 1 and 3)" in result.stderr
    assert len(dst.list()) == 0


@pytest.mark.parametrize("kind", ["missing", "directory", "binary"])
def test_an_unreadable_file_is_one_line(
    cli: Invoke, dst: BaseStore, dst_url: str, tmp_path: Path, kind: str
) -> None:
    path = tmp_path / "input.jsonl"
    if kind == "directory":
        path.mkdir()
    elif kind == "binary":
        path.write_bytes(b"\xff\xfe\x00garbage\x81")
    result = cli("sessions", "import", str(path), "-s", dst_url)
    assert result.exit_code == 1
    assert len(result.stderr.splitlines()) == 2
    assert result.stderr.startswith("error: ")
    assert str(path) in result.stderr
    assert "Traceback" not in result.output
    assert len(dst.list()) == 0


# -- copy ---------------------------------------------------------------------------------


def test_copy_between_memory_stores_is_idempotent(
    cli: Invoke, src: BaseStore, src_url: str, dst: BaseStore, dst_url: str
) -> None:
    ids = _fill(src, 4)
    first = cli("sessions", "copy", src_url, dst_url)
    assert first.exit_code == 0, first.output
    assert (
        first.stdout == "copied 4, skipped 0 (already identical), differ 0 (left as is), failed 0\n"
    )
    assert f"copying 4 sessions from {src_url} to {dst_url}" in first.stderr
    assert "copying: 4/4" in first.stderr
    _assert_same(src, dst, ids)

    again = cli("sessions", "copy", src_url, dst_url)
    assert again.exit_code == 0
    assert again.stdout.startswith("copied 0, skipped 4 (already identical)")

    new = _fill(src, 1, "bob")
    src.append(ids[0], {"role": "user", "content": "later"})
    catch_up = cli("sessions", "copy", src_url, dst_url)
    assert catch_up.exit_code == 1
    assert catch_up.stdout.startswith("copied 1, skipped 3 (already identical), differ 1")
    assert "--overwrite replaces it" in catch_up.stderr
    assert dst.load(ids[0]).messages[-1]["content"] != "later"

    forced = cli("sessions", "copy", src_url, dst_url, "--overwrite")
    assert forced.exit_code == 0
    assert forced.stdout.startswith("copied 1, skipped 4")
    _assert_same(src, dst, ids + new)


def test_copy_one_user(
    cli: Invoke, src: BaseStore, src_url: str, dst: BaseStore, dst_url: str
) -> None:
    _fill(src, 2, "ann")
    bob = _fill(src, 2, "bob")
    result = cli("sessions", "copy", src_url, dst_url, "--user", "bob")
    assert result.exit_code == 0
    assert sorted(s.session_id for s in dst.list()) == sorted(bob)


def test_copy_into_the_same_store_is_refused(cli: Invoke, src: BaseStore, src_url: str) -> None:
    _fill(src, 1)
    result = cli("sessions", "copy", src_url, src_url)
    assert result.exit_code == 1
    assert "source and destination are the same store" in result.stderr


def test_copy_to_an_unknown_scheme_writes_nothing(
    cli: Invoke, src: BaseStore, src_url: str
) -> None:
    _fill(src, 1)
    result = cli("sessions", "copy", src_url, "nosuch://host/db")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.startswith("error: no store is installed for nosuch://")


def test_progress_bar_on_a_terminal(
    cli: Invoke, src: BaseStore, src_url: str, dst_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fill(src, 3)
    monkeypatch.setattr("ailib.cli.output.is_terminal", lambda stderr=False: True)
    result = cli("sessions", "copy", src_url, dst_url)
    assert result.exit_code == 0, result.output
    assert "copying: " not in result.stderr
    assert "3/3" in result.stderr
    assert "copied 3" in result.stdout


def test_copy_from_the_example_plugin_store(
    cli: Invoke, tmp_path: Path, dst: BaseStore, dst_url: str
) -> None:
    folder = f"jsonfile://{tmp_path / 'files'}"
    ids = _fill(open_store(folder), 2)
    result = cli("sessions", "copy", folder, dst_url)
    assert result.exit_code == 0, result.output
    _assert_same(open_store(folder), dst, ids)


# -- copy between real backends -----------------------------------------------------------


@pytest.fixture
def redis_url(shared_redis: str, require_scheme: Callable[[str], None]) -> Iterator[str]:
    require_scheme("redis")
    url = f"{shared_redis}?namespace=cli-{uuid.uuid4().hex[:10]}"
    yield url
    with open_store(url) as store:
        for summary in store.list(limit=1000):
            store.delete(summary.session_id)


def test_copy_sqlite_to_redis_and_back(
    cli: Invoke, tmp_path: Path, redis_url: str, require_scheme: Callable[[str], None]
) -> None:
    require_scheme("sqlite")
    sqlite_url = f"sqlite:///{tmp_path / 'source.db'}"
    with open_store(sqlite_url) as sqlite:
        ids = _fill(sqlite)
    there = cli("sessions", "copy", sqlite_url, redis_url)
    assert there.exit_code == 0, there.output
    assert there.stdout.startswith("copied 3, skipped 0")
    assert cli("sessions", "copy", sqlite_url, redis_url).stdout.startswith("copied 0, skipped 3")

    back_url = f"sqlite:///{tmp_path / 'back.db'}"
    back = cli("sessions", "copy", redis_url, back_url)
    assert back.exit_code == 0, back.output
    with open_store(sqlite_url) as a, open_store(redis_url) as r, open_store(back_url) as b:
        _assert_same(a, r, ids)
        _assert_same(a, b, ids)


@pytest.fixture
def s3_url(moto_url: str, require_scheme: Callable[[str], None]) -> str:
    require_scheme("s3")
    return moto_url


def test_copy_memory_to_s3_and_back(
    cli: Invoke, src: BaseStore, src_url: str, dst: BaseStore, dst_url: str, s3_url: str
) -> None:
    ids = _fill(src)
    there = cli("sessions", "copy", src_url, s3_url)
    assert there.exit_code == 0, there.output
    assert cli("sessions", "copy", src_url, s3_url).stdout.startswith("copied 0, skipped 3")
    back = cli("sessions", "copy", s3_url, dst_url)
    assert back.exit_code == 0, back.output
    with open_store(s3_url) as s3:
        _assert_same(src, s3, ids)
    _assert_same(src, dst, ids)


def test_copy_and_export_import_keep_the_listing_order(
    cli: Invoke, src: BaseStore, src_url: str, dst: BaseStore, dst_url: str, tmp_path: Path
) -> None:
    ids = _fill(src, count=4)
    newest_first = [s.session_id for s in src.list()]
    assert sorted(newest_first) == sorted(ids)
    assert cli("sessions", "copy", src_url, dst_url).exit_code == 0
    assert [s.session_id for s in dst.list()] == newest_first
    exported = tmp_path / "ordered.jsonl"
    assert cli("sessions", "export", "-o", str(exported), "--store", src_url).exit_code == 0
    third_url = _memory_url()
    assert cli("sessions", "import", str(exported), "--store", third_url).exit_code == 0
    assert [s.session_id for s in open_store(third_url).list()] == newest_first
