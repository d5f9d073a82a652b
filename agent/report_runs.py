"""The report's runs table: each run's metrics (mean ± half-width of the 95% interval over its
seeds), its difference from the baseline with the interval and verdict `agent.stats` decides,
its gates, seeds, failed attempts and configuration changes. A run whose results are missing
or unreadable is a row that says why."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.journal import Event
from agent.results import RunRecord, config_changes, evaluated, load_run, plus_minus, run_summaries
from agent.stats import compare_runs
from agent.template import Metric, Template
from harness.gates import GateResult


@dataclass(frozen=True)
class Cell:
    """One run's value of one metric, and its difference from the baseline."""

    value: str
    """`0.779 ± 0.004` (mean ± half-width of its 95% interval), or `n/a`."""
    delta: str
    """`+0.003 [-0.010, 0.020]` (run − baseline, 95% Welch interval), empty for the baseline."""
    verdict: str | None
    """better / worse / no detectable difference; None without an interval."""
    note: str
    """Why there is no verdict (e.g. `no interval: 1 seed`)."""


@dataclass(frozen=True)
class RunRow:
    """One run of the metrics table: the baseline, a finished run or one without results."""

    index: int
    label: str
    summary: str
    """What it changed (its plan line)."""
    commit: str | None
    cells: tuple[Cell, ...]
    gates: tuple[GateResult, ...]
    seeds: str
    """`3 of 3 seeds`."""
    seed_problems: tuple[str, ...]
    failed_attempts: tuple[str, ...]
    changes: dict[str, tuple[Any, Any]]
    """Config entries that differ from the baseline's: name -> (baseline, run)."""
    config: dict[str, Any]
    all_metrics: dict[str, str]
    """Every declared metric, formatted."""
    problem: str | None
    """Why it has no (readable) results; None when it has."""
    committed: bool = True
    """False: its final_info.json is in the work tree only (a launch stopped before recording it)."""
    trusted: bool = True
    """False: its metrics were written by the experiment itself, not by a trusted evaluator."""


def rows(root: Path, template: Template | None, events: list[Event], committed: set[str]) -> list[RunRow]:
    """The baseline and every run that has results or was attempted, in run order;
    `committed` holds the paths some commit of the history changed."""
    if template is None:
        return []
    summaries = run_summaries(events)
    indices = sorted({int(p.parent.name.split("_")[1]) for p in root.glob("run_*/final_info.json")
                      if p.parent.name.split("_")[1].isdigit()})
    records: dict[int, RunRecord | str] = {}
    for i in indices:
        try:
            records[i] = load_run(root, i, template)
        except (OSError, ValueError) as exc:
            records[i] = f"run_{i}/final_info.json is unreadable: {exc}"
    attempted = {int(e.data["run"]) for e in events if e.kind in ("run.planned", "run.started")
                 and isinstance(e.data.get("run"), int)}
    for i in attempted - set(records):
        last = last_event(events, "run.finished", run=i)
        gave_up = last_event(events, "experiment.gave_up", run=i)
        why = (f"gave up after {gave_up.data.get('attempts')} attempts" if gave_up else
               f"last attempt {last.data.get('describe') or last.data.get('status')}" if last else "it did not finish")
        records[i] = f"no results: {why}"
    base = records.get(0)
    base_rec = base if isinstance(base, RunRecord) else None
    rows = []
    for i in sorted(records):
        rec = records[i]
        failed = tuple(f"attempt {e.data.get('attempt')}: {e.data.get('describe') or e.data.get('status')}"
                       + _last_line(str(e.data.get("stderr_tail") or ""))
                       for e in events if e.kind == "run.finished" and e.data.get("run") == i
                       and e.data.get("status") != "ok")
        label = "baseline (run_0)" if i == 0 else f"run {i}"
        if isinstance(rec, str):
            rows.append(RunRow(i, label, summaries.get(i, ""), None, (), (), "", (), failed, {}, {}, {}, rec))
            continue
        raw_seeds = rec.raw.get("seeds")
        seeds: dict[str, Any] = raw_seeds if isinstance(raw_seeds, dict) else {}
        rows.append(RunRow(
            i, label, summaries.get(i, ""), rec.commit,
            tuple(_cell(rec, base_rec, m) for m in template.headline), rec.gates,
            f"{seeds.get('n', 1)} of {len(seeds.get('requested') or [0])} seed(s)" if seeds else "1 seed",
            _seed_problems(seeds), failed, config_changes(base_rec, rec) if i else {}, rec.config,
            {m.name: m.fmt(rec.metrics[m.name]) for m in template.metrics
             if _number(rec.metrics.get(m.name))}, None, f"run_{i}/final_info.json" in committed,
            evaluated(template, rec)))
    return rows


def _cell(rec: RunRecord, base: RunRecord | None, m: Metric) -> Cell:
    value = rec.metrics.get(m.name)
    if not _number(value):
        return Cell("n/a", "", None, "")
    shown = m.fmt(value) + plus_minus(rec, m.name, m.format)
    if base is None or rec.index == 0:
        return Cell(shown, "", None, "")
    found = compare_runs(rec.raw, base.raw, m.name, m.direction, rec.name, base.name)
    if found is None:
        return Cell(shown, "", None, "the baseline has no value")
    fmt = ".4g" if m.format.endswith("d") else m.format
    c = found.comparison
    delta = format(c.diff, "+" + fmt.lstrip("+"))
    if c.ci is None:
        return Cell(shown, delta, None, f"no interval: {min(found.n_run, found.n_against)} seed(s)")
    return Cell(shown, f"{delta} [{format(c.ci[0], fmt)}, {format(c.ci[1], fmt)}]", c.verdict, "")


def _seed_problems(seeds: dict[str, Any]) -> tuple[str, ...]:
    out = [f"seed {f.get('seed')} failed: {str(f.get('reason', ''))[:300]}"
           for f in seeds.get("failed") or [] if isinstance(f, dict)]
    if seeds and seeds.get("independent") is False:
        out.append(f"seeds not independent: {seeds.get('note', '')}")
    return tuple(out)


def last_event(events: list[Event], kind: str, **match: Any) -> Event | None:
    """The last event of `kind` whose data has all of `match`."""
    return next((e for e in reversed(events) if e.kind == kind
                 and all(e.data.get(k) == v for k, v in match.items())), None)


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return f" ({lines[-1].strip()[:200]})" if lines else ""


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
