"""The journal: append-only JSON lines, each durable before the caller goes on, and a reader
that survives a crash mid-write without ever accepting corruption in the middle."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from agent.journal import SCHEMA_VERSION, Journal, kinds, read


def _journal(tmp_path: Path, n: int = 3) -> Journal:
    j = Journal(tmp_path / "journal.jsonl")
    for i in range(n):
        j.append("run.finished", run=i, status="ok", note="résumé ✓")
    return j


def test_each_event_is_one_line_with_version_seq_ts_and_kind(tmp_path: Path) -> None:
    before = time.time()
    j = _journal(tmp_path, 3)
    lines = j.path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 3
    for i, line in enumerate(lines):
        obj = json.loads(line)
        assert obj["v"] == SCHEMA_VERSION
        assert obj["seq"] == i
        assert before - 1 <= obj["ts"] <= time.time() + 1
        assert obj["kind"] == "run.finished"
        assert obj["data"] == {"run": i, "status": "ok", "note": "résumé ✓"}


def test_append_returns_the_event_and_read_gives_it_back(tmp_path: Path) -> None:
    j = Journal(tmp_path / "journal.jsonl")
    e = j.append("llm.response", call_id="c1", cost_usd=0.25, tokens=[1, 2])
    assert (e.seq, e.kind, e.data) == (0, "llm.response", {"call_id": "c1", "cost_usd": 0.25, "tokens": [1, 2]})
    assert j.events() == [e]
    assert list(j.of_kind("llm.response")) == [e]
    assert list(j.of_kind("run.started")) == []


def test_appending_never_rewrites_earlier_lines(tmp_path: Path) -> None:
    j = _journal(tmp_path, 2)
    before = j.path.read_bytes()
    j.append("stage.started", stage="plot")
    after = j.path.read_bytes()
    assert after.startswith(before)
    assert after.count(b"\n") == 3


def test_each_append_is_flushed_and_fsynced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[int] = []
    real_fsync = os.fsync

    def counting_fsync(fd: int) -> None:
        # What is on disk at fsync time must already hold the new line (flushed first).
        synced.append(os.fstat(fd).st_size)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", counting_fsync)
    j = Journal(tmp_path / "journal.jsonl")
    for i in range(4):
        j.append("edit.applied", n=i)
        assert len(synced) == i + 1, "every append is fsynced before it returns"
        assert synced[-1] == j.path.stat().st_size, "the line was flushed before the fsync"


def test_truncated_last_line_is_tolerated_and_reported(tmp_path: Path) -> None:
    j = _journal(tmp_path, 3)
    half = json.dumps({"v": 1, "seq": 3, "ts": 1.0, "kind": "run.started", "data": {"run": 4}})[:30]
    with open(j.path, "a", encoding="utf-8") as f:  # a crash in the middle of a write
        f.write(half)
    contents = read(j.path)
    assert [e.seq for e in contents.events] == [0, 1, 2]
    assert contents.truncated_tail == half


def test_reopening_drops_the_truncated_tail_and_continues_the_sequence(tmp_path: Path) -> None:
    j = _journal(tmp_path, 3)
    with open(j.path, "a", encoding="utf-8") as f:
        f.write('{"v": 1, "seq": 3, "ts": 17000')
    reopened = Journal(j.path)
    assert reopened.recovered_tail == '{"v": 1, "seq": 3, "ts": 17000'
    e = reopened.append("launch.resumed")
    assert e.seq == 3
    contents = read(j.path)
    assert contents.truncated_tail is None
    assert [ev.seq for ev in contents.events] == [0, 1, 2, 3]
    assert kinds(contents.events)[-1] == "launch.resumed"


def test_crash_inside_a_multibyte_character_reads_as_a_truncated_tail(tmp_path: Path) -> None:
    j = _journal(tmp_path, 2)
    line = json.dumps({"v": 1, "seq": 2, "ts": 1.0, "kind": "note", "data": {"t": "✓✓"}},
                      ensure_ascii=False).encode("utf-8")
    cut = line[: line.index("✓".encode()) + 1]  # half of a 3-byte character
    with open(j.path, "ab") as f:
        f.write(cut)
    contents = read(j.path)
    assert [e.seq for e in contents.events] == [0, 1]
    assert contents.truncated_tail is not None
    assert Journal(j.path).append("after").seq == 2


def test_complete_last_event_without_newline_is_not_glued_to_the_next(tmp_path: Path) -> None:
    j = _journal(tmp_path, 2)
    j.path.write_bytes(j.path.read_bytes().rstrip(b"\n"))  # the newline never reached the disk
    reopened = Journal(j.path)
    assert reopened.recovered_tail is None
    reopened.append("after")
    assert [e.seq for e in read(j.path).events] == [0, 1, 2]


def test_malformed_line_in_the_middle_is_an_error(tmp_path: Path) -> None:
    j = _journal(tmp_path, 3)
    lines = j.path.read_text(encoding="utf-8").splitlines()
    lines[1] = lines[1][:25]
    j.path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match="line 2"):
        read(j.path)
    with pytest.raises(ValueError, match="line 2"):
        Journal(j.path)


def test_missing_journal_reads_as_empty_and_starts_at_seq_0(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    contents = read(path)
    assert (contents.events, contents.truncated_tail) == ([], None)
    assert Journal(path).append("launch.started").seq == 0
