"""`python -m agent.replay RUN --rebuild DIR`: replay a run's recorded LLM replies into a fresh
run directory and compare the two histories commit by commit.

The rebuilt run is a real launch (same idea, template, preset, seeds and stages; the model is
the recording), so its experiments execute again. The histories agree when every step made
the same commit: the same subject, the same files, the same diffs (timings and commit ids
aside) and the same metrics within the tolerance. Otherwise the first step where they part is
named with what differs. The outcome is journaled in the recorded run.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from agent import gitsafe, history, paths
from agent.config import STAGES, LaunchConfig
from agent.errors import AgentError, UsageError
from agent.journal import JOURNAL_NAME, Journal, materialize, read_run
from agent.progress import Console
from agent.workspace import Workspace

_SKIPPED_STAGES = ("journal", "replay")
"""Commits that carry only the journal: they differ in number between a run and its rebuild."""
_NOT_COMPARED = re.compile(r"(^|/|_)(stdout\.txt|stderr\.txt)$|(^|/)(seed_outcomes\.json|cached_from\.json)$"
                           r"|^logs/|\.(pdf|png|jpg|svg)$")
"""Outputs whose bytes hold timings, paths or renderer details: present on both sides is enough."""
# Keys whose values differ between two executions of the same code: times (`*_s` seconds,
# `ms_per_*`), commit ids, and hashes of files that hold them (a record's written_at, the exported
# archives, whatever the template's contract names them); the evaluated weights' and the
# harness's hashes are not among them, so identical weights and harness are still required.
_VOLATILE_KEYS = re.compile(r"(^|_)(at|commit|sha|time|timestamp|ts|written_at|s|ms|"
                            r"seconds|elapsed|started|finished|timings|source|path)$"
                            r"|^ms_per_\w+$|^(?!weights_|harness_)\w+_sha256$")
_DATE = re.compile(r"\b\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2})?(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2})?")
_DURATION = re.compile(r"\b\d+(?:\.\d+)? ?(?:s|ms|seconds)\b")
_SHA = re.compile(r"\b(?:commit\s+[0-9a-f]{7,40}|(?=[0-9a-f]*[a-f])(?=[0-9a-f]*[0-9])[0-9a-f]{7,40})\b")
"""A commit id: after the word `commit`, or hex with a letter and a digit (never a word or a
number)."""


@dataclass(frozen=True)
class RebuildOutcome:
    recorded: Path
    rebuilt: Path | None
    steps: int
    """Steps compared (journal-only commits aside)."""
    first_difference: str | None
    stopped: str | None
    """Why the rebuilt launch stopped early, if it did."""

    @property
    def same(self) -> bool:
        return self.first_difference is None

    def text(self) -> str:
        where = f"rebuilt into {self.rebuilt}" if self.rebuilt else "no run directory was rebuilt"
        lines = [where]
        if self.stopped:
            lines.append(f"the rebuilt launch stopped: {self.stopped.splitlines()[0]}")
        if self.same:
            lines.append(f"the histories agree: {self.steps} steps, the same commits and diffs, "
                         "metrics within the tolerance")
        else:
            lines.append(f"the histories part: {self.first_difference}")
        return "\n".join(lines)


def rebuild(root: Path, dest: Path, *, rtol: float, atol: float, console: Console,
            sandbox: bool = True) -> RebuildOutcome:
    """Replay `root`'s recorded replies into a new run directory under `dest` and compare."""
    from agent import orchestrator

    recorded = history.load(root)
    launch = recorded.launch
    if not launch.get("config") or not launch.get("idea"):
        raise UsageError(f"{recorded.root}: its journal has no launch.started event to rebuild from")
    dest = dest.resolve()
    if dest == recorded.root or recorded.root in dest.parents:
        raise UsageError(f"--rebuild {dest}: choose a folder outside the run directory")
    recording = dest / ".recordings" / f"{recorded.root.name}.jsonl"
    recording.parent.mkdir(parents=True, exist_ok=True)
    recording.write_text("".join(e.to_json() + "\n" for e in read_run(recorded.root).events), encoding="utf-8")
    config = _config(launch, recorded, recording, dest, sandbox)
    before = set(dest.iterdir())
    stopped = None
    console.info(f"rebuild: replaying {sum(e.kind == 'llm.response' for e in recorded.events)} "
                 f"recorded replies into a new run directory under {dest} ...")
    try:
        orchestrator.launch(config, Console(quiet=True), templates_dir=_templates_dir(launch))
    except AgentError as exc:
        stopped = str(exc)
    made = [p for p in dest.iterdir() if p not in before and p.is_dir() and not p.name.startswith(".")]
    rebuilt = made[0] if made else None
    if rebuilt is None:
        outcome = RebuildOutcome(recorded.root, None, 0, f"the launch made no run directory ({stopped})", stopped)
    else:
        steps, difference = compare(recorded, history.load(rebuilt), rtol, atol)
        outcome = RebuildOutcome(recorded.root, rebuilt, steps, difference, stopped)
    _journal(recorded.root, outcome)
    return outcome


