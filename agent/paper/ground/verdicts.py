"""Claims the statistics must carry: directions, no-effect claims, hypotheses, intervals.

`check_verdicts(sentences, evidence, ...)` reads each sentence of `agent.paper.read.reading` for a
claim between two runs on a metric and decides it with `agent.stats` (the runs' per-seed
values, Welch's interval of the difference at 95%) or with `hypotheses_verdicts.json`:

| rule          | the sentence says                                | flagged when                                  |
|---------------|--------------------------------------------------|-----------------------------------------------|
| direction     | a change between two runs on a metric ("Run 2    | the interval shows the opposite, or includes  |
|               | lowers L0", "higher than the baseline's",        | 0 (no detectable difference), or there is no  |
|               | "improves", "outperforms", "reduces")            | interval (< 2 seeds; the means disagree, or   |
|               |                                                  | the runs were recorded with seeds)            |
| no_difference | no change ("no effect", "comparable", "matches", | the interval excludes 0 (on the denied side)  |
|               | "does not lower")                                |                                               |
| hypothesis    | "H1 is supported / refuted / inconclusive"       | its verdict is another                        |
|               | "of the 4 pre-registered hypotheses", "support   | the count is not that of the registered       |
|               | 3, refute 0 and leave 1 inconclusive", "both /   | hypotheses, or of those with that verdict     |
|               | all / none were supported" (`agent.paper.ground.tallies`)|                                              |
| interval      | a difference (`...Delta` macro, or a number that | the pair's verdict is no detectable           |
|               | is the difference of two runs' means)            | difference and the sentence gives no interval |

Which runs and which metric a sentence's direction word is about is read by
`agent.paper.read.statements` (explicit run references, "the baseline", results macros; a run named
alone is compared with the baseline; a subject the text does not determine, "our method", is
not a claim). "Improves" and "better" follow the metric's direction (L0: lower is better),
"lowers" and "higher" its raw value; a negation ("does not lower") denies a change; a hedge
("slightly") changes nothing. Conditional and hypothetical sentences ("would", "H1 predicts
that") state no result; a sentence that says a difference is not detectable is not read for a
direction. Old records without a seeds section have no interval: only the claims the
statistics can decide are checked (none of direction, interval or no-difference).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Literal

from agent.paper.build.results_tex import metric_word, number_word
from agent.paper.ground import tallies
from agent.paper.ground.evidence import Evidence, HypothesisRecord
from agent.paper.ground.findings import Finding, FindingKind
from agent.paper.ground.matching import derived_matches, direct_matches
from agent.paper.read.reading import PLACEHOLDER, Sentence
from agent.paper.read.statements import (
    CONDITIONAL,
    NEGATION,
    STATISTICAL_SAME,
    Claim,
    Cue,
    MacroNames,
    SentenceView,
    cue_metrics,
    cues,
    metric_patterns,
    pairs,
)
from agent.stats import RunComparison

Stated = Literal["supported", "refuted", "inconclusive", "not_supported", "not_refuted"]

_INTERVAL = re.compile(r"\bCI\b|\b(?:confidence|credible)\s+intervals?\b|\bintervals?\b|±|\+/-|"
                       r"\[\s*[-−–]?\s*\d[\d.]*\s*,\s*[-−–]?\s*\d", re.I)
_DIFFERENCE = re.compile(r"\b(?:by|differ\w*|difference|gap|delta|change[sd]?|margin)\b|[+−]\s*\d", re.I)
_HYPOTHESIS_ID = re.compile(r"\bH\s?(\d+)\b|\bhypothesis\s+(\d+)\b", re.I)
_THE_HYPOTHESIS = re.compile(r"\b(?:our|the|this|the\s+pre-?registered|the\s+main|the\s+primary)\s+hypothesis\b", re.I)
_STATUS = re.compile(
    r"(?P<inconclusive>\binconclusive\b|\bundecided\b|\bunresolved\b|\bneither\s+supported\s+nor\s+refuted\b|"
    r"\bremains?\s+open\b)|(?P<not_supported>\bunsupported\b)|"
    r"(?P<refuted>\brefut\w*|\breject\w*|\bfalsif\w*|\bdisconfirm\w*|\bcontradict\w*|\bdisprov\w*)|"
    r"(?P<supported>\bsupport(?:s|ed|ing)?\b|\bconfirm(?:s|ed|ing)?\b|\bvalidat(?:e|es|ed|ing)\b|"
    r"\bverif(?:y|ies|ied)\b|\bholds\b|\bheld\b|\bborne\s+out\b|\bcorroborat\w*|\bvindicat\w*|\bupheld\b)", re.I)
_INTERVAL_SUFFIX = re.compile(r"CI|Low|High|PM|Interval")
"""Results macros that print an interval or its bounds (`...DeltaCI`, `...DeltaLow`, `...PM`)."""


_WORD = {1: "higher", -1: "lower"}


def _run_name(run: str) -> str:
    return "the baseline" if run == "run_0" else f"Run {run.split('_', 1)[1]}"


def _raw(claim: Claim, direction: str) -> int:
    """+1 when the claim says the raw value rose, -1 fell, 0 unchanged."""
    if claim in ("better", "worse"):
        return (1 if claim == "better" else -1) * (1 if direction == "higher" else -1)
    return {"up": 1, "down": -1, "same": 0}[claim]


def _observed(rc: RunComparison) -> int | None:
    """+1 / -1 when the interval lies above / below 0, 0 when it includes 0, None without one."""
    ci = rc.comparison.ci
    if ci is None:
        return None
    return 1 if ci[0] > 0 else -1 if ci[1] < 0 else 0


def _describe(rc: RunComparison, evidence: Evidence) -> str:
    fmt = evidence.spec(rc.metric).format
    fmt = ".4g" if fmt.endswith("d") else fmt
    return (f"{rc.metric}: {rc.run} - {rc.against} = {rc.describe(fmt)} "
            f"(n = {rc.n_run} and {rc.n_against} seeds)")


def _write_instead(rc: RunComparison, evidence: Evidence, known: Mapping[str, tuple[str, str]]) -> str:
    """What the data allow the sentence to say, with the macros to cite."""
    label, seen = evidence.spec(rc.metric).label, _observed(rc)
    run, against = rc.run, rc.against
    verdict: str | None = rc.comparison.verdict
    if run == "run_0" and seen:  # say it of the run, not of the baseline
        run, against, seen = against, run, -seen
        verdict = {"better": "worse", "worse": "better"}.get(verdict or "", verdict)
    if seen is None:
        text = ("with a single seed there is no interval: report the two values as single-seed observations, not "
                "as a change (or run more seeds)")
    elif seen == 0:
        text = (f"write that there is no detectable difference in {label} between {_run_name(run)} and "
                f"{_run_name(against)}, with the interval")
    else:
        text = (f"write that {label} is detectably {_WORD[seen]} in {_run_name(run)} than in {_run_name(against)} "
                f"({verdict}), with the interval")
    if against == "run_0" and run.startswith("run_"):
        stem = "Run" + number_word(int(run[4:])) + metric_word(rc.metric)
        cite = [f"\\{stem}{suffix}" for suffix in ("Delta", "DeltaCI") if stem + suffix in known]
        if cite:
            text += " (" + " and ".join(cite) + ")"
    return text


def _said(cue: Cue, rc: RunComparison, evidence: Evidence) -> str:
    """The claim as the checker read it."""
    spec = evidence.spec(rc.metric)
    a, b, label = _run_name(rc.run), _run_name(rc.against), spec.label
    raw = _WORD[_raw(cue.claim, spec.direction) or 1]
    if cue.claim == "same":
        return f"says {label} does not differ between {a} and {b}"
    if cue.claim in ("better", "worse"):
        verb = {"better": "improve", "worse": "worsen"}[cue.claim]
        return (f"says {a} {'does not ' + verb if cue.negated else verb + 's'} {label} over {b} "
                f"({spec.direction} is better for {label}: a {raw} value)")
    return f"says {label} is {'not ' if cue.negated else ''}{raw} in {a} than in {b}"


def _finding(view: SentenceView, kind: FindingKind, start: int, end: int, reason: str, hints: Iterable[str],
             section: str, line_of: Callable[[int], int]) -> Finding:
    text = view.text[start:end]
    for c in view.cited:
        if start <= c.pos < end:
            text = text.replace(PLACEHOLDER, "\\" + c.name, 1)
    return Finding(section, kind, " ".join(text.split()), view.context(), reason, tuple(hints),
                   line_of(view.s.start + start))


def _directions(view: SentenceView, evidence: Evidence, known: Mapping[str, tuple[str, str]], section: str,
                line_of: Callable[[int], int]) -> list[Finding]:
    if CONDITIONAL.search(view.text):
        return []
    found = cues(view)
    # "lower, but not detectably so": a sentence that says so claims no direction
    hedged = bool(STATISTICAL_SAME.search(view.text))
    out = []
    for i, cue in enumerate(found):
        if hedged and cue.claim != "same":
            continue
        for _, end, metric in cue_metrics(view, found, i):
            claimed = _raw(cue.claim, evidence.spec(metric).direction)
            wrong: list[tuple[RunComparison, str]] = []
            for run, against in pairs(view, cue, evidence, metric):
                rc = evidence.compare(run, against, metric)
                if rc is None:
                    continue
                why = _contradiction(claimed, cue.negated, rc, evidence)
                if why:
                    wrong.append((rc, why))
            if not wrong:
                continue
            kind: FindingKind = "no_difference" if claimed == 0 or cue.negated else "direction"
            reason = "; ".join(f"{_said(cue, rc, evidence)}, but {why}: {_write_instead(rc, evidence, known)}"
                               for rc, why in wrong[:2])
            span_end = end if 0 <= end - cue.start <= 40 else cue.end
            out.append(_finding(view, kind, cue.start, span_end, reason,
                                [_describe(rc, evidence) for rc, _ in wrong[:3]], section, line_of))
            break  # one finding per direction word
    return out


def _contradiction(claimed: int, negated: bool, rc: RunComparison, evidence: Evidence) -> str:
    """Why the statistics do not carry the claim, or empty when they do."""
    seen, diff = _observed(rc), rc.comparison.diff
    label, a = evidence.spec(rc.metric).label, _run_name(rc.run)
    if negated or claimed == 0:  # a change denied: wrong only where the interval shows it
        if seen is not None and seen != 0 and (claimed == 0 or seen == claimed):
            return (f"the 95% interval of the difference excludes 0: {label} is detectably {_WORD[seen]} in {a} "
                    f"({rc.comparison.verdict})")
        return ""
    if seen == claimed:
        return ""
    if seen == -claimed:
        return f"the data show the opposite: {label} is detectably {_WORD[seen]} in {a} ({rc.comparison.verdict})"
    if seen == 0:
        return "the 95% interval of the difference includes 0: no detectable difference"
    if not (evidence.seeded(rc.run) or evidence.seeded(rc.against)):
        return ""  # old single-seed records (no seeds section): no statistics to decide with
    n = min(rc.n_run, rc.n_against)
    if diff == 0 or (diff > 0) != (claimed > 0):
        return f"the means show the opposite ({label} is {_WORD[1 if diff > 0 else -1]} in {a}), from {n} seed"
    return f"there is no interval ({n} seed), so no direction is established"


def _hypotheses(view: SentenceView, evidence: Evidence, section: str, line_of: Callable[[int], int]) -> list[Finding]:
    records = evidence.hypotheses
    if records is None or re.search(r"\b(?:if|would|whether|might|may)\b", view.text, re.I):
        return []
    by_id = {h.id: h for h in records}
    ids = [(m.start(), f"H{m.group(1) or m.group(2)}") for m in _HYPOTHESIS_ID.finditer(view.text)]
    ids += [(c.pos, c.hypothesis) for c in view.cited if c.hypothesis]  # `\HypothesisOneId`
    if len(records) == 1:
        ids += [(m.start(), records[0].id) for m in _THE_HYPOTHESIS.finditer(view.text)]
    if not ids:
        return []
    stated: dict[str, tuple[Stated, int, int]] = {}
    conflicting = set()
    for m in _STATUS.finditer(view.text):
        left, right = view.clause(m.start())
        kind: Stated = m.lastgroup  # type: ignore[assignment]
        if kind in ("supported", "refuted") and NEGATION.search(view.text[left:m.start()]):
            kind = "not_supported" if kind == "supported" else "not_refuted"
        named = [h for pos, h in ids if left <= pos < right] or [h for _, h in ids]
        for h in dict.fromkeys(named):
            if h in stated and stated[h][0] != kind:
                conflicting.add(h)
            stated.setdefault(h, (kind, m.start(), m.end()))
    out = []
    for h, (kind, start, end) in stated.items():
        record = by_id.get(h)
        if h in conflicting:
            continue
        if record is None:
            if re.search(r"hypothes", view.text, re.I):
                out.append(_finding(view, "hypothesis", start, end, f"no hypothesis {h} was registered; the "
                                    f"registered ones are {', '.join(sorted(by_id)) or 'none'}", (), section, line_of))
            continue
        if _agrees(kind, record.verdict):
            continue
        out.append(_finding(view, "hypothesis", start, end, _hypothesis_reason(record, kind),
                            (_hypothesis_hint(record),), section, line_of))
    return out


def _agrees(stated: Stated, verdict: str) -> bool:
    if stated == "not_supported":
        return verdict != "supported"
    if stated == "not_refuted":
        return verdict != "refuted"
    return stated == verdict


def _hypothesis_reason(h: HypothesisRecord, stated: Stated) -> str:
    said = stated.replace("_", " ")
    return (f"the text calls {h.id} {said}, but its verdict (hypotheses_verdicts.json, decided by code from the "
            f"95% interval) is {h.verdict}" + (f": {h.why}" if h.why else "") +
            f"; write that {h.id} is {h.verdict}")


def _hypothesis_hint(h: HypothesisRecord) -> str:
    where = f"{h.metric}, {h.run} vs {h.against}, expected {h.expected}"
    if h.diff is None:
        return f"{h.id} ({where}): no difference measured"
    ci = f" [95% CI {h.ci[0]:.4g}, {h.ci[1]:.4g}]" if h.ci else " (no interval)"
    return f"{h.id} ({where}): difference {h.diff:+.4g}{ci}: {h.verdict}"


def _intervals(view: SentenceView, evidence: Evidence, section: str, line_of: Callable[[int], int]) -> list[Finding]:
    if _INTERVAL.search(view.text) or any(_INTERVAL_SUFFIX.search(c.suffix) for c in view.cited) \
            or STATISTICAL_SAME.search(view.text):
        return []
    out = []
    for c in view.cited:  # `\RunTwoMseDelta`: the difference to the baseline
        if c.suffix in ("Delta", "DeltaPct") and c.run != "run_0":
            rc = evidence.compare(c.run, "run_0", c.metric)
            if rc is not None and rc.verdict == "no detectable difference":
                out.append(_finding(view, "interval", c.pos, c.pos + 1, _interval_reason([rc], evidence),
                                    [_describe(rc, evidence)], section, line_of))
    allowed = frozenset(m[2] for m in view.metrics)
    named = set().union(*(m.runs for m in view.mentions)) | {"run_0"}
    for m in view.s.mentions:
        if not allowed or m.formula or m.setting or m.range_with is not None or (m.integer and abs(m.value) <= 10):
            continue
        left, right = view.clause(m.start - view.s.start)
        if m.change == "none" and not _DIFFERENCE.search(view.text[left:right]):
            continue  # nothing says it is a difference
        if any(not mt.values[0].path.startswith("comparisons.") for mt in direct_matches(m, evidence)):
            continue  # a value of a result file (a metric, a setting), not a difference
        pairs = {(mt.values[0].run, mt.values[1].run, mt.values[0].metric)
                 for mt in derived_matches(m, evidence, allowed)
                 if mt.kind in ("difference", "relative") and "/" not in mt.values[0].path}
        if len(named) > 1:
            pairs = {p for p in pairs if {p[0], p[1]} <= named}
        found = [evidence.compare(b, a, metric) for a, b, metric in sorted(pairs)]
        rcs = [rc for rc in found if rc is not None]
        if rcs and len(rcs) == len(found) and all(rc.verdict == "no detectable difference" for rc in rcs):
            start = m.start - view.s.start
            out.append(_finding(view, "interval", start, m.end - view.s.start, _interval_reason(rcs, evidence),
                                [_describe(rc, evidence) for rc in rcs[:3]], section, line_of))
    return out


def _interval_reason(rcs: Sequence[RunComparison], evidence: Evidence) -> str:
    rc = rcs[0]
    return (f"states the difference in {evidence.spec(rc.metric).label} between {_run_name(rc.run)} and "
            f"{_run_name(rc.against)} without its interval, but the 95% interval includes 0 (no detectable "
            f"difference): give the interval in the same sentence, or say there is no detectable difference")


def check_verdicts(sentences: Sequence[Sentence], evidence: Evidence, section: str,
                   results_macros: Mapping[str, tuple[str, str]], line_of: Callable[[int], int]) -> list[Finding]:
    """The statistical claims of one section's sentences that the statistics do not carry.
    `line_of`: the source line of an offset of the read text."""
    if not evidence.infos:
        return []
    patterns = metric_patterns(evidence)
    macros = MacroNames(evidence, results_macros)
    out: list[Finding] = []
    for s in sentences:
        view = SentenceView(s, evidence, patterns, macros)
        out += _directions(view, evidence, results_macros, section, line_of)
        out += _hypotheses(view, evidence, section, line_of)
        out += [_finding(view, "hypothesis", start, end, reason, (), section, line_of)
                for start, end, reason in tallies.wrong_counts(view.text, evidence)]
        out += _intervals(view, evidence, section, line_of)
    return out
