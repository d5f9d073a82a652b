"""The report's timeline: one view per commit of the run's history, with the LLM replies that
led to it, its journal events in brief, what to notice (a failed run, an edit that did not
apply, a secret kept out) and its diff, cut beyond `MAX_DIFF_CHARS` with the way to see it all."""

from __future__ import annotations

import re
from dataclasses import dataclass

from agent.history import History, Step
from agent.journal import Event
from agent.template import Template

MAX_DIFF_CHARS = 120_000
"""A step's diff is cut beyond this many characters (the rest: `agent.replay RUN --step N`)."""
MAX_REPLY_CHARS = 200_000
DATA_GLOBS = ("run_*/**", "logs/**")
"""Result records and logs, left out of the diffs the report shows (they make most of a run's
history by size, and the metrics table shows their numbers)."""
_DATA = re.compile(r"^(run_\d+|logs)/")


@dataclass(frozen=True)
class Reply:
    """One LLM answer."""

    kind: str
    model: str
    stage: str
    tokens_in: int
    tokens_out: int
    cost_usd: float | None
    latency_s: float | None
    text: str
    cut: int
    """Characters left out of `text` (0: whole)."""
    tokens_cached: int = 0
    """Of `tokens_in`, those the provider served from its prompt cache."""


@dataclass(frozen=True)
class StepView:
    """One commit of the timeline, with what it needs to be read."""

    step: Step
    metrics: tuple[tuple[str, str, str], ...]
    """(metric name, value, change vs baseline)."""
    replies: tuple[Reply, ...]
    events: tuple[tuple[int, str, str], ...]
    """(seq, kind, brief)."""
    flags: tuple[str, ...]
    """Things to notice: a failed run, an edit that did not apply, a secret kept out."""
    diff: str
    diff_total: int
    """The diff's whole length in characters (more than len(diff) when cut)."""

    @property
    def what(self) -> str:
        """The subject without its stage prefix (the stage has a column of its own)."""
        return self.step.subject.partition(":")[2].strip() or self.step.subject


_BRIEF_KEYS = ("stage", "run", "attempt", "status", "prompt_kind", "path", "describe", "reason", "summary")


def view(hist: History, step: Step, template: Template | None) -> StepView:
    """The step as the timeline shows it: its metrics, replies, events, flags and diff (cut)."""
    metrics = []
    for name, value in step.metrics.items():
        m = template.metric(name) if template else None
        delta = step.deltas.get(name)
        metrics.append((name, m.fmt(value) if m else format(value, ".4g"),
                        "" if delta is None else format(delta, "+.3g")))
    data = [f for f in step.files if _DATA.match(f)]
    try:
        diff = hist.diff(step, exclude=DATA_GLOBS)
    except Exception as exc:  # noqa: BLE001 - git failing on one commit must not lose the page
        diff = f"(the diff could not be read: {exc})"
    if data:  # result records and logs: their numbers are in the metrics table, not re-shown here
        shown = ", ".join(data[:6]) + (f" and {len(data) - 6} more" if len(data) > 6 else "")
        diff = (f"# {len(data)} result or log file(s) not shown here ({shown}): the metrics table "
                f"has their numbers; python -m agent.replay RUN --step {step.n} shows everything\n"
                + diff)
    return StepView(step, tuple(metrics), tuple(_reply(e) for e in step.replies),
                    tuple(_brief(e) for e in step.events), _flags(step.events),
                    diff[:MAX_DIFF_CHARS], len(diff))


def pending(hist: History) -> StepView | None:
    """The events no commit carries yet (the live journal after a stop), as a step of their own."""
    if not hist.pending:
        return None
    last = hist.pending[-1]
    step = Step(len(hist.steps) + 1, "", "journal: events no commit carries (in the live journal only)",
                None, "journal", None, last.ts, (), hist.pending)
    return StepView(step, (), tuple(_reply(e) for e in step.replies), tuple(_brief(e) for e in hist.pending),
                    _flags(hist.pending), "", 0)


def _reply(e: Event) -> Reply:
    d = e.data
    text = str(d.get("text") or "")
    latency = d.get("latency_s")
    return Reply(str(d.get("prompt_kind") or "?"), str(d.get("model") or "?"), str(d.get("stage") or ""),
                 int(d.get("input_tokens") or 0), int(d.get("output_tokens") or 0), d.get("cost_usd"),
                 float(latency) if isinstance(latency, (int, float)) else None, text[:MAX_REPLY_CHARS],
                 max(0, len(text) - MAX_REPLY_CHARS), int(d.get("cache_read_tokens") or 0))


def _brief(e: Event) -> tuple[int, str, str]:
    shown = [f"{k}={e.data[k]}" for k in _BRIEF_KEYS if e.data.get(k) not in (None, "", [], {})]
    return e.seq, e.kind, " ".join(shown)[:300]


def _flags(events: tuple[Event, ...]) -> tuple[str, ...]:
    out = []
    for e in events:
        d = e.data
        if e.kind == "run.finished" and d.get("status") != "ok":
            out.append(f"run {d.get('run')} {d.get('status')}")
        elif e.kind in ("edit.failed", "edit.refused"):
            out.append("an edit was refused" if e.kind == "edit.refused" else "an edit block did not apply")
        elif e.kind == "secret.blocked":
            out.append(f"secret {'redacted in' if d.get('redacted') else 'kept out of'} {d.get('path')}")
        elif e.kind == "launch.stopped":
            out.append(f"launch stopped (exit {d.get('exit_code')})")
        elif e.kind == "plot.finished" and not d.get("ok"):
            out.append("plot failed")
    return tuple(dict.fromkeys(out))
