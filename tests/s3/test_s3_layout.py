"""The pure parts of the S3 store: key layout and manifest edits (no S3 involved)."""

from __future__ import annotations

import json

import pytest

from ailib.records import SessionRecord
from ailib_store_s3.manifest import (
    TAIL_BYTES,
    TAIL_KEPT_BYTES,
    TAIL_KEPT_MESSAGES,
    CheckpointRef,
    Chunk,
    Layout,
    Manifest,
)


def _manifest(layout: Layout) -> Manifest:
    record = SessionRecord("sid-1", "chat", [], {"user_id": "ann"}, 1, 100.0, 100.0)
    return Manifest.new(record)


def test_markers_sort_newest_first_and_parse_back() -> None:
    layout = Layout("pre/fix/", "ns", resolution=1.0)
    older = layout.markers("a", "ann", 1_700_000_000.25, None)
    newer = layout.markers("b", "ann", 1_700_000_005.75, 60.0)
    assert newer[0] < older[0]  # ascending keys = newest first
    assert older[1].startswith(layout.user_prefix("ann"))
    marker = Layout.parse_marker(layout.index_prefix, newer[0])
    assert marker is not None
    assert marker.session_id == "b"
    assert marker.updated_us == 1_700_000_005_000_000  # the interval start
    assert marker.expires_us == 1_700_000_065_000_000  # a bound never after the real expiry
    assert Layout.parse_marker(layout.index_prefix, layout.index_prefix + "junk") is None
    assert layout.root == "pre/fix/ns/"


def test_markers_stay_put_within_an_interval() -> None:
    layout = Layout("", "ns", resolution=1.0)
    assert layout.markers("a", None, 10.1, 5.0) == layout.markers("a", None, 10.9, 5.0)
    assert layout.markers("a", None, 10.9, 5.0) != layout.markers("a", None, 11.0, 5.0)
    assert len(layout.markers("a", 42, 10.0, None)) == 1  # only string user ids are indexed


