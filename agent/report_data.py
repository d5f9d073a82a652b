"""What `report.html` shows, gathered from a run directory or a `git clone` of one: the idea and
the launch, how it ended, cost and time per stage, the runs' metrics with their comparisons
(decided by `agent.stats`), the hypotheses, the paper's review and every step of the history.
Values only: the runs table comes from `agent.report_runs`, the timeline from
`agent.report_steps`; `agent.report_checks` judges them and `agent.report` renders the page.

Every missing piece (no paper, no review, a run whose results are unreadable, a launch that
stopped midway) becomes a value that says so, never an exception: only a folder that is not
a run directory is refused (`UsageError`, from `agent.history`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from agent import figures as figures_record
from agent import history as history_mod
from agent import report_runs, report_steps
from agent.errors import UsageError
from agent.history import History
from agent.journal import Event
from agent.report_runs import RunRow, last_event
from agent.report_steps import StepView
from agent.template import Metric, Template

EndState = Literal["finished", "stopped", "unfinished"]


@dataclass(frozen=True)
class Ending:
    """How the last launch (or resume) of the run directory ended."""

    state: EndState
    text: str
    """In one line: the error of a stop and the first line of its message."""
    message: str
    """A stop's whole message (several lines: what diverged, what to do)."""
    exit_code: int | None
    traceback_file: str | None
    """Run-directory-relative file holding the traceback of a crash (not in a clone: ignored by git)."""


@dataclass(frozen=True)
class LaunchEvent:
    """A start, resume, stop or finish of the orchestrator, for the launch history."""

    ts: float
    what: str
    detail: str


@dataclass(frozen=True)
class StageRow:
    """Time, calls, tokens and cost of one stage."""

    name: str
    status: str
    """`finished`, `not finished`, `not reached`."""
    summary: str
    wall_s: float | None
    calls: int
    tokens_in: int
    tokens_out: int
    cost_usd: float | None
    """None when a price is unknown."""
    tokens_cached: int = 0
    """Of `tokens_in`, those the provider served from its prompt cache (`cache_read_tokens`)."""


@dataclass(frozen=True)
class Figure:
    name: str
    path: Path | None
    """None when a declared figure is missing."""
    drawn_by: str = "unknown"
    """"renderer": drawn by the project's renderer from the results (sha256 as journaled), the
    only kind the paper may show; "plot.py": drawn by LLM-edited code, not checked, kept out of
    the paper; "unknown": no plot stage journaled it (or it changed since)."""


@dataclass(frozen=True)
class ReportData:
    """Everything the page shows."""

    root: Path
    hist: History
    is_clone: bool
    title: str
    idea: dict[str, Any]
    launch: dict[str, Any]
    seeds: list[int]
    models: list[str]
    """Every model that answered (from the replies), in order of first use."""
    replay: str | None
    """The recording the replies came from, when the run was a replay."""
    sandboxes: list[str]
    """The sandbox line of the launch and of every resume."""
    ending: Ending
    launches: list[LaunchEvent]
    stages: list[StageRow]
    tokens: int
    cost_usd: float | None
    wall_s: float | None
    metrics: list[Metric]
    runs: list[RunRow]
    figures: list[Figure]
    hypotheses: dict[str, Any] | None
    verdicts: dict[str, Any] | None
    notes: str | None
    paper_pdf: bool
    review: dict[str, Any] | None
    verify: dict[str, Any] | None
    rebuild: dict[str, Any] | None
    secrets: list[dict[str, Any]]
    too_large: list[dict[str, Any]]
    """Files kept out of the history for their size (`file.too_large`)."""
    tex_refused: list[str]
    """What the paper's TeX tried and TeX's fences refused (`writeup.compiled`'s `refused`)."""
    git_refused: list[str]
    """git metadata the run's code wrote (nested repositories, attributes), deleted."""
    outside_allowlist: list[str]
    """LaTeX the model wrote outside the allowlist, refused before compiling (any attempt)."""
    figures_refused: list[str]
    """Figure declarations the renderer refused (a value no run has, an unsupported number)."""
    steps: list[StepView]
    pending: StepView | None
    """Events no commit carries yet, as a step of their own."""

    @property
    def unsandboxed(self) -> list[str]:
        """The sandbox lines of launches and resumes that ran without bubblewrap."""
        return [s for s in self.sandboxes if not s.startswith("bubblewrap")]

    @property
    def changed_settings(self) -> list[str]:
        """Config entries some run changed from the baseline's, sorted."""
        return sorted({k for r in self.runs for k in r.changes})

    @property
    def metric_names(self) -> list[str]:
        """Every declared metric some run recorded, in the template's order."""
        return list(dict.fromkeys(name for r in self.runs for name in r.all_metrics))


def load(root: Path) -> History:
    """The run's history; UsageError for a folder that is not a run directory."""
    try:
        return history_mod.load(root)
    except ValueError as exc:  # a journal line cut in the middle, not at the end
        raise UsageError(f"{root}: its journal cannot be read: {exc}") from exc


