"""Run results as the loop sees them: records read from `run_i/final_info.json`, the compact
table shown to the LLM, gate reports in plain words, and config differences.

The LLM never sees the raw results dict: it sees the template's headline metrics for the
baseline and every finished run (means over the seeds with their intervals), each run's
difference from the baseline with its interval and verdict (decided by `agent.stats`), what
went wrong with seeds, and the gates that fail.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent import runfiles
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

    @property
    def seed_count(self) -> int:
        """How many seeds the metrics are the means of (1 for a record without seeds)."""
        seeds = self.raw.get("seeds")
        return int(seeds.get("n", 1)) if isinstance(seeds, dict) else 1

    def interval(self, metric: str) -> tuple[float, float] | None:
        """The 95% interval of the metric's mean over the seeds, if the run has one."""
        seeds = self.raw.get("seeds")
        ci = seeds.get("ci95", {}).get(metric) if isinstance(seeds, dict) else None
        if isinstance(ci, list) and len(ci) == 2 and all(isinstance(v, (int, float)) for v in ci):
            return float(ci[0]), float(ci[1])
        return None

    def failing(self, severity: str | None = "fail") -> list[GateResult]:
        return [g for g in self.gates if g.passed is not True and (severity is None or g.severity == severity)]


def load_run(root: Path, index: int, template: Template) -> RunRecord:
    """Read `run_{index}/final_info.json`; ValueError (saying what is wrong) for any shape the
    loop cannot read: not an object, `metrics`/`config`/`code` not objects, a headline metric
    that is not a number."""
    path = root / f"run_{index}" / "final_info.json"
    info = json.loads(runfiles.read_text(path, root))  # an experiment may have written it: no links
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


UNTRUSTED = "metrics written by the experiment itself (no trusted evaluator)"
"""How a run whose metrics no trusted evaluator computed is marked in notes, paper and report."""


def evaluated(template: Template, record: RunRecord) -> bool:
    """Whether the template's trusted evaluator wrote this run's metrics (the loop records an
    evaluated template's run only once its provenance verifies). Never for a template without
    an evaluator, whatever its experiment wrote into final_info.json."""
    prov = record.raw.get("provenance")
    return bool(template.evaluator) and isinstance(prov, dict) and prov.get("evaluator") == template.evaluator


def finished_runs(root: Path, template: Template) -> list[RunRecord]:
    """Every `run_i/` holding a final_info.json, in run order."""
    indices = sorted(int(m.group(1)) for p in root.iterdir()
                     if (m := RUN_DIR_RE.match(p.name)) and (p / "final_info.json").is_file())
    return [load_run(root, i, template) for i in indices]


def plus_minus(run: RunRecord, name: str, fmt: str) -> str:
    """` ± 0.004` (half-width of the 95% interval of the mean), or nothing without one; a
    half-width the metric's format would print as 0 gets one significant digit."""
    ci = run.interval(name)
    if ci is None:
        return ""
    half = abs(ci[1] - ci[0]) / 2
    text = _fmt(half, fmt)
    return " ± " + (text if any(c in "123456789" for c in text) or half == 0 else format(half, ".1g"))


def _fmt(value: float, fmt: str) -> str:
    try:
        return format(value, fmt)
    except ValueError:  # an integer spec ("d") applied to a float
        return format(value, ".4g")


def results_table(template: Template, runs: list[RunRecord]) -> str:
    """Headline metrics per run (mean ± half-width of its 95% interval over the seeds), each
    run's difference from the baseline with its Welch interval and the verdict decided by
    code, what the seeds say (failed seeds, no interval), then the failing gates."""
    heads = template.headline
    header = "| run | " + " | ".join(f"{m.label} ({'↑' if m.direction == 'higher' else '↓'})" for m in heads) + " |"
    lines = [header, "|" + "---|" * (len(heads) + 1)]
    for r in runs:
        cells = []
        for m in heads:
            v = r.metrics.get(m.name)
            cells.append(m.fmt(v) + plus_minus(r, m.name, m.format)
                         if isinstance(v, (int, float)) else "n/a")
        lines.append(f"| {r.label} | " + " | ".join(cells) + " |")
    n = sorted({r.seed_count for r in runs})
    lines += ["", "Values are means over each run's seeds ± the half-width of the 95% interval of "
              f"the mean ({'/'.join(map(str, n))} {'seed' if n == [1] else 'seeds'} per run)."]
    compared = comparison_lines(template, runs)
    if compared:
        lines += ["", "Each run against the baseline (run − baseline, 95% Welch interval; verdicts "
                  "are computed from the seeds, not judged):", *compared]
    seeds = seed_lines(runs)
    if seeds:
        lines += ["", "Seeds:", *seeds]
    problems = gate_lines(runs)
    if problems:
        lines += ["", "Plausibility gates that fail (a run failing a 'fail' gate is not a valid result):"]
        lines += problems
    return "\n".join(lines)


def comparison_lines(template: Template, runs: list[RunRecord]) -> list[str]:
    """`- run 2: Explained variance -0.029 [95% CI -0.036, -0.022]: worse; L0 ...` per run."""
    from agent.stats import compare_runs

    base = next((r for r in runs if r.index == 0), None)
    if base is None:
        return []
    out = []
    for r in runs:
        if r.index == 0:
            continue
        parts = []
        for m in template.headline:
            found = compare_runs(r.raw, base.raw, m.name, m.direction, r.name, base.name)
            if found is not None:
                parts.append(f"{m.label} {found.describe(m.format if not m.format.endswith('d') else '.4g')}")
        if parts:
            out.append(f"- {r.label}: " + "; ".join(parts))
    return out


def seed_lines(runs: list[RunRecord]) -> list[str]:
    """Failed seeds, and runs without an interval (one seed left, or seeds that were not
    independent), in words."""
    out = []
    for r in runs:
        seeds = r.raw.get("seeds")
        if not isinstance(seeds, dict):
            continue
        problems = [f"seed {f.get('seed')} failed: {str(f.get('reason', ''))[:160]}"
                    for f in seeds.get("failed", []) if isinstance(f, dict)]
        if seeds.get("independent") is False or int(seeds.get("n", 0)) < 2:
            problems.append(f"no interval: {seeds.get('note', 'fewer than 2 seeds')}")
        if problems:
            out.append(f"- {r.label} ({seeds.get('n')} of {len(seeds.get('requested', []))} "
                       "seeds): " + "; ".join(problems))
    return out


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
