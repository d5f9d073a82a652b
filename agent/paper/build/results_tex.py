"""`latex/results.tex`: every number the paper may cite, as a macro, plus the results tables.

The LLM never types a result: it writes `\\RunTwoExplainedVariance` and LaTeX prints the value
computed by the harness. Naming: `\\Baseline<Metric>` for run_0, `\\Run<Index><Metric>` for
run_i (index spelled in words, `\\RunTwelveLZero`), the mean over the run's seeds. Where a run
has at least 2 independent seeds: `...Low`, `...High` (the 95% t interval of the mean), `...Sd`
(sample standard deviation), `...PM` (the interval's half-width). For every metric the
template declares, of every run but the baseline: `...Delta` (signed difference of means to the baseline),
`...DeltaPct` (relative change, percent), `...Verdict` (better / worse / no detectable
difference by the 95% Welch interval of the difference, or `no interval (1 seed)`),
`...DeltaCI` (`95\\% CI [$-$0.036, $-$0.022]`) and, with an interval, `...DeltaLow`,
`...DeltaHigh`. Intervals and verdicts are computed here from the per-seed values by
`agent.stats`, and checked against what the record states. `\\NumRuns` (runs besides the
baseline), `\\ResultsTable` (a float) and `\\ResultsTabular` (its tabular); setup facts, seeds
and gates (`agent.paper.build.setup_tex`); the pre-registered hypotheses, their verdicts and
`\\HypothesesTable` (`agent.paper.build.hypotheses_tex`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent import stats
from agent.paper.build import hypotheses_tex
from agent.paper.build.macros import (  # noqa: F401  (re-exported: the names other modules import from here)
    RUN_NAME,
    Macro,
    MacroKind,
    bound,
    finite,
    latex_text,
    metric_word,
    number_word,
    run_prefix,
    signed,
    spread,
)
from agent.paper.build.setup_tex import (  # noqa: F401
    gate_summary,
    run_words,
    seed_count,
    seed_summary,
    setup_macros,
)
from agent.paper.build.spec import MetricSpec, as_specs
from agent.results import UNTRUSTED

RESULTS_FILE = "results.tex"
NO_INTERVAL = "no interval (1 seed)"
MARKS = {"better": "$^{+}$", "worse": "$^{-}$"}
"""Marks of a table cell whose run is detectably better / worse than the baseline."""


@dataclass(frozen=True)
class ResultsTex:
    """The generated file and what it defines."""

    text: str
    """The content of results.tex."""
    macros: tuple[Macro, ...]
    """Every number macro, in file order."""
    table_macro: str
    """The macro that places the results table (a float), without the backslash."""
    skipped: tuple[str, ...]
    """Runs that were left out, each with the reason."""
    comparisons: tuple[str, ...] = ()
    """One line per run and headline metric against the baseline, for the prompts."""
    verdicts: tuple[str, ...] = ()
    """The same verdicts, one line per run, without the numbers the macros hold: for the
    writeup's material, which lists the macros too."""
    hypotheses: tuple[str, ...] = ()
    """One line per hypothesis with its verdict (or why there are none), for the prompts."""
    seed_note: str = ""
    """Plain text: the seeds the results are means over, and which runs have no interval."""
    problems: tuple[str, ...] = ()
    """Where a record's own mean or interval disagrees with its per-seed values (the values win)."""

    def listing(self) -> str:
        """All macros, one per line, for the writeup prompts."""
        return "\n".join(m.line() for m in self.macros)

    def names(self) -> frozenset[str]:
        return frozenset({m.name for m in self.macros} | {self.table_macro, "ResultsTabular", *hypotheses_tex.names()})


def _sorted_runs(final_infos: Mapping[str, Mapping[str, Any]]) -> tuple[list[str], list[str]]:
    runs, skipped = [], []
    for name, info in final_infos.items():
        if not RUN_NAME.match(name):
            skipped.append(f"{name}: not named run_<index>")
        elif not isinstance(info.get("metrics"), Mapping):
            skipped.append(f"{name}: final_info has no metrics")
        else:
            runs.append(name)
    return sorted(runs, key=lambda r: int(r.split("_")[1])), skipped