def gather(hist: History) -> ReportData:
    """Read everything the report shows about the run whose history this is."""
    root = hist.root
    events = hist.events
    launch = hist.launch
    template = hist.template
    replies = [e for e in events if e.kind == "llm.response"]
    tokens, cost = hist.totals()
    idea = _json(root / "idea.json") or {}
    runs = report_runs.rows(root, template, events, {f for s in hist.steps for f in s.files})
    config = launch.get("config") or {}
    seeds = list(range(template.seeds_for(launch.get("preset"), config.get("seeds")))) if template else []
    model = str(launch.get("model") or "")
    replay = model.removeprefix("replay:") if model.startswith("replay:") else None
    return ReportData(
        root=root, hist=hist, is_clone=hist.is_clone,
        title=str(idea.get("Title") or launch.get("idea") or root.name),
        idea=idea, launch=launch, seeds=seeds,
        models=list(dict.fromkeys(str(e.data.get("model")) for e in replies if e.data.get("model"))),
        replay=replay,
        sandboxes=[str(e.data.get("sandbox")) for e in events
                   if e.kind in ("launch.started", "sandbox.checked") and "sandbox" in e.data],
        ending=_ending(events), launches=_launches(events), stages=_stages(events, config),
        tokens=tokens, cost_usd=cost,
        wall_s=events[-1].ts - events[0].ts if len(events) > 1 else None,
        metrics=list(template.headline) if template else [], runs=runs,
        figures=_figures(root, template, events), hypotheses=_hypotheses(_json(root / "hypotheses.json")),
        verdicts=_verdicts(_json(root / "hypotheses_verdicts.json")), notes=_text(root / "notes.txt"),
        paper_pdf=(root / "paper.pdf").is_file(), review=_review(_json(root / "review.json")),
        verify=_last(events, "verify.finished"), rebuild=_last(events, "rebuild.finished"),
        secrets=[e.data for e in events if e.kind == "secret.blocked"],
        too_large=[e.data for e in events if e.kind == "file.too_large"],
        tex_refused=list(dict.fromkeys(r for e in events if e.kind == "writeup.compiled"
                                       for r in e.data.get("refused") or [])),
        git_refused=[str(p) for e in events if e.kind == "git.refused" for p in e.data.get("paths") or []],
        outside_allowlist=list(dict.fromkeys(str(r) for e in events if e.kind == "writeup.compiled"
                                             for r in e.data.get("outside_allowlist") or [])),
        figures_refused=list(dict.fromkeys(str(p) for e in events if e.kind == "figures.refused"
                                           for p in e.data.get("problems") or [])),
        steps=[report_steps.view(hist, s, template) for s in hist.steps],
        pending=report_steps.pending(hist),
    )


# --- the launch ------------------------------------------------------------------------------

def _ending(events: list[Event]) -> Ending:
    marks = [e for e in events if e.kind in ("launch.started", "launch.resumed", "launch.finished",
                                              "launch.stopped")]
    last = marks[-1] if marks else None
    if last is not None and last.kind == "launch.finished":
        return Ending("finished", "finished", "", 0, None)
    if last is not None and last.kind == "launch.stopped":
        d = last.data
        message = str(d.get("message") or "").strip()
        first = message.splitlines()[0] if message else ""
        first = first if len(first) <= 300 else first[:299] + "…"
        return Ending("stopped", f"{d.get('error', 'error')}: {first}".rstrip(": "), message,
                      d.get("exit_code"), d.get("traceback_file"))
    return Ending("unfinished", "the journal has no launch.finished or launch.stopped after the last "
                  "start: the orchestrator was killed, or is still running", "", None, None)


def _launches(events: list[Event]) -> list[LaunchEvent]:
    out = []
    for e in events:
        d = e.data
        if e.kind == "launch.started":
            out.append(LaunchEvent(e.ts, "started", f"model {d.get('model')}"))
        elif e.kind == "launch.resumed":
            restored = ", ".join(d.get("restored") or [])
            changed = ", ".join(f"{k}={v}" for k, v in (d.get("changed") or {}).items())
            out.append(LaunchEvent(e.ts, "resumed", "; ".join(
                x for x in (f"dropped unfinished changes: {restored}" if restored else "",
                            f"flags changed: {changed}" if changed else "") if x)))
        elif e.kind == "launch.stopped":
            first = (str(d.get("message") or "").strip().splitlines() or [""])[0][:300]
            out.append(LaunchEvent(e.ts, "stopped", f"{d.get('error')}: {first} (exit {d.get('exit_code')})"))
        elif e.kind == "launch.finished":
            out.append(LaunchEvent(e.ts, "finished", ""))
    return out


