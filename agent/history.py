"""A run's history as people review it: one step per commit, with the journal events that
led to it, its tokens and cost, and the metrics of the run it recorded.

Reads a run directory or a clone of its repository alone: the commits come from git, the
events from the live journal or, in a clone, from the segments each commit carries
(`journal/`, see `Workspace.commit`). Only git is used; nothing is executed.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent import gitsafe
from agent.errors import UsageError
from agent.journal import HISTORY_DIR, JOURNAL_NAME, SEGMENT_RE, Event, read_run
from agent.template import Template
from agent.template import load as load_template
from agent.workspace import STEP_TRAILER

_RUN_RE = re.compile(r"\brun[ _](\d+)\b")
_STEP_RUN_RE = re.compile(r"/run(\d+)(?:/|$)")
_FINAL_INFO_RE = re.compile(r"^run_(\d+)/final_info\.json$")


@dataclass(frozen=True)
class Step:
    """One commit of the run's history."""

    n: int
    """Position in the history, from 1."""
    sha: str
    subject: str
    """The commit message's first line."""
    step: str | None
    """The orchestrator step it belongs to (its trailer), if any."""
    stage: str
    """`setup`, `baseline`, `experiment`, `notes`, `plot`, `writeup`, `review`, `journal`..."""
    run: int | None
    """The run it concerns, if any."""
    time: float
    """Unix time of the commit."""
    files: tuple[str, ...]
    """Paths it changed (the journal's segments left out)."""
    events: tuple[Event, ...] = ()
    """The journal events written since the commit before it."""
    metrics: dict[str, float] = field(default_factory=dict)
    """Headline metrics of the run whose results it committed."""
    deltas: dict[str, float] = field(default_factory=dict)
    """Those metrics minus the baseline's."""

    @property
    def short(self) -> str:
        return self.sha[:8]

    @property
    def replies(self) -> list[Event]:
        """The LLM answers that led to it."""
        return [e for e in self.events if e.kind == "llm.response"]

    @property
    def tokens(self) -> int:
        return spent(self.replies)[0]

    @property
    def cost_usd(self) -> float | None:
        """Dollars of its LLM calls; None when a price is unknown (a replay costs 0)."""
        return spent(self.replies)[1]


@dataclass(frozen=True)
class History:
    """A run directory's (or clone's) steps and events."""

    root: Path
    steps: list[Step]
    events: list[Event]
    """Every event, in order."""
    pending: tuple[Event, ...]
    """Events no commit carries yet (the live journal after a crash)."""
    template: Template | None
    """The template manifest as the run directory holds it (None if unreadable)."""

    @property
    def launch(self) -> dict[str, Any]:
        """The `launch.started` event's data (config, idea, preset, model...)."""
        return next((e.data for e in self.events if e.kind == "launch.started"), {})

    @property
    def is_clone(self) -> bool:
        """True when the live journal is absent: the events come from the history alone."""
        return not (self.root / JOURNAL_NAME).exists()

    def step(self, n: int) -> Step:
        if not 1 <= n <= len(self.steps):
            raise UsageError(f"there is no step {n}: the history has steps 1 to {len(self.steps)}")
        return self.steps[n - 1]

    def diff(self, step: Step, exclude: tuple[str, ...] = ()) -> str:
        """The patch the step's commit introduced, the journal's segments (and the git glob
        pathspecs in `exclude`) left out."""
        return _git(self.root, "show", step.sha, "--format=", "--patch", "--no-color", "--",
                    ".", f":(exclude){HISTORY_DIR}", *(f":(exclude,glob){p}" for p in exclude))

    def totals(self) -> tuple[int, float | None]:
        """Tokens and dollars of every LLM call (cost None if any price is unknown)."""
        return spent([e for e in self.events if e.kind == "llm.response"])

    def final_info(self, run: int) -> dict[str, Any] | None:
        """`run_{run}/final_info.json` as the work tree holds it."""
        path = self.root / f"run_{run}" / "final_info.json"
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def runs(self) -> list[int]:
        """The runs with a final_info.json in the work tree, in order."""
        found = [int(p.parent.name.split("_")[1]) for p in self.root.glob("run_*/final_info.json")
                 if p.parent.name.split("_")[1].isdigit()]
        return sorted(found)


