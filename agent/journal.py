"""Append-only journal of everything a run did: one JSON object per line.

Each event is written (flushed and fsynced) before the caller goes on, so a crash leaves at
most a truncated last line, which `read` tolerates and reports. State is a fold over events.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1
JOURNAL_NAME = "journal.jsonl"
HISTORY_DIR = "journal"
"""In the run directory: the journal's segments, one added by each commit (see
`Workspace.commit`), so the git history carries the journal."""
SEGMENT_RE = re.compile(r"(\d+)-(\d+)\.jsonl")


HISTORY_README = """\
The run's journal, committed with the history: each commit adds the events journaled since
the commit before it (`<first seq>-<last seq>.jsonl`, lines as in journal.jsonl). A clone of
this repository is a complete record: `python -m agent.replay .` reads these files when the
live journal.jsonl (ignored by git) is absent.
"""


def segment_name(first: int, last: int) -> str:
    return f"{first:06d}-{last:06d}.jsonl"


def lines_after(live: Path, done: int) -> tuple[int, int, bytes] | None:
    """The complete lines of the journal at `live` whose seq is past `done`, verbatim, with the
    first and last seq: the next segment's content; None when there are none."""
    if not live.is_file():
        return None
    lines: list[bytes] = []
    first = last = -1
    for raw in live.read_bytes().split(b"\n")[:-1]:  # the last piece is unterminated
        seq = _seq_of(raw)
        if seq is not None and seq > done:
            lines.append(raw)
            first = seq if first < 0 else first
            last = seq
    return (first, last, b"\n".join(lines) + b"\n") if lines else None


def _seq_of(raw: bytes) -> int | None:
    """The `seq` of one journal line, None if it is not an event."""
    try:
        seq = json.loads(raw).get("seq")
    except (ValueError, AttributeError):
        return None
    return seq if isinstance(seq, int) else None


@dataclass(frozen=True)
class Event:
    """One line of the journal."""

    seq: int
    """Position in the journal, from 0, without gaps."""
    ts: float
    """Unix time (seconds) when it was written."""
    kind: str
    """A past-tense fact, dotted by area: `run.started`, `llm.response`, `edit.applied`."""
    data: dict[str, Any] = field(default_factory=dict)
    """The event's fields; JSON-serialisable."""
    v: int = SCHEMA_VERSION
    """Schema version of this line."""

    def to_json(self) -> str:
        return json.dumps(
            {"v": self.v, "seq": self.seq, "ts": self.ts, "kind": self.kind, "data": self.data},
            ensure_ascii=False,
            default=str,
        )


@dataclass(frozen=True)
class JournalContents:
    """What `read` found."""

    events: list[Event]
    """Every complete event, in order."""
    truncated_tail: str | None
    """The unparseable last line left by a crash mid-write, if any."""


def read(path: Path) -> JournalContents:
    """Read a journal; a malformed *last* line is reported, a malformed earlier one is an error.

    Lines are decoded one by one: a crash can cut a multi-byte character in half, and that
    must read as a truncated tail, not as an undecodable file.
    """
    if not path.exists():
        return JournalContents([], None)
    lines = path.read_bytes().split(b"\n")
    events: list[Event] = []
    tail: str | None = None
    for i, raw in enumerate(lines):
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw.decode("utf-8"))
            events.append(Event(obj["seq"], obj["ts"], obj["kind"], obj.get("data", {}), obj["v"]))
        except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as exc:
            is_last = all(not rest.strip() for rest in lines[i + 1 :])
            if not is_last:
                raise ValueError(f"{path}: line {i + 1} is not a journal event ({exc})") from exc
            tail = raw.decode("utf-8", errors="replace")
    return JournalContents(events, tail)


def segments(root: Path) -> list[Path]:
    """The journal segments in a run directory's work tree, in order."""
    found = [(int(m.group(1)), p) for p in (root / HISTORY_DIR).glob("*.jsonl")
             if (m := SEGMENT_RE.fullmatch(p.name))]
    return [p for _, p in sorted(found)]


def read_run(root: Path) -> JournalContents:
    """A run directory's events: its live journal, or, in a clone of its repository (where
    the live journal, ignored by git, is absent), the segments its history carries."""
    live = root / JOURNAL_NAME
    if live.exists():
        return read(live)
    events: list[Event] = []
    for path in segments(root):
        events.extend(e for e in read(path).events if not events or e.seq > events[-1].seq)
    return JournalContents(events, None)


def materialize(root: Path) -> bool:
    """In a clone of a run repository, write `journal.jsonl` from the committed segments, so
    the run can be journaled in (verified, resumed) as in the original. True if written."""
    live = root / JOURNAL_NAME
    if live.exists() or not segments(root):
        return False
    tmp = live.with_name(live.name + ".tmp")
    tmp.write_text("".join(e.to_json() + "\n" for e in read_run(root).events), encoding="utf-8")
    os.replace(tmp, live)
    return True


class Journal:
    """Appends events to `journal.jsonl`; a truncated tail from a crash is cut off on open.

    The file is read once, on open; afterwards the events live in memory too, indexed by
    kind, so a lookup costs no I/O however long the run. That is sound because this object
    is the file's only writer (one orchestrator per run directory: `Workspace.lock`).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        contents = read(path)
        self._events: list[Event] = list(contents.events)
        self._by_kind: dict[str, list[Event]] = {}
        for event in self._events:
            self._by_kind.setdefault(event.kind, []).append(event)
        self.recovered_tail = contents.truncated_tail
        if contents.truncated_tail is not None:
            self._drop_truncated_tail()
        elif path.exists() and path.stat().st_size and not path.read_bytes().endswith(b"\n"):
            # A complete last event whose newline never reached the disk: end the line, or the
            # next event would be glued onto it.
            self._write(b"\n")
        self._next_seq = contents.events[-1].seq + 1 if contents.events else 0

    def _drop_truncated_tail(self) -> None:
        raw = self.path.read_bytes()
        keep = raw[: raw.rstrip(b"\n").rfind(b"\n") + 1]
        # Truncate in place rather than rewrite: a second crash here cannot lose the journal.
        with open(self.path, "r+b") as f:
            f.truncate(len(keep))
            f.flush()
            os.fsync(f.fileno())

    def _write(self, data: bytes) -> None:
        with open(self.path, "ab") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())

    def append(self, kind: str, **data: Any) -> Event:
        """Write one event durably and return it."""
        event = Event(self._next_seq, time.time(), kind, data)
        self._write((event.to_json() + "\n").encode("utf-8"))
        self._next_seq += 1
        self._events.append(event)
        self._by_kind.setdefault(kind, []).append(event)
        return event

    def events(self) -> list[Event]:
        """Every event so far, in order (a copy: the caller may keep it)."""
        return list(self._events)

    def of_kind(self, *kinds: str) -> Iterator[Event]:
        """The events of these kinds, in journal order."""
        if len(kinds) == 1:
            return iter(list(self._by_kind.get(kinds[0], [])))
        return (e for e in self._events if e.kind in kinds)

    def last(self, kind: str, **match: Any) -> Event | None:
        """The last event of `kind` whose data has all of `match`."""
        for event in reversed(self._by_kind.get(kind, [])):
            if all(event.data.get(k) == v for k, v in match.items()):
                return event
        return None


def kinds(events: Iterable[Event]) -> list[str]:
    """The kinds of `events`, in order (handy in tests and summaries)."""
    return [e.kind for e in events]
