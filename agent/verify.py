"""`python -m agent.replay RUN --verify`: re-execute runs at the commits that produced them and
compare every metric with the recorded `final_info.json`.

Each run is executed exactly as the loop executed it (`agent.runs`: every seed as its own
sandboxed process, then the trusted evaluator), in a scratch `git worktree` of the commit its
`final_info.json` names, with the launch's recorded preset and seeds. The outcome is journaled
in the run directory and committed with its history, so the report and a later clone show it.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import tempfile
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from agent import gitsafe, history
from agent.config import LaunchConfig
from agent.errors import AgentError, UsageError
from agent.journal import JOURNAL_NAME, Journal, materialize
from agent.progress import Console
from agent.workspace import Workspace


@dataclass(frozen=True)
class RunCheck:
    """How one run's re-execution compared with its record."""

    run: int
    commit: str | None
    status: str
    """`reproduced`, `differs` (a metric beyond the tolerance) or `failed` (not re-executable)."""
    max_abs_diff: float | None
    differences: list[dict[str, Any]] = field(default_factory=list)
    """`{"metric", "recorded", "reproduced"}` for each value beyond the tolerance."""
    message: str = ""

    def line(self) -> str:
        name = f"run_{self.run}"
        if self.status == "reproduced":
            return f"{name}: reproduced (max |diff| {self.max_abs_diff:.3g}; {self.message})"
        if self.status == "differs":
            shown = "; ".join(f"{d['metric']} {d['recorded']!r} -> {d['reproduced']!r}" for d in self.differences[:8])
            more = f" (and {len(self.differences) - 8} more)" if len(self.differences) > 8 else ""
            return f"{name}: DIFFERS: {shown}{more}"
        return f"{name}: FAILED to re-execute: {self.message}"


@dataclass(frozen=True)
class VerifyReport:
    root: Path
    checks: list[RunCheck]
    rtol: float
    atol: float

    @property
    def ok(self) -> bool:
        return all(c.status == "reproduced" for c in self.checks)

    def text(self) -> str:
        head = (f"verified {len(self.checks)} run(s) of {self.root} "
                f"(tolerance |a - b| <= {self.atol:g} + {self.rtol:g} |a|):")
        verdict = ("every run reproduced" if self.ok else
                   f"{sum(c.status != 'reproduced' for c in self.checks)} run(s) did not reproduce")
        return "\n".join([head, *(f"  {c.line()}" for c in self.checks), verdict])


def verify(root: Path, which: list[str], *, rtol: float, atol: float, console: Console,
           sandbox: bool = True, seeds: list[int] | None = None) -> VerifyReport:
    """Re-execute the runs named in `which` (all when empty) and journal the outcome. With
    `seeds`, only those seeds of each run are re-executed (each with the threads it had) and
    only their own values compared: the means need every seed."""
    hist = history.load(root)
    root = hist.root
    runs = _select(hist, which)
    launch = hist.launch
    if not launch.get("config"):
        raise UsageError(f"{root}: its journal has no launch.started event, so the preset and "
                         "seeds the runs were made with are unknown")
    materialize(root)  # a clone: journal.jsonl from the history's segments, to journal in
    ws = Workspace(root)
    ws.lock()
    journal = Journal(root / JOURNAL_NAME)
    config = replace(LaunchConfig.from_dict(launch["config"]), sandbox=sandbox, quiet=True)
    box, note = _sandbox(config, console)
    journal.append("verify.started", runs=runs, rtol=rtol, atol=atol, sandbox=note, seeds=seeds)
    checks = []
    for run in runs:
        console.info(f"verify: re-executing run_{run}" + (f" (seeds {_listed(seeds)})" if seeds else "") + " ...")
        check = _verify_run(hist, run, config, launch, box, rtol, atol, seeds)
        journal.append("verify.run", **asdict(check))
        checks.append(check)
    report = VerifyReport(root, checks, rtol, atol)
    journal.append("verify.finished", ok=report.ok, rtol=rtol, atol=atol, seeds=seeds,
                   runs=[asdict(c) for c in checks])
    summary = "all reproduced" if report.ok else "some differ"
    ws.commit_journal(f"replay: verify {', '.join(f'run_{r}' for r in runs)}: {summary}")
    return report