def _with_undeclared(specs: tuple[MetricSpec, ...], all_metrics: list[Mapping[str, Any]]) -> tuple[MetricSpec, ...]:
    """The declared metrics, then any other number a run reports (printed with `.4g`)."""
    declared = {s.name for s in specs}
    extra = dict.fromkeys(k for m in all_metrics for k, v in m.items() if k not in declared and finite(v) is not None)
    return specs + tuple(MetricSpec(k, k.replace("_", " ")) for k in extra)


def _agrees(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-9 + 1e-6 * max(abs(a), abs(b))


def interval_macros(name: str, run: str, spec: MetricSpec, info: Mapping[str, Any], value: float,
                    problems: list[str]) -> list[Macro]:
    """`...Low`, `...High`, `...Sd`, `...PM` of one run's metric, from its per-seed values
    (`agent.stats.summarize`), where it has at least 2 independent seeds. A recorded mean or
    `seeds.ci95` that disagrees with the values is reported in `problems`."""
    values = stats.seed_values(info, spec.name)
    if len(values) < 2:
        return []
    s = stats.summarize(values)
    assert s.ci is not None
    if not _agrees(s.mean, value):
        problems.append(f"{run} {spec.name}: metrics holds {value:.6g}, the mean of its seeds is {s.mean:.6g}")
    recorded = info.get("seeds", {}).get("ci95", {}).get(spec.name) if isinstance(info.get("seeds"), Mapping) else None
    if isinstance(recorded, list) and len(recorded) == 2 and not all(
            (r := finite(x)) is not None and _agrees(r, c) for x, c in zip(recorded, s.ci, strict=True)):
        problems.append(f"{run} {spec.name}: seeds.ci95 is {recorded}, the t interval of its seeds is "
                        f"[{s.ci[0]:.6g}, {s.ci[1]:.6g}]")
    half = (s.ci[1] - s.ci[0]) / 2
    return [Macro(name + "Low", bound(s.ci[0], spec, difference=False), run, spec.name, "ci_low", s.ci[0]),
            Macro(name + "High", bound(s.ci[1], spec, difference=False), run, spec.name, "ci_high", s.ci[1]),
            Macro(name + "Sd", spread(s.sd, spec), run, spec.name, "sd", s.sd),
            Macro(name + "PM", spread(half, spec), run, spec.name, "ci_half", half)]


def comparison_macros(name: str, found: stats.RunComparison, spec: MetricSpec) -> list[Macro]:
    """`...Verdict`, `...DeltaCI` and, with an interval, `...DeltaLow`, `...DeltaHigh`."""
    c, run, against = found.comparison, found.run, found.against
    out = [Macro(name + "Verdict", c.verdict or NO_INTERVAL, run, spec.name, "verdict", None, against)]
    if c.ci is None:
        return [*out, Macro(name + "DeltaCI", NO_INTERVAL, run, spec.name, "delta_ci", None, against)]
    lo, hi = (bound(v, spec, difference=True) for v in c.ci)
    return [Macro(name + "DeltaLow", lo, run, spec.name, "delta_low", c.ci[0], against),
            Macro(name + "DeltaHigh", hi, run, spec.name, "delta_high", c.ci[1], against),
            *out, Macro(name + "DeltaCI", f"{round(stats.LEVEL * 100)}\\% CI [{lo}, {hi}]", run, spec.name,
                        "delta_ci", None, against)]


def build_macros(final_infos: Mapping[str, Mapping[str, Any]], metrics: Sequence[Any],
                 problems: list[str] | None = None, setup: Sequence[Any] = ()) -> tuple[list[Macro], list[str]]:
    """The number macros for every run and metric, and the runs that were skipped; records that
    disagree with their own per-seed values are described in `problems`."""
    problems = [] if problems is None else problems
    runs, skipped = _sorted_runs(final_infos)
    declared = {s.name for s in as_specs(metrics)}
    specs = _with_undeclared(as_specs(metrics), [final_infos[r]["metrics"] for r in runs])
    words = [metric_word(s.name) for s in specs]
    base_info = final_infos.get("run_0", {}) if "run_0" in runs else {}
    base = base_info.get("metrics", {})
    macros = [Macro("NumRuns", str(sum(r != "run_0" for r in runs)), "", "", "count",
                    float(sum(r != "run_0" for r in runs)))]
    macros += setup_macros([final_infos[r] for r in runs], runs, setup)
    for run in runs:
        info = final_infos[run]
        for spec, word in zip(specs, words, strict=True):
            value = finite(info["metrics"].get(spec.name))
            if value is None:
                continue
            name = run_prefix(run) + word
            macros.append(Macro(name, spec.fmt(value), run, spec.name, "value", value))
            macros += interval_macros(name, run, spec, info, value, problems)
            ref = finite(base.get(spec.name))
            if run == "run_0" or spec.name not in declared or ref is None:
                continue
            macros.append(Macro(name + "Delta", signed(value - ref, spec), run, spec.name, "delta", value - ref, "run_0"))
            if ref != 0:
                pct = 100 * (value - ref) / abs(ref)
                pct_spec = MetricSpec(spec.name, spec.label, format=".1f")
                macros.append(Macro(name + "DeltaPct", signed(pct, pct_spec) + r"\%", run, spec.name, "delta_pct",
                                    pct, "run_0"))
            found = stats.compare_runs(info, base_info, spec.name, spec.direction, run, "run_0")
            if found is not None:
                macros += comparison_macros(name, found, spec)
    clashes = [n for n, count in Counter(m.name for m in macros).items() if count > 1]
    if clashes:
        raise ValueError(f"metric names collide in macro names: {clashes}; rename a metric in template.toml")
    return macros, skipped


def _fails_gate(info: Mapping[str, Any]) -> bool:
    return any(g.get("passed") is False and g.get("severity", "fail") == "fail"
               for g in info.get("gates", []) if isinstance(g, Mapping))


def _cell(info: Mapping[str, Any], base_info: Mapping[str, Any] | None, spec: MetricSpec,
          run: str) -> tuple[str, stats.Verdict | None]:
    """`$0.433 \\pm 0.004$` (mean and half-width of the 95% interval) with a verdict mark, or the
    plain value of a single seed, or `--`."""
    value = finite(info["metrics"].get(spec.name))
    if value is None:
        return "--", None
    values = stats.seed_values(info, spec.name)
    if len(values) < 2:
        return f"${spec.fmt(value)}$", None
    ci = stats.summarize(values).ci
    assert ci is not None
    text = f"${spec.fmt(value)} \\pm {spread((ci[1] - ci[0]) / 2, spec)}$"
    found = stats.compare_runs(info, base_info, spec.name, spec.direction, run) if base_info and run != "run_0" else None
    verdict = found.verdict if found is not None and spec.headline else None
    mark = MARKS.get(verdict or "")
    return text + (f"\\rlap{{{mark}}}" if mark else ""), verdict


def build_tabular(final_infos: Mapping[str, Mapping[str, Any]], metrics: Sequence[Any],
                  descriptions: Mapping[str, str] | None = None) -> tuple[str, bool, frozenset[str]]:
    """The booktabs tabular (pylatex), whether any row is marked as failing a gate, and the
    verdicts marked in it.

    No value is set in bold as "best": under seed noise the largest mean of a column is not a
    finding, and no test compares the runs with each other. What the statistics decided is
    marked instead: a run's cell is marked better or worse only where the Welch interval of its
    difference to the baseline excludes 0 (`agent.stats.compare_runs`)."""
    from pylatex import NoEscape, Tabular
    from pylatex.utils import escape_latex

    specs = [s for s in as_specs(metrics) if s.headline] or list(as_specs(metrics))
    runs, _ = _sorted_runs(final_infos)
    base_info = final_infos.get("run_0") if "run_0" in runs else None
    descriptions = descriptions or {}
    with_text = any(descriptions.get(r) for r in runs)
    table = Tabular("l" + (r"p{0.34\linewidth}" if with_text else "") + "r" * len(specs), booktabs=True)
    arrows = {"higher": r"$\uparrow$", "lower": r"$\downarrow$"}
    table.add_row(["Run", *(["Change"] if with_text else []),
                   *(NoEscape(f"{escape_latex(s.label)} {arrows[s.direction]}") for s in specs)])
    table.add_hline()
    any_failed, marks = False, set()
    for run in runs:
        info = final_infos[run]
        label = "Baseline" if run == "run_0" else f"Run {run.split('_')[1]}"
        if _fails_gate(info):
            label, any_failed = label + r"$^\dagger$", True
        row: list[Any] = [NoEscape(label)]
        if with_text:
            default = "unmodified template" if run == "run_0" else ""
            row.append(NoEscape(latex_text(descriptions.get(run, default))))
        for spec in specs:
            text, verdict = _cell(info, base_info, spec, run)
            marks |= {verdict} if verdict in ("better", "worse") else set()
            row.append(NoEscape(text))
        table.add_row(row)
    return table.dumps(), any_failed, frozenset(marks)


def _seeds_phrase(final_infos: Mapping[str, Mapping[str, Any]], runs: list[str]) -> tuple[str, bool]:
    """How many seeds the table's values are over, and whether any run has an interval."""
    counts = {r: seed_count(final_infos[r]) for r in runs}
    if not counts or max(counts.values()) < 2:
        return ("Values from a single seed per run: there are no intervals, and no run is marked "
                "better or worse than the baseline."), False
    # The count most runs with an interval have (ties: the larger); the others are listed.
    usual = max(Counter(n for n in counts.values() if n >= 2).items(), key=lambda kv: (kv[1], kv[0]))[0]
    others = [f"{'the baseline' if r == 'run_0' else 'run ' + r.split('_')[1]}: {n} seed{'s' if n != 1 else ''}"
              for r, n in counts.items() if n != usual]
    text = (f"Mean $\\pm$ half-width of the {round(stats.LEVEL * 100)}\\% confidence interval of the mean "
            f"(Student's $t$) over {usual} seed{'s' if usual != 1 else ''} per run"
            + (f" ({'; '.join(others)})" if others else "") + ".")
    if min(counts.values()) < 2:
        text += " A value without $\\pm$ comes from a single seed (or seeds that produced identical weights)."
    return text, True


def table_caption(final_infos: Mapping[str, Mapping[str, Any]], metrics: Sequence[Any], any_failed: bool,
                  marks: frozenset[str], untrusted: bool = False) -> str:
    """What the results table shows: seeds, what $\\pm$ means, the verdict marks, the gates, and
    (`untrusted`) that no trusted evaluator computed the metrics."""
    runs, _ = _sorted_runs(final_infos)
    seeds, intervals = _seeds_phrase(final_infos, runs)
    caption = f"Headline metrics of the baseline (unmodified template) and every run. {seeds}"
    level = f"{round(stats.LEVEL * 100)}\\%"
    shown = " / ".join(f"{MARKS[v]} {v}" for v in ("better", "worse") if v in marks)
    tested = any(c.comparison.ci is not None for c in stats.comparisons({r: final_infos[r] for r in runs},
                                                                       as_specs(metrics)))
    if shown:
        caption += (f" {shown} than the baseline: the {level} Welch interval of the difference excludes 0. "
                    "Unmarked: no detectable difference, or no interval.")
    elif tested:
        caption += (f" No run is detectably better or worse than the baseline: every {level} Welch interval "
                    "of a difference contains 0.")
    elif intervals:
        caption += " No difference to the baseline has an interval (one side has a single seed)."
    caption += r" $\uparrow$: higher is better; $\downarrow$: lower is better."
    if any_failed:
        caption += r" $^\dagger$: the run fails a plausibility gate."
    if untrusted:
        caption += f" Untrusted: {UNTRUSTED}."
    return caption


def comparison_lines(final_infos: Mapping[str, Mapping[str, Any]], metrics: Sequence[Any]) -> list[str]:
    """Every run against the baseline on every headline metric, decided by `agent.stats`, one
    line each with the macros that print it: for the prompts."""
    specs = {s.name: s for s in as_specs(metrics)}
    runs, _ = _sorted_runs(final_infos)
    lines = []
    for c in stats.comparisons({r: final_infos[r] for r in runs}, list(specs.values())):
        name = run_prefix(c.run) + metric_word(c.metric)
        lines.append(f"{c.run} vs {c.against}, {specs[c.metric].label}: {c.describe()} "
                     f"(n = {c.n_run} vs {c.n_against}; \\{name}Delta, \\{name}DeltaCI, \\{name}Verdict)")
    return lines


def verdict_lines(final_infos: Mapping[str, Mapping[str, Any]], metrics: Sequence[Any]) -> list[str]:
    """Every run against the baseline, one line per run with the verdict on each headline metric
    (`comparison_lines` without the numbers, which the run's `...Delta`, `...DeltaCI` and
    `...Verdict` macros hold)."""
    specs = {s.name: s for s in as_specs(metrics)}
    runs, _ = _sorted_runs(final_infos)
    by_run: dict[tuple[str, str], list[stats.RunComparison]] = {}
    for c in stats.comparisons({r: final_infos[r] for r in runs}, list(specs.values())):
        by_run.setdefault((c.run, c.against), []).append(c)
    lines = []
    for (run, against), found in by_run.items():
        sizes = {(c.n_run, c.n_against) for c in found}
        each = len(sizes) > 1  # seeds differ between metrics: say so per metric
        verdicts = "; ".join(f"{specs[c.metric].label} {c.verdict or NO_INTERVAL}"
                             + (f" (n = {c.n_run} vs {c.n_against})" if each else "") for c in found)
        n = "" if each else f"n = {found[0].n_run} vs {found[0].n_against}; "
        lines.append(f"{run} vs {against} ({n}macros \\{run_prefix(run)}<Metric>Delta, ...DeltaCI, ...Verdict): "
                     f"{verdicts}")
    return lines


def build_results_tex(final_infos: Mapping[str, Mapping[str, Any]], metrics: Sequence[Any],
                      descriptions: Mapping[str, str] | None = None,
                      hypotheses: Mapping[str, Any] | None = None, setup: Sequence[Any] = (), *,
                      untrusted: bool = False) -> ResultsTex:
    """results.tex for these runs: macros for every metric of every run, intervals, deltas and
    verdicts, the setup facts (the preset and the template's `setup`), the results table, and
    (given `hypotheses_verdicts.json`'s document) the hypotheses' macros and table; without one,
    `\\HypothesesTable` says none were registered. `untrusted`: the template has no trusted
    evaluator, which the table's caption says."""
    problems: list[str] = []
    macros, skipped = build_macros(final_infos, metrics, problems, setup)
    specs = {s.name: s for s in as_specs(metrics)}
    macros += hypotheses_tex.hypothesis_macros(hypotheses, specs)
    tabular, any_failed, marks = build_tabular(final_infos, metrics, descriptions)
    runs, _ = _sorted_runs(final_infos)
    lines = ["% Generated from the runs' final_info.json files by agent.paper.build.results_tex.",
             "% Do not edit: it is rewritten whenever results change. Cite numbers through these macros.",
             r"\providecommand{\xspace}{}"]
    lines += [f"\\newcommand{{\\{m.name}}}{{{m.value}\\xspace}}" for m in macros]
    lines += [r"\newcommand{\ResultsTabular}{%", tabular.rstrip("\n%") + "}",
              r"\newcommand{\ResultsTable}{%", r"\begin{table}[t]", r"\centering\small",
              r"\resizebox{\ifdim\width>\linewidth\linewidth\else\width\fi}{!}{\ResultsTabular}",
              f"\\caption{{{table_caption(final_infos, metrics, any_failed, marks, untrusted)}}}", r"\label{tab:results}",
              r"\end{table}}"]
    lines += [*hypotheses_tex.hypotheses_table_lines(hypotheses, specs), ""]
    seed_note = seed_summary([final_infos[r] for r in runs], runs) if runs else ""
    return ResultsTex("\n".join(lines), tuple(macros), "ResultsTable", tuple(skipped),
                      comparisons=tuple(comparison_lines(final_infos, metrics)),
                      verdicts=tuple(verdict_lines(final_infos, metrics)),
                      hypotheses=tuple(hypotheses_tex.prompt_lines(hypotheses, specs)),
                      seed_note=seed_note, problems=tuple(problems))


def load_final_infos(run_dir: Path) -> dict[str, dict[str, Any]]:
    """`run_*/final_info.json` of a run directory, by run name (unreadable files are left out)."""
    import json

    infos: dict[str, dict[str, Any]] = {}
    for path in sorted(run_dir.glob("run_*/final_info.json")):
        try:
            infos[path.parent.name] = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
    return infos


def write_results_tex(latex_dir: Path, final_infos: Mapping[str, Mapping[str, Any]], metrics: Sequence[Any],
                      descriptions: Mapping[str, str] | None = None,
                      hypotheses: Mapping[str, Any] | None = None, setup: Sequence[Any] = (), *,
                      untrusted: bool = False) -> ResultsTex:
    """Build results.tex and write it into `latex_dir`."""
    result = build_results_tex(final_infos, metrics, descriptions, hypotheses, setup, untrusted=untrusted)
    latex_dir.mkdir(parents=True, exist_ok=True)
    (latex_dir / RESULTS_FILE).write_text(result.text, encoding="utf-8")
    return result
