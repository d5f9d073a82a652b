"""`latex/results.tex`: every number the paper may cite, as a macro, plus the results table.

The LLM never types a result: it writes `\\RunTwoExplainedVariance` and LaTeX prints the value
computed by the harness. Naming: `\\Baseline<Metric>` for run_0, `\\Run<Index><Metric>` for
run_i (index spelled in words, `\\RunTwelveLZero`), `...Delta` (signed difference to the
baseline) and `...DeltaPct` (relative change, percent) for headline metrics, `\\NumRuns`
(runs besides the baseline), `\\ResultsTable` (a float) and `\\ResultsTabular` (its tabular).
Setup facts come from the records too, never from prose: `\\SetupModel`, `\\SetupLayer`,
`\\SetupDataset`, token counts, sizes, seeds, the preset (the baseline's value, marked where
the runs differ),
and `\\GateSummary`, a sentence saying which runs pass or fail which plausibility gate.
Macro names are letters only, so LaTeX accepts them; digits in metric names become words.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from agent.paper.spec import MetricSpec, as_specs

MacroKind = Literal["value", "delta", "delta_pct", "count", "setup", "gates"]
RESULTS_FILE = "results.tex"
RUN_NAME = re.compile(r"^run_(\d+)$")

_ONES = ("Zero One Two Three Four Five Six Seven Eight Nine Ten Eleven Twelve Thirteen "
         "Fourteen Fifteen Sixteen Seventeen Eighteen Nineteen").split()
_TENS = "_ _ Twenty Thirty Forty Fifty Sixty Seventy Eighty Ninety".split()


@dataclass(frozen=True)
class Macro:
    """One macro of results.tex."""

    name: str
    """The control sequence without the backslash, e.g. `RunOneMse`."""
    value: str
    """What it prints (LaTeX), e.g. `0.912` or `+1.3\\%`."""
    run: str
    """The run it belongs to (`run_0` is the baseline); empty for paper-wide macros."""
    metric: str
    """The metric key; empty for paper-wide macros."""
    kind: MacroKind
    """A value, a difference to the baseline, a relative change, or a count."""
    number: float | None
    """The unrounded number behind it."""

    def line(self) -> str:
        """One line for prompts: `\\RunOneMse = 1.578  (run_1, MSE)`."""
        where = f"  ({self.run}, {self.metric}, {self.kind})" if self.run else ""
        return f"\\{self.name} = {self.value}{where}"


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

    def listing(self) -> str:
        """All macros, one per line, for the writeup prompts."""
        return "\n".join(m.line() for m in self.macros)

    def names(self) -> frozenset[str]:
        return frozenset({m.name for m in self.macros} | {self.table_macro, "ResultsTabular"})


def number_word(n: int) -> str:
    """0..999 in CamelCase words: 21 -> `TwentyOne`, 305 -> `ThreeHundredFive`."""
    if not 0 <= n <= 999:
        raise ValueError(f"run index {n} out of range for macro names")
    if n < 20:
        return _ONES[n]
    if n < 100:
        return _TENS[n // 10] + (_ONES[n % 10] if n % 10 else "")
    rest = n % 100
    return _ONES[n // 100] + "Hundred" + (number_word(rest) if rest else "")


def metric_word(name: str) -> str:
    """`explained_variance` -> `ExplainedVariance`, `l0` -> `LZero`, `top10_acc` -> `TopTenAcc`."""
    parts = re.findall(r"[A-Za-z]+|\d+", name)
    word = "".join(number_word(int(p)) if p.isdigit() else p[0].upper() + p[1:] for p in parts)
    if not word:
        raise ValueError(f"metric name {name!r} has no letters or digits")
    return word


def run_prefix(run: str) -> str:
    """`run_0` -> `Baseline`, `run_3` -> `RunThree`."""
    index = int(RUN_NAME.match(run).group(1))  # type: ignore[union-attr]
    return "Baseline" if index == 0 else "Run" + number_word(index)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def _signed(value: float, spec: MetricSpec) -> str:
    """A difference with its sign; a difference of percentages is in percentage points."""
    if spec.format.endswith("%"):
        digits = re.search(r"\.(\d+)", spec.format)
        body = format(abs(value) * 100, f".{digits.group(1) if digits else 1}f") + " pp"
    else:
        body = spec.fmt(abs(value))
    if not re.search(r"[1-9]", body):
        return body
    return ("+" if value > 0 else "$-$") + body


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
    extra = dict.fromkeys(k for m in all_metrics for k, v in m.items() if k not in declared and _number(v) is not None)
    return specs + tuple(MetricSpec(k, k.replace("_", " ")) for k in extra)


def build_macros(final_infos: Mapping[str, Mapping[str, Any]], metrics: Sequence[Any]) -> tuple[list[Macro], list[str]]:
    """The number macros for every run and metric, and the runs that were skipped."""
    runs, skipped = _sorted_runs(final_infos)
    specs = _with_undeclared(as_specs(metrics), [final_infos[r]["metrics"] for r in runs])
    words = [metric_word(s.name) for s in specs]
    base = final_infos.get("run_0", {}).get("metrics", {}) if "run_0" in runs else {}
    macros = [Macro("NumRuns", str(sum(r != "run_0" for r in runs)), "", "", "count",
                    float(sum(r != "run_0" for r in runs)))]
    macros += setup_macros([final_infos[r] for r in runs], runs)
    for run in runs:
        values = final_infos[run]["metrics"]
        for spec, word in zip(specs, words, strict=True):
            value = _number(values.get(spec.name))
            if value is None:
                continue
            name = run_prefix(run) + word
            macros.append(Macro(name, spec.fmt(value), run, spec.name, "value", value))
            ref = _number(base.get(spec.name))
            if run == "run_0" or not spec.headline or ref is None:
                continue
            macros.append(Macro(name + "Delta", _signed(value - ref, spec), run, spec.name, "delta", value - ref))
            if ref != 0:
                pct = 100 * (value - ref) / abs(ref)
                pct_spec = MetricSpec(spec.name, spec.label, format=".1f")
                macros.append(Macro(name + "DeltaPct", _signed(pct, pct_spec) + r"\%", run, spec.name, "delta_pct", pct))
    clashes = [n for n, count in Counter(m.name for m in macros).items() if count > 1]
    if clashes:
        raise ValueError(f"metric names collide in macro names: {clashes}; rename a metric in template.toml")
    return macros, skipped


def _dig(info: Mapping[str, Any], path: str) -> Any:
    node: Any = info
    for key in path.split("."):
        if not isinstance(node, Mapping) or key not in node:
            return None
        node = node[key]
    return node


SETUP: tuple[tuple[str, tuple[str, ...], str], ...] = (
    # macro name, where to look in final_info (first found), how to print
    ("SetupModel", ("data.model_label", "config.model"), "text"),
    ("SetupModelName", ("config.model", "data.model"), "tt"),
    ("SetupLayer", ("config.layer", "data.layer"), "int"),
    ("SetupDataset", ("data.dataset_label", "config.dataset"), "text"),
    ("SetupPreset", ("preset", "config.preset"), "tt"),
    ("SetupContextLen", ("config.context_len", "data.context_len"), "int"),
    ("SetupDIn", ("config.d_in",), "int"),
    ("SetupDSae", ("config.d_sae",), "int"),
    ("SetupTrainTokens", ("config.tokens",), "int"),
    ("SetupEvalTokens", ("evaluation.reconstruction_tokens", "data.eval_tokens"), "int"),
    ("SetupCePositions", ("evaluation.ce_kl_positions",), "int"),
    ("SetupBatchSize", ("config.batch_size",), "int"),
    ("SetupSteps", ("config.total_steps",), "int"),
)
"""Setup facts a paper states: one macro each where every run records the same value."""


def _setup_value(value: Any, how: str) -> tuple[str, float | None] | None:
    from pylatex.utils import escape_latex

    if how == "int":
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value):
            return None
        return f"{int(value):,}".replace(",", "{,}"), float(value)
    if not isinstance(value, str) or not value:
        return None
    text = escape_latex(value)
    return (f"\\texttt{{{text}}}" if how == "tt" else text), None


def _run_words(runs: Sequence[str]) -> str:
    names = ["the baseline" if r == "run_0" else f"run {r.split('_')[1]}" for r in runs]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def gate_summary(infos: Sequence[Mapping[str, Any]], runs: Sequence[str]) -> str:
    """One or two sentences: which runs pass every plausibility gate, and for each gate that
    fails or warns, which runs (gate names as the template declares them)."""
    from pylatex.utils import escape_latex

    failing: dict[str, list[str]] = {}
    warning: dict[str, list[str]] = {}
    for run, info in zip(runs, infos, strict=True):
        for g in info.get("gates", []):
            if isinstance(g, Mapping) and g.get("passed") is False:
                bucket = failing if g.get("severity", "fail") == "fail" else warning
                bucket.setdefault(str(g.get("name")), []).append(run)
    n = len(runs)

    def who(names: list[str]) -> str:
        return ("every run" if n > 1 else "the run") if len(names) == n else _run_words(names)

    failed_runs = {r for names in failing.values() for r in names}
    if not failing:
        every = {1: "The run passes", 2: "Both runs (the baseline included) pass"}.get(
            n, f"All {number_word(n).lower()} runs (the baseline included) pass")
        text = every + " every plausibility gate of the template."
    else:
        text = "Plausibility gates: " + "; ".join(
            f"{who(names)} fail{'s' if len(names) == 1 or len(names) == n else ''} {gate}"
            for gate, names in failing.items()) + "."
        passing = [r for r in runs if r not in failed_runs]
        if passing:
            text += f" {_run_words(passing).capitalize()} pass{'es' if len(passing) == 1 else ''} every gate."
    if warning:
        text += " Warnings: " + "; ".join(f"{who(names)} trigger{'s' if len(names) == 1 or len(names) == n else ''} {gate}"
                                          for gate, names in warning.items()) + "."
    return escape_latex(text)


def setup_macros(infos: Sequence[Mapping[str, Any]], runs: Sequence[str]) -> list[Macro]:
    """`\\Setup...` macros for the facts every run shares, `\\SetupSeeds`, `\\GateSummary`."""
    out = []
    for name, paths, how in SETUP:
        found = [next((v for p in paths if (v := _dig(info, p)) is not None), None) for info in infos]
        shown = _setup_value(found[0], how) if found else None
        if shown is None:
            continue
        if len({repr(v) for v in found}) > 1:  # still defined, so a paper citing it compiles
            out.append(Macro(name, f"{shown[0]} (baseline; runs differ)", "", "", "setup", None))
        else:
            out.append(Macro(name, shown[0], "", "", "setup", shown[1]))
    seeds = sorted({int(s) for info in infos if isinstance(s := _dig(info, "config.seed"), int)})
    if seeds:
        out.append(Macro("SetupSeeds", ", ".join(map(str, seeds)), "", "", "setup",
                         float(seeds[0]) if len(seeds) == 1 else None))
        out.append(Macro("SetupNumSeeds", str(len(seeds)), "", "", "setup", float(len(seeds))))
    if any(info.get("gates") for info in infos):
        out.append(Macro("GateSummary", gate_summary(infos, runs), "", "", "gates", None))
    return out


def _fails_gate(info: Mapping[str, Any]) -> bool:
    return any(g.get("passed") is False and g.get("severity", "fail") == "fail"
               for g in info.get("gates", []) if isinstance(g, Mapping))


def build_tabular(final_infos: Mapping[str, Mapping[str, Any]], metrics: Sequence[Any],
                  descriptions: Mapping[str, str] | None = None) -> tuple[str, bool]:
    """The booktabs tabular (pylatex) and whether any row is marked as failing a gate."""
    from pylatex import NoEscape, Tabular
    from pylatex.utils import bold, escape_latex

    specs = [s for s in as_specs(metrics) if s.headline] or list(as_specs(metrics))
    runs, _ = _sorted_runs(final_infos)
    descriptions = descriptions or {}
    with_text = any(descriptions.get(r) for r in runs)
    table = Tabular("l" + (r"p{0.34\linewidth}" if with_text else "") + "r" * len(specs), booktabs=True)
    arrows = {"higher": r"$\uparrow$", "lower": r"$\downarrow$"}
    table.add_row(["Run", *(["Change"] if with_text else []),
                   *(NoEscape(f"{escape_latex(s.label)} {arrows[s.direction]}") for s in specs)])
    table.add_hline()
    best: dict[str, str] = {}
    for spec in specs:
        values = [v for r in runs if (v := _number(final_infos[r]["metrics"].get(spec.name))) is not None]
        if values:
            best[spec.name] = spec.fmt(max(values) if spec.direction == "higher" else min(values))
    any_failed = False
    for run in runs:
        info = final_infos[run]
        label = "Baseline" if run == "run_0" else f"Run {run.split('_')[1]}"
        if _fails_gate(info):
            label, any_failed = label + r"$^\dagger$", True
        row: list[Any] = [NoEscape(label)]
        if with_text:
            default = "unmodified template" if run == "run_0" else ""
            row.append(escape_latex(descriptions.get(run, default)))
        for spec in specs:
            value = _number(info["metrics"].get(spec.name))
            text = "--" if value is None else spec.fmt(value)
            row.append(bold(NoEscape(text)) if value is not None and text == best.get(spec.name) else NoEscape(text))
        table.add_row(row)
    return table.dumps(), any_failed


def build_results_tex(final_infos: Mapping[str, Mapping[str, Any]], metrics: Sequence[Any],
                      descriptions: Mapping[str, str] | None = None) -> ResultsTex:
    """results.tex for these runs: macros for every metric of every run, deltas, the table."""
    macros, skipped = build_macros(final_infos, metrics)
    tabular, any_failed = build_tabular(final_infos, metrics, descriptions)
    caption = ("Headline metrics of the baseline (unmodified template) and every run. "
               r"$\uparrow$: higher is better; $\downarrow$: lower is better. Best value in bold.")
    if any_failed:
        caption += r" $^\dagger$: the run fails a plausibility gate."
    lines = ["% Generated from the runs' final_info.json files by agent.paper.results_tex.",
             "% Do not edit: it is rewritten whenever results change. Cite numbers through these macros.",
             r"\providecommand{\xspace}{}"]
    lines += [f"\\newcommand{{\\{m.name}}}{{{m.value}\\xspace}}" for m in macros]
    lines += [r"\newcommand{\ResultsTabular}{%", tabular.rstrip("\n%") + "}",
              r"\newcommand{\ResultsTable}{%", r"\begin{table}[t]", r"\centering\small",
              r"\resizebox{\ifdim\width>\linewidth\linewidth\else\width\fi}{!}{\ResultsTabular}",
              f"\\caption{{{caption}}}", r"\label{tab:results}", r"\end{table}}", ""]
    return ResultsTex("\n".join(lines), tuple(macros), "ResultsTable", tuple(skipped))


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
                      descriptions: Mapping[str, str] | None = None) -> ResultsTex:
    """Build results.tex and write it into `latex_dir`."""
    result = build_results_tex(final_infos, metrics, descriptions)
    latex_dir.mkdir(parents=True, exist_ok=True)
    (latex_dir / RESULTS_FILE).write_text(result.text, encoding="utf-8")
    return result