def _select(hist: history.History, which: list[str]) -> list[int]:
    have = hist.runs()
    if not which:
        if not have:
            raise UsageError(f"{hist.root} has no finished run (no run_i/final_info.json) to verify")
        return have
    chosen = []
    for name in which:
        digits = name.removeprefix("run_").removeprefix("run")
        if not digits.isdigit() or int(digits) not in have:
            raise UsageError(f"no finished run '{name}' in {hist.root}; finished runs: "
                             f"{', '.join(f'run_{r}' for r in have) or 'none'}")
        chosen.append(int(digits))
    return sorted(set(chosen))


def _sandbox(config: LaunchConfig, console: Console) -> tuple[Any, str]:
    from agent import orchestrator

    return orchestrator._sandbox(config, console)


def _listed(seeds: list[int] | None) -> str:
    return ", ".join(map(str, seeds or []))


def _verify_run(hist: history.History, run: int, config: LaunchConfig, launch: dict[str, Any],
                box: Any, rtol: float, atol: float, seeds: list[int] | None = None) -> RunCheck:
    recorded = hist.final_info(run)
    if recorded is None:
        return RunCheck(run, None, "failed", None, message="its final_info.json is unreadable")
    code = recorded.get("code")
    commit = code.get("commit") if isinstance(code, dict) else None
    if not isinstance(commit, str) or _git(hist.root, "cat-file", "-e", f"{commit}^{{commit}}").returncode:
        return RunCheck(run, commit if isinstance(commit, str) else None, "failed", None,
                        message=f"its final_info.json names no commit of this history ({commit!r})")
    scratch = Path(tempfile.mkdtemp(prefix=f"verify-run_{run}-"))
    tree = scratch / "worktree"
    try:
        added = _git(hist.root, "worktree", "add", "--detach", str(tree), commit)
        if added.returncode:
            return RunCheck(run, commit, "failed", None, message=f"git worktree add failed: {added.stderr.strip()}")
        try:
            reproduced, problem = _execute(tree, run, config, launch, box, seeds)
        except AgentError as exc:  # e.g. the harness cannot prepare the preset
            reproduced, problem = None, str(exc)
        if reproduced is None:
            return RunCheck(run, commit, "failed", None, message=problem)
        same_weights = bool(_weights(tree / f"run_{run}")) and \
            _weights(hist.root / f"run_{run}", seeds) == _weights(tree / f"run_{run}")
        return _compare(run, commit, recorded, reproduced, rtol, atol, same_weights, seeds)
    finally:
        _git(hist.root, "worktree", "remove", "--force", str(tree))
        _git(hist.root, "worktree", "prune")
        shutil.rmtree(scratch, ignore_errors=True)


def _execute(tree: Path, run: int, config: LaunchConfig, launch: dict[str, Any],
             box: Any, seeds: list[int] | None = None) -> tuple[dict[str, Any] | None, str]:
    """Run `run_{run}` in the worktree the way the loop did; its final_info or why not."""
    from agent import baseline, ideas, runs
    from agent import template as template_mod
    from agent.context import RunContext
    from agent.orchestrator import _devices, _with_run_dir

    template = template_mod.load(tree, run_dir=True)
    fields = json.loads((tree / "idea.json").read_text(encoding="utf-8"))
    idea = ideas.Idea(str(launch.get("idea", "idea")), tree / "idea.json", template.name, fields, {})
    ctx = RunContext(Workspace(tree), Journal(tree / JOURNAL_NAME), template, idea, config,
                     Console(quiet=True), "verify", launch.get("preset"),
                     sandbox=_with_run_dir(box, tree, template.root), devices=_devices(config),
                     only_seeds=tuple(seeds) if seeds else None)
    if seeds and not ctx.seeds:
        return None, f"none of seeds {_listed(seeds)} is a seed of this launch (seeds {_listed(ctx.all_seeds)})"
    baseline.prepare_caches(ctx)
    finished = runs._run_process(ctx, run, 1, "verify", f"run_{run}")
    if finished.data["status"] != "ok":
        tail = str(finished.data.get("stderr_tail") or "").strip().splitlines()[-3:]
        return None, f"{finished.data.get('describe')}" + (f": {' | '.join(tail)}" if tail else "")
    return json.loads((tree / f"run_{run}" / "final_info.json").read_text(encoding="utf-8")), ""