def test_append_seals_the_tail_into_a_chunk() -> None:
    layout = Layout("", "ns")
    manifest = _manifest(layout)
    big = {"role": "user", "content": "x" * (TAIL_BYTES // 4)}
    writes = []
    for _ in range(8):
        writes += manifest.append([big], layout)
    assert len(writes) >= 1
    assert manifest.count == 8
    assert manifest.sealed_count + len(manifest.tail) == 8
    decoded = Manifest.decode(manifest.encode())
    assert decoded.count == 8
    assert decoded.tail == manifest.tail
    header = Manifest.decode_header(manifest.encode())
    assert header is not None
    assert header.count == 8
    assert header.header_only


def test_rewrite_keeps_chunks_inside_the_unchanged_prefix() -> None:
    layout = Layout("", "ns")
    manifest = _manifest(layout)
    messages = [{"role": "user", "content": f"{n} " + "y" * 2000} for n in range(300)]
    for message in messages:
        manifest.append([message], layout)
    first_chunk = manifest.chunks[0]
    edited = [*messages[:-1], {"role": "user", "content": "changed"}]
    writes = manifest.rewrite(len(messages) - 1, edited, layout)
    assert manifest.chunks[0] == first_chunk  # not rewritten
    assert manifest.count == 300
    assert all(key != first_chunk.key for key, _ in writes)
    assert manifest.tail[-1]["content"] == "changed"


def test_sealed_tails_merge_like_a_binary_counter() -> None:
    layout = Layout("", "ns")
    manifest = _manifest(layout)
    stored: dict[str, list[dict[str, str]]] = {}
    big = {"role": "user", "content": "w" * (TAIL_BYTES // 2)}
    seals = 0
    for _ in range(2 * 13 + 1):
        merge = {c.key: stored[c.key] for c in manifest.merge_candidates()}
        for key, body in manifest.append([big], layout, merge):
            stored[key] = json.loads(body)
            seals += 1
        levels = [c.level for c in manifest.chunks]
        assert len(levels) == bin(seals).count("1")  # one chunk per set bit
        assert levels == sorted(levels, reverse=True)
    assert seals == 13
    assert sum(c.count for c in manifest.chunks) == 26
    assert [m for c in manifest.chunks for m in stored[c.key]] == [big] * 26


def test_rewrite_writes_big_chunks_and_a_tail() -> None:
    layout = Layout("", "ns")
    manifest = _manifest(layout)
    messages = [{"role": "user", "content": f"{n} " + "v" * 1000} for n in range(5000)]
    writes = manifest.rewrite(0, messages, layout)
    assert 1 <= len(manifest.chunks) <= 2
    assert len(writes) == len(manifest.chunks)
    assert manifest.tail == messages[len(messages) - len(manifest.tail) :]
    assert len(manifest.tail) > 0
    assert manifest.count == 5000
    assert not manifest.will_seal([])


def test_commit_ids_are_remembered() -> None:
    manifest = _manifest(Layout("", "ns"))
    manifest.commit("abc")
    assert manifest.committed("abc") == 2
    assert manifest.committed("zzz") is None


def test_an_edited_clone_leaves_the_manifest_unchanged() -> None:
    layout = Layout("", "ns")
    manifest = _manifest(layout)
    manifest.metadata["nested"] = {"a": 1}
    manifest.append([{"role": "user", "content": "kept"}], layout)
    manifest.checkpoints.append(CheckpointRef(1, "cp-key", 1))
    manifest.record_op("op-1", 2)
    before = manifest.encode()

    clone = manifest.clone()
    clone.append([{"role": "user", "content": "new"}], layout)
    clone.metadata["nested"]["a"] = 2
    clone.checkpoints[0].messages_key = "copied"
    clone.record_op("op-2", 3)
    clone.commit("commit-2")
    clone.chunks.append(Chunk("chunk-key", 1))

    assert manifest.encode() == before
    assert clone.tail[0] is manifest.tail[0]  # stored messages are shared, not copied
    assert Manifest.decode(clone.encode()).tail == [
        *manifest.tail,
        {"role": "user", "content": "new"},
    ]


@pytest.mark.parametrize(
    ("content", "kept"),
    [(200, TAIL_KEPT_MESSAGES), (TAIL_KEPT_BYTES // 4, 3), (TAIL_KEPT_BYTES, 0)],
)
def test_a_sealed_tail_leaves_its_newest_messages_inline(content: int, kept: int) -> None:
    """So that load(last=20) right after a seal reads the manifest alone."""
    layout = Layout("", "ns")
    manifest = _manifest(layout)
    stored: dict[str, list[dict[str, str]]] = {}
    sent: list[dict[str, str]] = []
    while not stored:
        message = {"role": "user", "content": f"{len(sent)} " + "k" * content}
        sent.append(message)
        merge = {c.key: stored[c.key] for c in manifest.merge_candidates()}
        for key, body in manifest.append([message], layout, merge):
            stored[key] = json.loads(body)
    assert len(manifest.tail) == kept
    assert manifest.tail == sent[len(sent) - kept :]
    assert [m for c in manifest.chunks for m in stored[c.key]] + manifest.tail == sent
    assert manifest.count == len(sent)


# -- write turns -------------------------------------------------------------------------


def test_a_write_turn_round_trips_and_an_older_manifest_has_none() -> None:
    manifest = _manifest(Layout("", "ns"))
    assert Manifest.decode(manifest.encode()).turn is None
    assert "turn" not in json.loads(manifest.encode().partition(b"\n")[0])
    manifest.turn = ("writer-a", 123.5)
    assert Manifest.decode(manifest.encode()).turn == ("writer-a", 123.5)


@pytest.mark.parametrize("raw", ["junk", ["a"], ["a", "soon"], None, 5])
def test_a_turn_this_version_cannot_read_is_no_turn(raw: object) -> None:
    manifest = _manifest(Layout("", "ns"))
    head, _, rest = manifest.encode().partition(b"\n")
    header = json.loads(head)
    header["turn"] = raw
    assert Manifest.decode(json.dumps(header).encode() + b"\n" + rest).turn is None
