"""The pre-registered hypotheses in results.tex: macros per hypothesis and the `\\HypothesesTable`.

Input: `hypotheses_verdicts.json` as written by code after the last run (`{"level", "verdicts":
[{"id", "statement", "metric", "run", "against", "expected", "smallest_effect",
"amended_after_run", "added_after_results", "verdict", "diff", "ci", "n_run", "n_against",
"why"}]}`), optionally with `problem` (why no valid hypotheses were registered, from
hypotheses.json) and `registered` (`{"before_run": 1, ...}`, from hypotheses.json).

Macros, hypothesis i in the document's order spelled in words: `\\HypothesisOneId` (`H1`),
`\\HypothesisOneStatement`, `\\HypothesisOneVerdict` (supported / refuted / inconclusive),
`\\HypothesisOneDiff` (run minus compared run), `\\HypothesisOneLow`, `\\HypothesisOneHigh` (its
95% Welch interval, where there is one), `\\HypothesisOneCI` (`95\\% CI [...]`, or `no interval (1
seed)`: Diff and CI are always defined); `\\NumHypotheses` and how many are
supported, refuted, inconclusive (of the registered hypotheses, each judged as registered: an
amendment made after results were seen is shown under its hypothesis, post hoc, and counts
nowhere; a hypothesis added after the results is marked and not counted). `\\HypothesesTable` (a
float) and `\\HypothesesTabular` always exist: with no hypotheses they print a sentence saying none
were pre-registered, and why.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from agent.paper.build.macros import Macro, bound, finite, latex_text, number_word, signed
from agent.paper.build.spec import MetricSpec
from agent.stats import LEVEL

TABLE = "HypothesesTable"
TABULAR = "HypothesesTabular"
STATEMENT_CHARS = 140
AMENDED, ADDED = r"$^{\ast}$", r"$^{\dagger}$"
VERDICTS = ("supported", "refuted", "inconclusive")


def entries(doc: Mapping[str, Any] | None) -> list[Mapping[str, Any]]:
    """The verdict records of the document (malformed entries left out)."""
    found = doc.get("verdicts") if isinstance(doc, Mapping) else None
    return [v for v in found if isinstance(v, Mapping) and v.get("id")] if isinstance(found, list) else []


def _spec(metric: str, specs: Mapping[str, MetricSpec]) -> MetricSpec:
    return specs.get(metric) or MetricSpec(metric, metric.replace("_", " "))


def _run(index: Any) -> str:
    return f"run_{index}" if isinstance(index, int) and not isinstance(index, bool) else ""


def _ci(entry: Mapping[str, Any]) -> tuple[float, float] | None:
    ci = entry.get("ci")
    if isinstance(ci, (list, tuple)) and len(ci) == 2:
        lo, hi = finite(ci[0]), finite(ci[1])
        if lo is not None and hi is not None:
            return lo, hi
    return None


def _ci_phrase(ci: tuple[float, float], spec: MetricSpec) -> str:
    lo, hi = (bound(v, spec, difference=True) for v in ci)
    return f"{round(LEVEL * 100)}\\% CI [{lo}, {hi}]"


def hypothesis_macros(doc: Mapping[str, Any] | None, specs: Mapping[str, MetricSpec]) -> list[Macro]:
    """`\\NumHypotheses...` and the macros of every hypothesis (see the module docstring)."""
    found = entries(doc)
    registered = [e for e in found if not e.get("added_after_results")]  # the counts: as registered
    out = [Macro("NumHypotheses", str(len(registered)), "", "", "count", float(len(registered)))]
    for verdict in VERDICTS:
        count = sum(e.get("verdict") == verdict for e in registered)
        out.append(Macro(f"NumHypotheses{verdict.capitalize()}", str(count), "", "", "count", float(count)))
    for i, entry in enumerate(found, start=1):
        name, metric = "Hypothesis" + number_word(i), str(entry.get("metric", ""))
        run, against, spec = _run(entry.get("run")), _run(entry.get("against")), _spec(metric, specs)

        def macro(suffix: str, value: str, kind: Any, number: float | None = None,
                  _name: str = name, _run: str = run, _metric: str = metric, _against: str = against) -> Macro:
            return Macro(_name + suffix, value, _run, _metric, kind, number, _against)

        out.append(macro("Id", latex_text(str(entry["id"])), "hypothesis"))
        if entry.get("statement"):
            out.append(macro("Statement", latex_text(str(entry["statement"])), "hypothesis"))
        out.append(macro("Verdict", latex_text(str(entry.get("verdict", "inconclusive"))), "hypothesis_verdict"))
        diff = finite(entry.get("diff"))
        # Diff and CI are always defined, so a paper citing them compiles whatever the seeds gave
        out.append(macro("Diff", signed(diff, spec) if diff is not None else "n/a", "hypothesis_diff", diff))
        ci = _ci(entry)
        if ci is not None:
            out.append(macro("Low", bound(ci[0], spec, difference=True), "hypothesis_low", ci[0]))
            out.append(macro("High", bound(ci[1], spec, difference=True), "hypothesis_high", ci[1]))
            out.append(macro("CI", _ci_phrase(ci, spec), "hypothesis_ci"))
        else:
            out.append(macro("CI", _no_interval(entry), "hypothesis_ci"))
    return out


def _no_interval(entry: Mapping[str, Any]) -> str:
    """What `\\HypothesisOneCI` says without an interval: `no interval (1 seed)`, or why not."""
    if entry.get("diff") is None:
        return "no interval (no result)"
    n = [v for v in (entry.get("n_run"), entry.get("n_against")) if isinstance(v, int)]
    return f"no interval ({min(n)} seed)" if n and min(n) < 2 else "no interval"


def _short(statement: str) -> str:
    text = " ".join(statement.split())
    if len(text) <= STATEMENT_CHARS:
        return latex_text(text)
    return latex_text(text[:STATEMENT_CHARS].rsplit(" ", 1)[0].rstrip(",;:")) + r"\ldots{}"


def _runs(entry: Mapping[str, Any]) -> str:
    def one(index: Any) -> str:
        return "baseline" if index == 0 else f"run {index}"
    return f"{one(entry.get('run'))} vs.\\ {one(entry.get('against', 0))}"


def _tabular(found: list[Mapping[str, Any]], specs: Mapping[str, MetricSpec]) -> str:
    from pylatex import NoEscape, Tabular

    # Two wrapped columns (statement, metric label) keep the table near \linewidth, so that
    # \resizebox shrinks it little.
    table = Tabular(r"lp{0.26\linewidth}p{0.12\linewidth}llrll", booktabs=True)
    table.add_row([NoEscape(h) for h in ("ID", "Hypothesis", "Metric", "Runs", "Expected", r"Min.\ effect",
                                         f"Difference [{round(LEVEL * 100)}\\% CI]", "Verdict")])
    table.add_hline()
    def row(entry: Mapping[str, Any], head: str, verdict_note: str = "") -> None:
        spec = _spec(str(entry.get("metric", "")), specs)
        diff, ci, effect = finite(entry.get("diff")), _ci(entry), finite(entry.get("smallest_effect"))
        difference = "not run" if diff is None else signed(diff, spec) + (
            f" [{bound(ci[0], spec, difference=True)}, {bound(ci[1], spec, difference=True)}]" if ci else " (no interval)")
        table.add_row([NoEscape(head), NoEscape(_short(str(entry.get("statement", "")))),
                       NoEscape(latex_text(spec.label)), NoEscape(_runs(entry)),
                       NoEscape(latex_text(str(entry.get("expected", "")))),
                       NoEscape("--" if effect is None else bound(effect, spec, difference=True)),
                       NoEscape(difference), NoEscape(latex_text(str(entry.get("verdict", ""))) + verdict_note)])

    for entry in found:
        mark = ADDED if entry.get("added_after_results") else AMENDED if entry.get("amended_after_run") is not None else ""
        row(entry, latex_text(str(entry["id"])) + mark)
        amended = entry.get("amended")
        if isinstance(amended, Mapping):  # the post hoc form, under the registered one
            row(amended, f"\\quad amended after run {latex_text(str(amended.get('after_run')))}", " (post hoc)")
    return table.dumps().rstrip("\n%")


def _caption(doc: Mapping[str, Any], found: list[Mapping[str, Any]]) -> str:
    level = f"{round(LEVEL * 100)}\\%"
    before = doc.get("registered", {}).get("before_run") if isinstance(doc.get("registered"), Mapping) else None
    when = f" (registered before run {before} was executed)" if isinstance(before, int) else ""
    text = (f"Pre-registered hypotheses{when} and their verdicts, decided by code from the {level} Welch "
            "interval of the difference (the run minus the run it is compared with): supported when the "
            "interval lies on the expected side of 0 and the difference is at least the smallest effect that "
            "matters (Min.\\ effect); "
            "refuted when it lies on the other side of 0, or entirely within the smallest effect; "
            "otherwise inconclusive.")
    amended = [e for e in found if e.get("amended_after_run") is not None and not e.get("added_after_results")]
    added = [e for e in found if e.get("added_after_results")]
    def which(group: list[Mapping[str, Any]]) -> str:
        return "; ".join(latex_text(str(e["id"])) + (f" after run {latex_text(str(e['amended_after_run']))}"
                                                     if e.get("amended_after_run") is not None else "") for e in group)
    if amended:
        text += (f" {AMENDED}: amended after results were seen ({which(amended)}); its row gives the "
                 "hypothesis as registered, whose verdict is the one that counts, and the row under it the "
                 "amended form, judged post hoc and counted nowhere.")
    if added:
        text += (f" {ADDED}: added after results were seen, so not pre-registered and not counted "
                 f"({which(added)}).")
    return text


def _none_sentence(doc: Mapping[str, Any] | None) -> str:
    problem = doc.get("problem") if isinstance(doc, Mapping) else None
    if problem:
        return f"No hypotheses were pre-registered for these runs: {latex_text(str(problem)).rstrip('.')}."
    return "No hypotheses were pre-registered for these runs."


def hypotheses_table_lines(doc: Mapping[str, Any] | None, specs: Mapping[str, MetricSpec]) -> list[str]:
    """The definitions of `\\HypothesesTabular` and `\\HypothesesTable`."""
    found = entries(doc)
    if not found:
        sentence = _none_sentence(doc)
        return [f"\\newcommand{{\\{TABULAR}}}{{{sentence}}}",
                f"\\newcommand{{\\{TABLE}}}{{\\par\\noindent {sentence}\\par}}"]
    assert doc is not None
    return [f"\\newcommand{{\\{TABULAR}}}{{%", _tabular(found, specs) + "}",
            f"\\newcommand{{\\{TABLE}}}{{%", r"\begin{table}[t]", r"\centering\small",
            f"\\resizebox{{\\ifdim\\width>\\linewidth\\linewidth\\else\\width\\fi}}{{!}}{{\\{TABULAR}}}",
            f"\\caption{{{_caption(doc, found)}}}", r"\label{tab:hypotheses}", r"\end{table}}"]


def prompt_lines(doc: Mapping[str, Any] | None, specs: Mapping[str, MetricSpec]) -> list[str]:
    """One line per hypothesis for the writeup prompts: what it claims, its verdict, why, and
    the macros that print them."""
    found = entries(doc)
    if not found:
        return [_none_sentence(doc).replace("\\", "")]
    lines = []
    for i, e in enumerate(found, start=1):
        word = "Hypothesis" + number_word(i)
        spec = _spec(str(e.get("metric", "")), specs)
        diff, ci = finite(e.get("diff")), _ci(e)
        numbers = "not run" if diff is None else (
            f"diff {diff:+.4g}" + (f" [95% CI {ci[0]:.4g}, {ci[1]:.4g}]" if ci else " (no interval)"))
        cited = [f"\\{word}{m}" for m in ("Verdict", "Diff", "CI")]
        marks = (" (added after results were seen: not pre-registered, counted nowhere)" if e.get("added_after_results")
                 else f" (as registered; amended after run {e['amended_after_run']}, see below: this verdict counts)"
                 if e.get("amended_after_run") is not None else "")
        lines.append(f"{e['id']}{marks}: \"{' '.join(str(e.get('statement', '')).split())}\" -- {spec.label} of "
                     f"{_runs(e).replace(chr(92), '')}, expected {e.get('expected')} by at least "
                     f"{e.get('smallest_effect')}: {str(e.get('verdict', '')).upper()}, {numbers}; {e.get('why', '')} "
                     f"({', '.join(cited)})")
        amended = e.get("amended")
        if isinstance(amended, Mapping):
            a_diff, a_ci = finite(amended.get("diff")), _ci(amended)
            a_numbers = "not run" if a_diff is None else (
                f"diff {a_diff:+.4g}" + (f" [95% CI {a_ci[0]:.4g}, {a_ci[1]:.4g}]" if a_ci else " (no interval)"))
            lines.append(f"    {e['id']} as amended after run {amended.get('after_run')} ({amended.get('reason')}): "
                         f"\"{' '.join(str(amended.get('statement', '')).split())}\", expected "
                         f"{amended.get('expected')} by at least {amended.get('smallest_effect')}: post hoc, "
                         f"{str(amended.get('verdict', '')).upper()}, {a_numbers}; it counts nowhere: say so if "
                         "you mention it")
    return lines


def names() -> tuple[str, str]:
    """The table macros, which always exist."""
    return TABLE, TABULAR
