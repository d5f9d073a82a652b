"""Every number in the paper must trace to a result file; every run it names must exist.

`check_paper(tex, evidence, results_macros)` reads the paper once (`agent.paper.reading`:
pylatexenc's parse into sentences; `agent.paper.mentions`: their typed number mentions) and applies these rules to each
mention, in order:

| rule       | the mention                                  | grounded when                                  |
|------------|----------------------------------------------|------------------------------------------------|
| formula    | a term of a formula in math (`1 - \\sum`)    | always: notation, not a claim                  |
| level      | the level of an interval (`95% CI`)          | the runs' intervals have that level            |
| ordinary   | a year, or a small count (<= 10) named by no | always                                         |
|            | metric                                       |                                                |
| setting    | written as a setting (`lambda = 0.5`,        | a config value of its run (any run if none is  |
|            | `a learning rate of 3e-4`) of no metric      | named) equals it                               |
| metric     | in a clause (else a sentence) naming metrics | a value of one of those metrics, or a change   |
|            |                                              | of one between two runs, equals it             |
| value      | anything else                                | any evaluator or config value equals it        |

"Equals" means within half a unit of the last digit written, sign included, widened only by
"about"; "above"/"below" are one-sided. With seeds, the statistics count as values (per-seed
values, standard deviations, interval bounds and half-widths, each run's difference from the
baseline and its interval: `agent.paper.evidence`). A number said to be a run's (the last run or
"baseline" named before it, with no other subject, label or number between) must be that
run's, else it is an attribution finding. A paper that redefines a results.tex macro is a
finding; a macro it defines itself is read where it is used, so its numbers meet the rules in
their sentence. Claims of runs, counts, ablations and comparisons: `agent.paper.claims`.

Then the statistical claims of each sentence (`agent.paper.verdicts`, decided by `agent.stats`
and hypotheses_verdicts.json):

| rule          | the sentence says                                | flagged when                                |
|---------------|--------------------------------------------------|---------------------------------------------|
| direction     | a change between two runs on a metric ("lowers", | the interval shows the opposite, includes 0,|
|               | "higher than", "improves", "outperforms")        | or there is none (< 2 seeds)                |
| no_difference | "no effect", "comparable", "does not lower"      | the interval excludes 0                     |
| hypothesis    | "H1 is supported / refuted / inconclusive"       | its verdict is another                      |
| interval      | a difference (`...Delta`, or a number that is    | no detectable difference, and no interval   |
|               | one) between two runs                            | in the sentence                             |
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from agent.paper.claims import check_claims
from agent.paper.evidence import Evidence, Match
from agent.paper.findings import Finding
from agent.paper.matching import closest, derived_matches, direct_matches, nearest_derived
from agent.paper.mentions import Mention
from agent.paper.prose import group_end, prose_view, section_marks
from agent.paper.reading import Reading, Sentence, definitions, read, sentences_of
from agent.paper.verdicts import check_verdicts

# Between a subject ("the baseline", "Run 3") and a number, these hand the number to another
# subject: "from the baseline's 0.82 to 0.91", "the baseline, while ours reaches 0.91".
_BREAK = re.compile(r"\b(to|than|vs|versus|while|whereas|but|compared|relative|over|against|ours|our|"
                    r"proposed|optimi[sz]ed|method|peak|best|then|after|from|unlike|however|instead|"
                    r"other|others|runs|variants|models|each|all|both)\b|\w\s*:", re.I)
_CONFIG_ALIASES = {"learning rate": "lr", "lr": "lr", "batch size": "batch_size", "batch": "batch_size",
                   "lambda": "l1_penalty", "l1 coefficient": "l1_penalty", "sparsity penalty": "l1_penalty",
                   "dictionary size": "d_sae", "latents": "d_sae", "expansion factor": "expansion_factor",
                   "seed": "seed", "k": "k", "steps": "total_steps", "warm-up": "lr_warmup_steps"}
_SAFE_SOURCES = frozenset({"config", "data", "evaluation"})
_SETTING_WORDS = re.compile(r"\b(rates?|sizes?|coefficients?|penalty|penalties|weights?|factors?|"
                            r"seeds?|epochs?|warm-?up|decay|alpha|beta|gamma|lambda|kappa|tau|"
                            r"thresholds?|temperature|momentum|eps|epsilon|layer|block|heads?|"
                            r"width|top-k)$", re.I)


def _norm(text: str) -> str:
    text = text.lower().replace("\\_", " ").replace("_", " ")
    return re.sub(r"\s+", " ", re.sub(r"[${}\\]", " ", text)).strip()


@dataclass(frozen=True)
class _Context:
    evidence: Evidence
    phrases: tuple[tuple[str, str], ...]
    """(metric, phrase) for every metric name, label and alias."""
    macro_runs: dict[str, tuple[str, str]]
    """results.tex macro -> (run, metric)."""


def _named(text: str, phrases: Iterable[tuple[str, str]]) -> frozenset[str]:
    norm = _norm(text)
    return frozenset(m for m, p in phrases if re.search(rf"(?<![a-z0-9]){re.escape(p)}(?![a-z0-9])", norm))


def _phrases(evidence: Evidence) -> tuple[tuple[str, str], ...]:
    names = {s.name: s.names() for s in evidence.metrics}
    for v in evidence.values:
        if v.source == "metrics" and v.metric not in names:
            names[v.metric] = (v.metric.replace("_", " "),)
    return tuple((metric, _norm(p)) for metric, ps in names.items() for p in ps if len(_norm(p)) >= 2)


def _subject(s: Sentence, m: Mention, ctx: _Context, baseline: str | None) -> tuple[str, frozenset[str]] | None:
    """The runs a number is said to belong to: the last subject before it (a run reference,
    "baseline", a results macro), if no other subject, label or number lies between."""
    # "0.06 in Runs 3--8", "0.852 for the baseline": a run named right after it owns it
    after = s.text[m.end - s.start:]
    tight = re.match(r"\s*%?\s*(?:\(|,?\s*(?:in|for|of|on|by|with|at)\s+)(?:the\s+)?", after)
    if tight:
        rest = m.end + tight.end()
        for r in s.runs:
            if r.start == rest:
                return r.text, frozenset(f"run_{i}" for i in r.indices)
        if baseline and re.match(r"baseline\b", s.text[rest - s.start:], re.I):
            return "the baseline", frozenset({baseline})
    options: list[tuple[int, int, frozenset[str], str]] = []
    for r in s.runs:
        if r.end <= m.start:
            options.append((r.end, r.start, frozenset(f"run_{i}" for i in r.indices), r.text))
    if baseline:
        for b in re.finditer(r"\bbaseline\b", s.text[:m.start - s.start], re.I):
            options.append((s.start + b.end(), s.start + b.start(), frozenset({baseline}), "the baseline"))
    if not options:
        return None
    end = max(o[0] for o in options)
    gap = s.text[end - s.start:m.start - s.start]
    between = [x for x in s.mentions if end <= x.start < m.start and x.range_with is None]
    if len(gap) > 80 or _BREAK.search(gap) or between:
        return None
    # "higher in Run 4 than in Run 1 (15.2% vs. 11.8%)": any run named before it may own it
    ordered = sorted(options, key=lambda o: o[0])
    names = " / ".join(dict.fromkeys(o[3] for o in ordered))
    return names, frozenset().union(*(o[2] for o in ordered))


def _is_setting(name: str, ctx: _Context) -> bool:
    """Whether `name` (the words before `=` or `of`) names a setting: a config key, a known
    alias, or a noun of settings ("L1 coefficient", "learning rate"), not a metric."""
    norm = _norm(name)
    if not norm or re.fullmatch(r"(?:\d+ )?ci|.*\binterval", norm):
        return False  # "95% CI 0.032 to 0.042": the bounds of an interval
    keys = {v.path.rsplit(".", 1)[-1].replace("_", " ").lower() for v in ctx.evidence.values
            if v.source == "config"}
    if norm in keys or norm in _CONFIG_ALIASES or _SETTING_WORDS.search(norm):
        return True
    return len(norm) <= 2 and not _named(name, ctx.phrases)  # a symbol: `k = 32`


def _is_level(m: Mention, s: Sentence, ev: Evidence) -> bool:
    """`95% CI`, `95% confidence interval`, `a 95% level`, where the runs' intervals have that level."""
    after = s.text[m.end - s.start:]
    if not (m.percent and re.match(r"\s*(?:%|percent)?[\s-]*(?:CIs?|confidence|credible|intervals?|level)\b", after, re.I)):
        return False
    return any(v.path.endswith("level") and abs(100 * v.value - m.value) <= m.half for v in ev.values
               if v.source == "statistics")


