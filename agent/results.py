"""Run results as the loop sees them: records read from `run_i/final_info.json`, the compact
table shown to the LLM, gate reports in plain words, and config differences.

The LLM never sees the raw results dict: it sees the template's headline metrics for the
baseline and every finished run, deltas against the baseline, and the gates that fail.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.template import Template
from harness.gates import GateResult, evaluate

RUN_DIR_RE = re.compile(r"^run_(\d+)$")


@dataclass(frozen=True)
class RunRecord:
    """One finished run, as recorded by the harness."""

    index: int
    """0 is the baseline."""
    metrics: dict[str, Any]
    config: dict[str, Any]
    commit: str | None
    """The code commit that produced it."""
    gates: tuple[GateResult, ...]
    """The template's gates, evaluated on this run."""
    raw: dict[str, Any]
    """The whole final_info.json."""

    @property
    def name(self) -> str:
        return f"run_{self.index}"

    @property
    def label(self) -> str:
        return "baseline (run_0)" if self.index == 0 else f"run {self.index}"

    def failing(self, severity: str | None = "fail") -> list[GateResult]:
        return [g for g in self.gates if g.passed is not True and (severity is None or g.severity == severity)]


def load_run(root: Path, index: int, template: Template) -> RunRecord:
    """Read `run_{index}/final_info.json`; ValueError (saying what is wrong) for any shape the
    loop cannot read: not an object, `metrics`/`config`/`code` not objects, a headline metric
    that is not a number."""
    path = root / f"run_{index}" / "final_info.json"
    info = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(info, dict):
        raise ValueError(f"{path.name} holds a JSON {type(info).__name__}, not an object")
    parts = {key: info.get(key) or {} for key in ("metrics", "config", "code")}
    for key, value in parts.items():
        if not isinstance(value, dict):
            raise ValueError(f"'{key}' in {path.name} is a {type(value).__name__}, not an object")
    metrics, config = parts["metrics"], parts["config"]
    for m in template.headline:
        value = metrics.get(m.name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise ValueError(f"metric '{m.name}' in {path.name} is {value!r}, not a number")
    commit = parts["code"].get("commit")
    gates = tuple(evaluate(list(template.gates), metrics, config))
    return RunRecord(index, metrics, config, commit if isinstance(commit, str) else None, gates, info)


def finished_runs(root: Path, template: Template) -> list[RunRecord]:
    """Every `run_i/` holding a final_info.json, in run order."""
    indices = sorted(int(m.group(1)) for p in root.iterdir()
                     if (m := RUN_DIR_RE.match(p.name)) and (p / "final_info.json").is_file())
    return [load_run(root, i, template) for i in indices]


def _delta(value: Any, base: Any, fmt: str) -> str:
    if not isinstance(value, (int, float)) or not isinstance(base, (int, float)):
        return ""
    d = value - base
    rel = f", {d / abs(base) * 100:+.0f}%" if base else ""
    try:
        text = format(d, "+" + fmt.lstrip("+"))
    except ValueError:  # an integer spec ("d") applied to a float difference
        text = format(d, "+.4g")
    return f" ({text}{rel})"


def results_table(template: Template, runs: list[RunRecord]) -> str:
    """Headline metrics per run, deltas against the baseline, failing gates under the table."""
    heads = template.headline
    base = next((r for r in runs if r.index == 0), None)
    header = "| run | " + " | ".join(f"{m.label} ({'↑' if m.direction == 'higher' else '↓'})" for m in heads) + " |"
    lines = [header, "|" + "---|" * (len(heads) + 1)]
    for r in runs:
        cells = []
        for m in heads:
            v = r.metrics.get(m.name)
            cell = m.fmt(v) if isinstance(v, (int, float)) else "n/a"
            if base is not None and r.index != 0:
                cell += _delta(v, base.metrics.get(m.name), m.format)
            cells.append(cell)
        lines.append(f"| {r.label} | " + " | ".join(cells) + " |")
    problems = gate_lines(runs)
    if problems:
        lines += ["", "Plausibility gates that fail (a run failing a 'fail' gate is not a valid result):"]
        lines += problems
    return "\n".join(lines)


def gate_lines(runs: list[RunRecord]) -> list[str]:
    out = []
    for r in runs:
        for g in r.failing(severity=None):
            out.append(f"- {r.label}: [{g.severity}] {g.message}")
    return out


def config_changes(base: RunRecord | None, run: RunRecord) -> dict[str, tuple[Any, Any]]:
    """Config entries that differ from the baseline's: name -> (baseline value, run value)."""
    if base is None:
        return {}
    keys = sorted(set(base.config) | set(run.config))
    return {k: (base.config.get(k), run.config.get(k)) for k in keys
            if base.config.get(k) != run.config.get(k) and not k.startswith("_")}


def format_config_changes(changes: dict[str, tuple[Any, Any]]) -> str:
    if not changes:
        return "no configuration differences from the baseline"
    return "; ".join(f"{k}: {a!r} -> {b!r}" if a is not None else f"{k} = {b!r} (new)"
                     for k, (a, b) in changes.items())


def full_table(template: Template, runs: list[RunRecord]) -> str:
    """Every declared metric of every run (the data behind plots and the paper)."""
    names = [m for m in template.metrics if any(m.name in r.metrics for r in runs)]
    lines = ["| run | " + " | ".join(m.name for m in names) + " |", "|" + "---|" * (len(names) + 1)]
    for r in runs:
        cells = [m.fmt(r.metrics[m.name]) if isinstance(r.metrics.get(m.name), (int, float)) else "n/a"
                 for m in names]
        lines.append(f"| {r.name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def run_summaries(events: list[Any]) -> dict[int, str]:
    """What each run changed, from the journal's `run.planned` events (latest attempt wins)."""
    out: dict[int, str] = {0: "the unmodified template (baseline)"}
    for e in events:
        if e.kind == "run.planned":
            out[int(e.data["run"])] = str(e.data.get("summary", ""))
    return out
