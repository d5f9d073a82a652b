"""Every number in the paper must trace to a result file; every run it names must exist.

`check_paper(tex, evidence, results_macros)` reads the paper once (`agent.paper.read.reading`:
pylatexenc's parse into sentences; `agent.paper.read.mentions`: their typed number mentions), reads
each mention as a quantity (`agent.paper.ground.naming`: what its own stretch of the sentence names)
and applies the first of these rules that fits it (`agent.paper.ground.rules.RULES`, from
which this table is generated); a number is grounded only by evidence of its quantity
(`agent.paper.ground.quantity`):

| rule       | the mention                                    | grounded when it equals                              |
|------------|------------------------------------------------|------------------------------------------------------|
| formula    | a term of a formula in math (`1 - \\sum`)       | always: notation, not a claim                        |
| level      | the level of an interval (`95% CI`)            | the runs' intervals (they have that level)           |
| duration   | written with a time unit (`41.2 s`)            | a timing its clause names ("harvesting"), else any   |
|            |                                                | timing                                               |
| setting    | a setting written as one (`lambda = 0.5`, `a   | a config value of the keys its name names (`learning |
|            | learning rate of`), or a key named right       | rate` = `lr`), of its run (any run if none named); a |
|            | before it (`Learning rate & 3e-4`)             | symbol no key has: any training setting; a name no   |
|            |                                                | key has: none                                        |
| ordinary   | a year, or a small count (<= 10, or a number   | always                                               |
|            | word), no metric named in its clause           |                                                      |
| count      | counting a noun (`488 steps`, `4096 latents`)  | a value of the keys of that noun (`steps`,           |
|            |                                                | `hidden_dim`)                                        |
| metric     | a metric named right after it, before it in    | a value of those metrics (their seed statistics      |
|            | its clause, by its parenthesis' or colon's     | included), or of the settings its sentence names; a  |
|            | label, or (else) in its sentence               | change of them between two runs only if it is said   |
|            |                                                | to be a change                                       |
| value      | nothing named (`15.2% of latents are dead`)    | any value but a difference between runs or an        |
|            |                                                | evaluation-harness value                             |

A number with only connecting words after the previous number of its clause ("0.004 in the
baseline and 0.0 in Runs 1--4", "40.7% (0.75 to 1.055)") is of that number's quantity; a
number after "targeting" may be a target setting (`target_l0`). Everywhere: a difference
between runs (the seed comparisons, a hypothesis's difference and interval, a change derived
from two runs) grounds only a number said to be a difference ("by 0.06", "+0.04", "a gap of",
"8% lower", percentage points) or a bound of its interval; an evaluation-harness value (the
`evaluation` and `data` sections, an evaluation's config) only a sentence that names the
evaluation or a word of the value's own key ("window").

"Equals" (`agent.paper.ground.matching`): within half a unit of the last digit written, sign
included, but never more than 5 % of the number (a one-digit "0.002" is not 0.0018); "about"
allows 5-10 %, "exactly" a tenth of the unit; "over"/"at least" X reaches from X to one unit of
X's leading digit above it ("over 100": 100-200) and "under"/"at most" as far below, never to
infinity. With seeds, the statistics count as values (per-seed values, standard deviations,
interval bounds and half-widths, each run's difference from the baseline and its interval:
`agent.paper.ground.evidence`). A number said to be a run's (the last run or "baseline" named before
it, with no other subject, label or number between; the run a label names, "baseline 0.852")
must be that run's, else it is an attribution finding; a run that labels the number after it
("0.933 (baseline 0.852)") does not own the one before. A paper that redefines a results.tex
macro is a finding; a macro it defines itself is read where it is used, so its numbers meet
the rules in their sentence. Claims of runs, counts, ablations and comparisons:
`agent.paper.ground.claims`.

Then the statistical claims of each sentence (`agent.paper.ground.verdicts`, decided by `agent.stats`
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

from agent.paper.ground.claims import check_claims
from agent.paper.ground.evidence import Evidence
from agent.paper.ground.findings import Finding
from agent.paper.ground.naming import Context, phrases_of, quantity_of
from agent.paper.ground.quantity import Keys
from agent.paper.ground.rules import Facts, decide
from agent.paper.ground.verdicts import check_verdicts
from agent.paper.read.mentions import Mention
from agent.paper.read.prose import group_end, prose_view, section_marks
from agent.paper.read.reading import Reading, Sentence, definitions, read, sentences_of

# Between a subject ("the baseline", "Run 3") and a number, these hand the number to another
# subject: "from the baseline's 0.82 to 0.91", "the baseline, while ours reaches 0.91".
_BREAK = re.compile(r"\b(to|than|vs|versus|while|whereas|but|compared|relative|over|against|ours|our|"
                    r"proposed|optimi[sz]ed|method|peak|best|then|after|from|unlike|however|instead|"
                    r"other|others|runs|variants|models|each|all|both)\b|\w\s*:", re.I)
# "0.933 (baseline 0.852)", "0.933 (Run 1: 0.912)": the run labels the number after it, not this one
_LABELS_NEXT = re.compile(r"(?:'s)?\s*[:=]?\s*(?:[-−]?\d|\uE000)")


def _subject(s: Sentence, m: Mention, ctx: Context, baseline: str | None) -> tuple[str, frozenset[str]] | None:
    """The runs a number is said to belong to: the last subject before it (a run reference,
    "baseline", a results macro), if no other subject, label or number lies between."""
    # "0.06 in Runs 3--8", "0.852 for the baseline": a run named right after it owns it
    after = s.text[m.end - s.start:]
    tight = re.match(r"\s*%?\s*(?:(?:ms|s|sec|seconds?|min|minutes?|h|hrs?|hours?)\b\s*)?"
                     r"(?:\(|,?\s*(?:in|for|of|on|by|with|at)\s+)(?:the\s+)?", after)
    if tight:
        rest = m.end + tight.end()
        for r in s.runs:
            if r.start == rest and not _LABELS_NEXT.match(s.text[r.end - s.start:]):
                return r.text, frozenset(f"run_{i}" for i in r.indices)
        owner = re.match(r"baseline\b", s.text[rest - s.start:], re.I)
        if baseline and owner and not _LABELS_NEXT.match(s.text[rest - s.start + owner.end():]):
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
    if re.fullmatch(r"(?:'s)?\s*[:=]?\s*", gap):  # "baseline 0.852", "Run 2: 0.933": a label owns its number
        label = max(options, key=lambda o: o[0])
        return label[3], label[2]
    between = [x for x in s.mentions if end <= x.start < m.start and x.range_with is None]
    if len(gap) > 80 or _BREAK.search(gap) or between:
        return None
    # "higher in Run 4 than in Run 1 (15.2% vs. 11.8%)": any run named before it may own it
    ordered = sorted(options, key=lambda o: o[0])
    names = " / ".join(dict.fromkeys(o[3] for o in ordered))
    return names, frozenset().union(*(o[2] for o in ordered))


def _check_mention(m: Mention, s: Sentence, ctx: Context, section: str, line: int) -> Finding | None:
    """The first rule of `agent.paper.ground.rules.RULES` that applies to the mention decides it."""
    baseline = "run_0" if "run_0" in ctx.evidence.runs else None
    facts = Facts(m, s, ctx.evidence, section, line, lambda: quantity_of(m, s, ctx),
                  _subject(s, m, ctx, baseline))
    return decide(facts)


def check_grounding(tex_section_text: str, evidence: Evidence, section: str = "",
                    results_macros: dict[str, tuple[str, str]] | None = None,
                    private: dict[str, str] | None = None) -> list[Finding]:
    """Numbers, settings, macro definitions and run claims of one section no result supports.

    `results_macros`: results.tex's macros -> (run, metric); any `\\Baseline...`, `\\Run...`,
    `\\Setup...` macro is treated as one when not given."""
    tex = tex_section_text
    macros = results_macros if results_macros is not None else _guess_macros(tex)
    reading = read(tex, macros, private)
    ctx = Context(evidence, phrases_of(evidence), dict(macros), Keys.of(evidence))
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
