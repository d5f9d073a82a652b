"""Recorded sessions: the replies a replay answers with, in order.

A recording is either a run's `journal.jsonl` (its `llm.response` events) or a reference session
shipped with an idea, one JSON object a line:

    {"session": {"idea": "...", "recorded_with": "anthropic/claude-sonnet-4-5"}}   (optional)
    // comments and blank lines are ignored
    {"prompt_kind": "plan_experiments", "stage": "experiments", "reply": "..."}
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from agent.errors import ReplayDiverged, UsageError
from agent.journal import read as read_journal

REPLAY_PREFIX = "replay:"

RecordingSource = Literal["journal", "session"]


@dataclass(frozen=True)
class RecordedReply:
    """One reply of a recording."""

    prompt_kind: str
    """Which prompt it answered (`plan_experiments`, `write_section`, ...)."""
    stage: str | None
    """The stage that asked, if recorded."""
    text: str
    """The reply's text."""


@dataclass(frozen=True)
class Recording:
    """A whole recorded session."""

    path: Path
    """The file it was read from."""
    source: RecordingSource
    """A run's journal or a reference session file."""
    replies: tuple[RecordedReply, ...]
    """The replies, in the order they were given."""
    session: dict[str, Any] = field(default_factory=dict)
    """The session file's metadata line, if any."""


def replay_path(model: str) -> Path | None:
    """The recording a `replay:PATH` model string names, or None for a live model."""
    if not model.startswith(REPLAY_PREFIX):
        return None
    return Path(model[len(REPLAY_PREFIX):]).expanduser()


def _objects(path: Path) -> list[tuple[int, dict[str, Any]]]:
    found: list[tuple[int, dict[str, Any]]] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("//"):
            continue
        try:
            obj = json.loads(stripped)
        except json.JSONDecodeError as exc:
            raise UsageError(f"{path}:{number}: not a JSON object ({exc.msg})") from exc
        if not isinstance(obj, dict):
            raise UsageError(f"{path}:{number}: expected a JSON object, got {type(obj).__name__}")
        found.append((number, obj))
    return found


def _from_journal(path: Path) -> Recording:
    try:
        events = read_journal(path).events
    except ValueError as exc:
        raise UsageError(f"cannot replay {path}: {exc}") from exc
    replies = tuple(
        RecordedReply(str(e.data.get("prompt_kind", "")), e.data.get("stage"), str(e.data["text"]))
        for e in events if e.kind == "llm.response" and "text" in e.data)
    return Recording(path, "journal", replies)


def _from_session(path: Path, objects: list[tuple[int, dict[str, Any]]]) -> Recording:
    session: dict[str, Any] = {}
    replies: list[RecordedReply] = []
    for i, (number, obj) in enumerate(objects):
        if i == 0 and set(obj) == {"session"} and isinstance(obj["session"], dict):
            session = obj["session"]
            continue
        missing = [k for k in ("prompt_kind", "reply") if not isinstance(obj.get(k), str)]
        if missing:
            raise UsageError(
                f"{path}:{number}: a recorded reply needs string fields 'prompt_kind' and "
                f"'reply' (missing or not text: {', '.join(missing)})")
        stage = obj.get("stage")
        replies.append(RecordedReply(obj["prompt_kind"], stage if isinstance(stage, str) else None,
                                     obj["reply"]))
    return Recording(path, "session", tuple(replies), session)


def load_recording(path: Path) -> Recording:
    """Read a journal or a session file; a missing or malformed file is a UsageError."""
    if not path.is_file():
        raise UsageError(f"replay file {path} does not exist: pass replay:PATH with a run's "
                         f"journal.jsonl or a reference session .jsonl")
    objects = _objects(path)
    if objects and {"seq", "kind"} <= set(objects[0][1]):
        return _from_journal(path)
    return _from_session(path, objects)


def banner(recording: Recording) -> str:
    """The loud line the CLI prints so no one mistakes a replay for a live model."""
    return (f"REPLAY: answers come from the recording {recording.path} "
            f"({len(recording.replies)} replies); no model is called and the results say nothing "
            f"about any model. For a live model pass --model (e.g. anthropic/claude-sonnet-4-5), "
            f"or set AGENT_MODEL, ANTHROPIC_API_KEY or OPENAI_API_KEY.")


class ReplayCursor:
    """Hands out a recording's replies in order and checks each one answers the prompt asked."""

    def __init__(self, recording: Recording, start: int) -> None:
        self.recording = recording
        self.position = start
        """Index of the next reply (= replies already consumed by this run)."""

    def next(self, prompt_kind: str) -> RecordedReply:
        rec, step = self.recording, self.position
        total = len(rec.replies)
        if step >= total:
            raise ReplayDiverged(
                f"replay exhausted at step {step + 1}: {rec.path} holds {total} replies and the run "
                f"asks for another ('{prompt_kind}'). Record a longer session with a live model "
                f"(--model ...), or stop the run here.")
        reply = rec.replies[step]
        if reply.prompt_kind != prompt_kind:
            raise ReplayDiverged(
                f"replay diverged at step {step + 1} of {total} in {rec.path}: the run asks for a "
                f"'{prompt_kind}' reply but the recording has '{reply.prompt_kind}' there"
                f"{f' (stage {reply.stage})' if reply.stage else ''}. The prompts or the loop "
                f"changed since it was recorded: record it again with a live model (--model ...).")
        self.position += 1
        return reply