def _compare(run: int, commit: str, recorded: dict[str, Any], reproduced: dict[str, Any],
             rtol: float, atol: float, same_weights: bool = False,
             seeds: list[int] | None = None) -> RunCheck:
    """Every numeric metric (the means and each seed's value) within the tolerance; with
    `seeds`, those seeds' own values only."""
    pairs = _values(recorded)
    again = _values(reproduced)
    if seeds:
        wanted = tuple(f"[seed {s}]" for s in seeds)
        pairs = {k: v for k, v in pairs.items() if k.endswith(wanted)}
        again = {k: v for k, v in again.items() if k.endswith(wanted)}
    differences: list[dict[str, Any]] = []
    worst = 0.0
    for key in sorted(set(pairs) | set(again)):
        a, b = pairs.get(key), again.get(key)
        if a is None or b is None:
            differences.append({"metric": key, "recorded": a, "reproduced": b})
            continue
        if math.isnan(a) and math.isnan(b):
            continue
        diff = abs(a - b)
        worst = max(worst, diff) if not math.isnan(diff) else math.inf
        if not diff <= atol + rtol * abs(a):
            differences.append({"metric": key, "recorded": a, "reproduced": b})
    if differences:
        return RunCheck(run, commit, "differs", worst, differences,
                        f"{len(differences)} value(s) beyond the tolerance")
    how = f"{len(pairs)} values compared" + (f" (seeds {_listed(seeds)} only)" if seeds else "") \
        + ("; identical weights" if same_weights else "")
    return RunCheck(run, commit, "reproduced", worst, [], how)


def _values(info: dict[str, Any]) -> dict[str, float]:
    """`metric` -> mean, and `metric[seed k]` -> that seed's value, for every number."""
    out: dict[str, float] = {}
    metrics = info.get("metrics") if isinstance(info.get("metrics"), dict) else {}
    for name, value in (metrics or {}).items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            out[name] = float(value)
    seeds = info.get("seeds") if isinstance(info.get("seeds"), dict) else None
    values = seeds.get("values") if seeds else None
    succeeded = seeds.get("succeeded") if seeds else None
    if isinstance(values, dict):
        for name, per_seed in values.items():
            if isinstance(per_seed, list):
                labels = succeeded if isinstance(succeeded, list) and len(succeeded) == len(per_seed) else range(len(per_seed))
                for label, value in zip(labels, per_seed, strict=False):
                    if isinstance(value, (int, float)) and not isinstance(value, bool):
                        out[f"{name}[seed {label}]"] = float(value)
    return out


def _weights(run_dir: Path, seeds: list[int] | None = None) -> list[str | None]:
    """The evaluated weights' hash of each seed (the evaluator's provenance), in seed order;
    with `seeds`, of those seeds only."""
    found = []
    for path in sorted(run_dir.glob("seed_*/final_info.json")):
        if seeds and int(path.parent.name.removeprefix("seed_")) not in seeds:
            continue
        try:
            found.append(json.loads(path.read_text(encoding="utf-8"))["provenance"].get("weights_sha256"))
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            found.append(None)
    return found if found and all(found) else []


def _git(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", "-C", str(root), *args], capture_output=True,
                          env=gitsafe.environ(), text=True)