def _stages(events: list[Event], config: dict[str, Any]) -> list[StageRow]:
    """One row per stage seen (the baseline first), then the requested stages never reached."""
    names = ["baseline"] if any(e.data.get("stage") == "baseline" for e in events) else []
    for e in events:
        name = e.data.get("stage") if e.kind in ("stage.started", "llm.response") else None
        if isinstance(name, str) and name not in names:
            names.append(name)
    names += [s for s in config.get("stages") or [] if s not in names]
    rows = []
    for name in names:
        replies = [e for e in events if e.kind == "llm.response" and e.data.get("stage") == name]
        costs = [e.data.get("cost_usd") for e in replies]
        finished = last_event(events, "stage.finished", stage=name)
        started = [e for e in events if e.kind == "stage.started" and e.data.get("stage") == name]
        mine = [e for e in events if e.data.get("stage") == name]
        status = "finished" if finished else "not finished" if (started or mine) else "not reached"
        if name == "baseline" and mine and not started:
            status = "finished" if any(e.kind == "run.recorded" for e in mine) else "not finished"
        rows.append(StageRow(
            name, status, str(finished.data.get("summary", "")) if finished else "",
            _wall(events, started) if started else (mine[-1].ts - mine[0].ts if mine else None),
            len(replies), sum(int(e.data.get("input_tokens") or 0) for e in replies),
            sum(int(e.data.get("output_tokens") or 0) for e in replies),
            None if any(c is None for c in costs) else float(sum(costs)),  # type: ignore[arg-type]
            tokens_cached=sum(int(e.data.get("cache_read_tokens") or 0) for e in replies)))
    return rows


def _wall(events: list[Event], starts: list[Event]) -> float:
    """Seconds from each start of the stage to its end: its finish, a stop, a restart or the
    journal's last event, whichever comes first."""
    total = 0.0
    for s in starts:
        end = next((e for e in events if e.seq > s.seq and (
            (e.kind == "stage.finished" and e.data.get("stage") == s.data.get("stage"))
            or e.kind in ("launch.stopped", "launch.resumed", "launch.started"))), events[-1])
        total += max(0.0, end.ts - s.ts)
    return total


# --- files ---------------------------------------------------------------------------------------

def _figures(root: Path, template: Template | None, events: list[Event]) -> list[Figure]:
    """The template's figures and every image at the top of the run, each with who drew it
    (`agent.figures`: the journal's record, checked against the file)."""
    declared = list(template.figures) if template else []
    found = sorted(p.name for p in [*root.glob("*.png"), *root.glob("*.pdf")] if p.is_file() and p.name != "paper.pdf")
    who = figures_record.drawn_by(root, events)
    return [Figure(name, root / name if (root / name).is_file() else None, who.get(name, "unknown"))
            for name in dict.fromkeys([*declared, *found])]


# The files below are written by code, but a hand-edited or older one must not break the page:
# every nested value the page reads is given the shape it expects.

def _review(r: dict[str, Any] | None) -> dict[str, Any] | None:
    """review.json with `gates`, `grounding.findings`, `checks`, `compile` and `llm_review` in shape."""
    if r is None:
        return None
    grounding = _dict(r.get("grounding"))
    compiled = r.get("compile")
    lr = r.get("llm_review")
    return {**r, "gates": {**_dict(r.get("gates")), "failing": _strs(_dict(r.get("gates")).get("failing"))},
            "grounding": {**grounding, "findings": _dicts(grounding.get("findings"))},
            "checks": _strs(r.get("checks")),
            "compile": None if compiled is None else {
                **_dict(compiled), "errors": _strs(_dict(compiled).get("errors")),
                "chktex": _strs(_dict(compiled).get("chktex"))},
            "llm_review": None if not isinstance(lr, dict) else {
                **lr, "Integrity": _dicts(lr.get("Integrity")),
                "findings": {str(f.get("id")): f for f in _dicts(lr.get("findings"))},
                **{k: _strs(lr.get(k)) for k in ("Strengths", "Weaknesses", "Questions", "Limitations")}}}


def _hypotheses(h: dict[str, Any] | None) -> dict[str, Any] | None:
    if h is None:
        return None
    return {**h, "registered": _dict(h.get("registered")), "hypotheses": _dicts(h.get("hypotheses")),
            "amendments": [{**a, "hypothesis": _dict(a.get("hypothesis"))} for a in _dicts(h.get("amendments"))],
            "refused": _strs(h.get("refused"))}


def _verdicts(v: dict[str, Any] | None) -> dict[str, Any] | None:
    if v is None:
        return None
    verdicts = _dicts(v.get("verdicts"))
    for item in verdicts:
        ci = item.get("ci")
        if not (isinstance(ci, list) and len(ci) == 2 and all(isinstance(x, (int, float)) for x in ci)):
            item["ci"] = None
        if not isinstance(item.get("diff"), (int, float)):
            item["diff"] = None
    return {**v, "verdicts": verdicts}


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _dicts(value: Any) -> list[dict[str, Any]]:
    return [dict(x) for x in value if isinstance(x, dict)] if isinstance(value, list) else []


def _strs(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    return [str(x) for x in value] if isinstance(value, list) else []


def _json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None


def _last(events: list[Event], kind: str) -> dict[str, Any] | None:
    found = last_event(events, kind)
    return found.data if found else None