def _ordinary(m: Mention) -> bool:
    if m.percent or m.ratio or not m.integer or m.value < 0:
        return False
    return m.value <= 10 or 1950 <= m.value <= 2035


def _finding(section: str, kind: str, m: Mention, s: Sentence, reason: str, hints: Iterable[str],
             line: int) -> Finding:
    return Finding(section, kind, m.text, " ".join(s.text.replace("\uE000", "<macro>").split())[:240],  # type: ignore[arg-type]
                   reason, tuple(hints), line)


def _why_other_run(matches: list[Match], subject: str) -> str:
    where = "; ".join(sorted({mt.values[0].describe() if mt.kind == "direct" else
                              f"{mt.kind} of {mt.values[0].path} between {mt.values[0].run} and "
                              f"{mt.values[1].run}" for mt in matches})[:3])
    return f"the text attributes it to {subject}, but it matches {where}"


def _check_mention(m: Mention, s: Sentence, ctx: _Context, section: str, line: int) -> Finding | None:
    ev = ctx.evidence
    if m.formula:
        return None  # a term of a formula: 1 - sum(...)/sum(...), (a)/(b)
    if _is_level(m, s, ev):
        return None  # "95% CI": the level the intervals were computed at
    baseline = "run_0" if "run_0" in ev.runs else None
    # the clause around the number: between separators (a thousands comma is not one)
    rel = m.start - s.start
    seps = [i for i, ch in enumerate(s.text) if ch in ";:()" or (ch == "," and not re.match(r",\d{3}", s.text[i:]))]
    left = max([i + 1 for i in seps if i < rel], default=0)
    right = min([i for i in seps if i >= m.end - s.start] + [m.end - s.start + 30, len(s.text)])
    near_text = s.text[left:right]
    quantity = re.match(r"\s*(?:[a-z-]+\s+)?(tokens|steps|latents|sequences|rows|runs|seeds|groups|"
                        r"epochs|parameters|layers|dimensions|examples|samples|batches|iterations|"
                        r"blocks|heads|words|characters)\b", s.text[m.end - s.start:])
    macro_metrics = frozenset(ctx.macro_runs[name][1] for _, name in s.macros if name in ctx.macro_runs
                              and ctx.macro_runs[name][1])
    near = _named(near_text, ctx.phrases)
    allowed = near or _named(s.text, ctx.phrases) or (macro_metrics or None)
    subject = _subject(s, m, ctx, baseline)
    runs = subject[1] if subject else None

    # setting: `lambda = 0.5`, `a learning rate of 3e-4`, named by no metric
    if m.setting and _is_setting(m.setting, ctx):
        if direct_matches(m, ev, runs=runs, sources=_SAFE_SOURCES):
            return None
        hints = [h for h in closest(m, ev, None, n=3)]
        if subject and direct_matches(m, ev, sources=_SAFE_SOURCES):
            return _finding(section, "attribution", m, s, f"the setting '{m.setting}' is attributed to "
                            f"{subject[0]}, but only another run's configuration has it", hints, line)
        return _finding(section, "setting", m, s, f"'{m.setting}' = {m.text} is not in the effective "
                        "configuration of any run it could describe: write only settings a run's config has",
                        hints, line)

    if allowed is None or quantity or (m.integer and m.value <= 10 and not near and not m.percent):
        # value rule: any evaluator or config value; a small count or a year is ordinary
        if direct_matches(m, ev, None, runs) or _ordinary(m):
            return None
        if subject and direct_matches(m, ev):
            return _finding(section, "attribution", m, s, _why_other_run(direct_matches(m, ev), subject[0]),
                            closest(m, ev, None, n=2), line)
        return _finding(section, "number", m, s, f"matches no value of any result file within its written "
                        f"digits (±{m.half:.2g}{'%' if m.percent else ''}) and names no metric whose change "
                        "between runs it could be; cite results through the results.tex macros",
                        closest(m, ev, None, n=3), line)

    # metric rule: a value of a named metric, or its change between two runs; a metric named
    # only elsewhere in the sentence lets the number be another metric's value
    if direct_matches(m, ev, allowed, runs) or derived_matches(m, ev, allowed, runs):
        return None
    if not near and direct_matches(m, ev, None, runs, sources=frozenset({"metrics", "measurements"})):
        return None
    elsewhere = direct_matches(m, ev, allowed) + derived_matches(m, ev, allowed)
    if subject and elsewhere:
        own = [v for v in closest(m, ev, allowed, n=50) if v.split(" ", 1)[0] in subject[1]][:2]
        return _finding(section, "attribution", m, s, _why_other_run(elsewhere, subject[0]), own, line)
    hints = [*closest(m, ev, allowed, n=2), *(nearest_derived(m, ev, allowed) if (m.percent or m.ratio
                                                                                 or m.change != "none") else [])]
    other = direct_matches(m, ev, None, runs)
    named = " / ".join(sorted(allowed))
    if other:
        reason = f"the text says it is {named}, but it only matches {other[0].values[0].describe()}"
    else:
        reason = (f"matches no value of {named} within its written digits (±{m.half:.2g}"
                  f"{'%' if m.percent else ''}), nor a difference, ratio or relative change of "
                  f"{named} between two runs; cite results through the results.tex macros")
    return _finding(section, "number", m, s, reason, hints, line)