def _config(launch: dict[str, Any], recorded: history.History, recording: Path, dest: Path,
            sandbox: bool) -> LaunchConfig:
    """The recorded launch's configuration, with the recording as its model and every stage
    the recorded run finished (it may have been resumed with others)."""
    config = LaunchConfig.from_dict(launch["config"])
    finished = {e.data.get("stage") for e in recorded.events if e.kind == "stage.finished"}
    stages = tuple(s for s in STAGES if s in finished or s in config.stages)
    return replace(config, idea=str(launch["idea"]), template=launch.get("template"),
                   model=f"replay:{recording}", api_base=None, runs_dir=str(dest), quiet=True,
                   preflight_call=False, sandbox=sandbox, stages=stages, max_cost_usd=None,
                   preset=launch.get("preset") or config.preset)


def _templates_dir(launch: dict[str, Any]) -> Path:
    recorded = Path(str(launch.get("template_root", "")))
    if recorded.name and (recorded / "template.toml").is_file():
        return recorded.parent
    return paths.TEMPLATES


def compare(a: history.History, b: history.History, rtol: float, atol: float) -> tuple[int, str | None]:
    """Steps compared, and the first difference (None: the histories agree)."""
    left = [s for s in a.steps if s.stage not in _SKIPPED_STAGES]
    right = [s for s in b.steps if s.stage not in _SKIPPED_STAGES]
    for i, (x, y) in enumerate(zip(left, right, strict=False), start=1):
        where = f"step {x.n} of the recorded history ({x.subject!r})"
        if _norm(x.subject) != _norm(y.subject):
            return i, f"{where}: the rebuilt run's step {y.n} is {y.subject!r}"
        if set(x.files) != set(y.files):
            only_a, only_b = sorted(set(x.files) - set(y.files)), sorted(set(y.files) - set(x.files))
            return i, f"{where}: files changed differ (only recorded: {only_a}; only rebuilt: {only_b})"
        for rel in x.files:
            if _NOT_COMPARED.search(rel):
                continue
            problem = _file_difference(a.root, x.sha, b.root, y.sha, rel, rtol, atol)
            if problem:
                return i, f"{where}: {rel}: {problem}"
    if len(left) != len(right):
        longer, name = (left, "recorded") if len(left) > len(right) else (right, "rebuilt")
        extra = longer[min(len(left), len(right))]
        return min(len(left), len(right)), (
            f"the {name} history goes on after step {min(len(left), len(right))}: its next step "
            f"is {extra.subject!r} ({len(longer) - min(len(left), len(right))} more)")
    return len(left), None


def _file_difference(root_a: Path, sha_a: str, root_b: Path, sha_b: str, rel: str,
                     rtol: float, atol: float) -> str | None:
    text_a, text_b = _show(root_a, sha_a, rel), _show(root_b, sha_b, rel)
    if text_a is None or text_b is None:
        return None if text_a == text_b else "deleted on one side only"
    if rel.endswith(".json"):
        try:
            return _json_difference(json.loads(text_a), json.loads(text_b), "", rtol, atol)
        except ValueError:
            pass
    lines_a, lines_b = _norm(text_a).splitlines(), _norm(text_b).splitlines()
    for n, (la, lb) in enumerate(zip(lines_a, lines_b, strict=False), start=1):
        if la != lb:
            return f"line {n}: {la.strip()[:120]!r} -> {lb.strip()[:120]!r}"
    if len(lines_a) != len(lines_b):
        return f"{len(lines_a)} lines recorded, {len(lines_b)} rebuilt"
    return None


def _json_difference(a: Any, b: Any, where: str, rtol: float, atol: float) -> str | None:
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            if _VOLATILE_KEYS.search(str(key)):
                continue
            if key not in a or key not in b:
                return f"{where}{key}: present on one side only"
            found = _json_difference(a[key], b[key], f"{where}{key}.", rtol, atol)
            if found:
                return found
        return None
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return f"{where.rstrip('.')}: {len(a)} items recorded, {len(b)} rebuilt"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            found = _json_difference(x, y, f"{where}{i}.", rtol, atol)
            if found:
                return found
        return None
    numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (a, b))
    if numbers:
        if (math.isnan(a) and math.isnan(b)) or abs(a - b) <= atol + rtol * abs(a):
            return None
    elif isinstance(a, str) and isinstance(b, str):
        if _norm(a) == _norm(b) or (a.startswith("replay:") and b.startswith("replay:")):
            return None  # (the rebuilt run's model is the recording: another path)
    elif a == b:
        return None
    return f"{where.rstrip('.')}: {a!r} -> {b!r}"


def _norm(text: str) -> str:
    return _SHA.sub("<commit>", _DURATION.sub("<time>", _DATE.sub("<date>", text)))


def _show(root: Path, sha: str, rel: str) -> str | None:
    import subprocess

    proc = subprocess.run(["git", "-C", str(root), "show", f"{sha}:{rel}"], capture_output=True,
                          env=gitsafe.environ())
    if proc.returncode:
        return None
    return proc.stdout.decode("utf-8", errors="replace")


def _journal(root: Path, outcome: RebuildOutcome) -> None:
    """Record the comparison in the recorded run (its journal and history)."""
    materialize(root)
    ws = Workspace(root)
    ws.lock()
    Journal(root / JOURNAL_NAME).append(
        "rebuild.finished", same=outcome.same, first_difference=outcome.first_difference,
        steps=outcome.steps, dir=str(outcome.rebuilt) if outcome.rebuilt else None,
        stopped=outcome.stopped)
    ws.commit_journal("replay: rebuild " + ("agrees" if outcome.same else "parts"))