def spent(replies: list[Event]) -> tuple[int, float | None]:
    """Tokens and dollars of these `llm.response` events (dollars None if a price is unknown)."""
    tokens = sum(int(e.data.get("input_tokens") or 0) + int(e.data.get("output_tokens") or 0)
                 for e in replies)
    costs = [e.data.get("cost_usd") for e in replies]
    return tokens, None if any(c is None for c in costs) else float(sum(c for c in costs if c is not None))


def load(root: Path) -> History:
    """The history of a run directory, or of a clone of its repository."""
    root = root.resolve()
    if not (root / ".git").exists():
        raise UsageError(f"{root} is not a run directory: it has no git repository. Pass a "
                         "folder under runs/ or a clone of one")
    contents = read_run(root)
    if not contents.events:
        raise UsageError(f"{root} has no journal: neither {JOURNAL_NAME} nor committed "
                         f"segments in {HISTORY_DIR}/. Is it a run directory?")
    try:
        template: Template | None = load_template(root, run_dir=True)
    except UsageError:
        template = None
    headline = [m.name for m in template.headline] if template else []
    by_seq = {e.seq: e for e in contents.events}
    carried: set[int] = set()
    steps: list[Step] = []
    baseline: dict[str, float] = {}
    for n, (sha, when, subject, trailer, paths) in enumerate(_commits(root), start=1):
        seqs: list[int] = []
        files = []
        for path in paths:
            m = SEGMENT_RE.fullmatch(path.rpartition("/")[2]) if path.startswith(f"{HISTORY_DIR}/") else None
            if m:
                seqs.extend(range(int(m.group(1)), int(m.group(2)) + 1))
            elif path != f"{HISTORY_DIR}/README.md":
                files.append(path)
        carried.update(seqs)
        stage = subject.partition(":")[0].strip() or "commit"
        run = None if stage in ("journal", "replay") else _run_of(subject, trailer)
        metrics: dict[str, float] = {}
        for path in files:
            if (m := _FINAL_INFO_RE.match(path)) is not None:
                run = int(m.group(1))
                metrics = _headline(root, sha, path, headline)
        if run == 0 and metrics:
            baseline = metrics
        deltas = {k: v - baseline[k] for k, v in metrics.items() if k in baseline and run != 0}
        steps.append(Step(n, sha, subject, trailer, stage, run, when, tuple(files), tuple(by_seq[s] for s in seqs if s in by_seq),
                          metrics, deltas))
    pending = tuple(e for e in contents.events if e.seq not in carried)
    return History(root, steps, contents.events, pending, template)


def _commits(root: Path) -> list[tuple[str, float, str, str | None, list[str]]]:
    """(sha, time, subject, step trailer, paths) of every commit, oldest first."""
    out = _git(root, "log", "--reverse", "--no-renames", "--name-only",
               f"--format=%x1e%H%x1f%ct%x1f%s%x1f%(trailers:key={STEP_TRAILER},valueonly)%x1f")
    commits = []
    for record in out.split("\x1e")[1:]:
        sha, when, subject, trailer, names = record.split("\x1f", 4)
        commits.append((sha.strip(), float(when), subject, trailer.strip() or None,
                        [line for line in names.splitlines() if line.strip()]))
    return commits


def _run_of(subject: str, trailer: str | None) -> int | None:
    if trailer and (m := _STEP_RUN_RE.search(trailer)):
        return int(m.group(1))
    m = _RUN_RE.search(subject)
    return int(m.group(1)) if m else None


def _headline(root: Path, sha: str, rel: str, names: list[str]) -> dict[str, float]:
    try:
        info = json.loads(_git(root, "show", f"{sha}:{rel}"))
        metrics = info.get("metrics", {})
    except (ValueError, AttributeError, UsageError):
        return {}
    return {k: float(metrics[k]) for k in names
            if isinstance(metrics.get(k), (int, float)) and not isinstance(metrics.get(k), bool)}


def _git(root: Path, *args: str) -> str:
    import subprocess

    proc = subprocess.run(["git", "-C", str(root), *args], capture_output=True,
                          env=gitsafe.environ(), text=True)
    if proc.returncode != 0:
        raise UsageError(f"git {args[0]} failed in {root}: {proc.stderr.strip()}")
    return proc.stdout