def check_grounding(tex_section_text: str, evidence: Evidence, section: str = "",
                    results_macros: dict[str, tuple[str, str]] | None = None,
                    private: dict[str, str] | None = None) -> list[Finding]:
    """Numbers, settings, macro definitions and run claims of one section no result supports.

    `results_macros`: results.tex's macros -> (run, metric); any `\\Baseline...`, `\\Run...`,
    `\\Setup...` macro is treated as one when not given."""
    tex = tex_section_text
    macros = results_macros if results_macros is not None else _guess_macros(tex)
    reading = read(tex, macros, private)
    ctx = _Context(evidence, _phrases(evidence), dict(macros))
    findings = check_claims(tex, prose_view(tex), evidence, section)
    for d in reading.definitions:
        if d.redefines_result:
            findings.append(Finding(section, "macro", f"\\{d.name}", f"\\renewcommand{{\\{d.name}}}{{{d.body}}}",
                                    f"redefines \\{d.name}, a macro results.tex generates from the runs: "
                                    "delete the definition and cite the macro as it is",
                                    (), tex.count("\n", 0, d.pos) + 1))
    seen = set()
    read_sentences = sentences_of(reading)
    for s in read_sentences:
        for m in s.mentions:
            found = _check_mention(m, s, ctx, section, _line(tex, reading, m.start))
            key = (found.kind, found.text, found.line) if found else None
            if found is not None and key not in seen:  # a table's row label is read per cell
                seen.add(key)
                findings.append(found)
    findings += check_verdicts(read_sentences, evidence, section, macros, lambda pos: _line(tex, reading, pos))
    return sorted(findings, key=lambda f: f.line)


def _line(tex: str, reading: Reading, pos: int) -> int:
    return tex.count("\n", 0, reading.source_pos(pos)) + 1


def _guess_macros(tex: str) -> dict[str, tuple[str, str]]:
    names = set(re.findall(r"\\((?:Baseline|Run|Setup|Num|Hypothesis)[A-Za-z]*|GateSummary|ResultsTab\w*|"
                           r"HypothesesTab\w*)", tex))
    return {n: ("run_0" if n.startswith("Baseline") else "", "") for n in names}


def split_sections(tex: str) -> list[tuple[str, str]]:
    """(title, text) for the front matter, the abstract, each section, in order.

    Each text is the source with everything outside the section blanked, so offsets and line
    numbers stay those of the whole file.
    """
    marks = section_marks(tex)
    out = []
    for (start, title), (end, _) in zip(marks, [*marks[1:], (len(tex), "")], strict=True):
        if tex[start:end].strip():
            out.append((title, re.sub(r"[^\n]", " ", tex[:start]) + tex[start:end]))
    return out


def check_paper(tex: str, evidence: Evidence,
                results_macros: dict[str, tuple[str, str]] | None = None) -> list[Finding]:
    """`check_grounding` over every part of a whole paper (the preamble is skipped, except the
    title and any macro the paper defines there)."""
    start = tex.find("\\begin{document}")
    text = tex
    if start >= 0:  # the preamble is not prose, except the title and the paper's own macros
        keep = []
        title = re.search(r"\\title\s*\{", tex[:start])
        if title:
            keep.append((title.start(), group_end(tex, title.end() - 1)))
        for m in re.finditer(r"\\(?:re)?newcommand\*?\s*\{?\s*\\[A-Za-z]+\s*\}?\s*(?:\[\d\])?\s*\{|\\def\s*\\[A-Za-z]+\s*\{",
                             tex[:start]):
            if "\\input" not in tex[m.start():m.end()]:
                keep.append((m.start(), group_end(tex, m.end() - 1)))
        text = "".join(c if c == "\n" or any(a <= i < b for a, b in keep) or i >= start else " "
                       for i, c in enumerate(tex))
    private = definitions(tex[:start]) if start >= 0 else {}
    findings: list[Finding] = []
    for name, part in split_sections(text):
        findings += check_grounding(part, evidence, name, results_macros, private)
    return findings
