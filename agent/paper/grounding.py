"""Every number in the paper must trace to a result file; every run it names must exist.

`check_grounding(section_text, evidence)` lists the numbers of the prose that match no value
of any `final_info.json` within their printed rounding (nor a difference, ratio or relative
change of one metric between two runs), numbers attributed to the wrong run, and claims of
runs, ablations and comparisons that never happened. Numbers cited through the results.tex
macros never appear in the prose, so a paper that follows the prompts has nothing to flag.
"""

from __future__ import annotations

import re
from dataclasses import replace

from agent.paper.claims import check_claims
from agent.paper.evidence import (
    Evidence,
    Match,
    closest,
    derived_matches,
    direct_matches,
    nearest_derived,
)
from agent.paper.findings import Finding
from agent.paper.prose import clause_bounds, group_end, prose_view, section_marks, sentence_bounds
from agent.paper.texnum import NumberToken, numbers, run_refs

# Between a subject ("the baseline", "Run 3") and a number, these words hand the number to
# another subject: "from the baseline's 0.82 to 0.91", "the baseline, while ours reaches 0.91".
_BREAK = re.compile(r"\b(to|than|vs|versus|while|whereas|but|compared|relative|over|against|ours|our|"
                    r"proposed|method|peak|best|then|after|from|unlike|however|instead|other|others|runs|variants|"
                    r"models|each|all|both)\b", re.I)


def _norm(text: str) -> str:
    text = text.lower().replace("\\_", " ").replace("\\ell", "l")
    text = re.sub(r"\\[a-z]+\*?", " ", text)
    text = re.sub(r"[${}]", "", text).replace("_", "")
    return re.sub(r"\s+", " ", text)


def _metric_phrases(evidence: Evidence) -> list[tuple[str, str]]:
    names = {s.name: s.names() for s in evidence.metrics}
    for v in evidence.values:
        if v.source == "metrics" and v.metric not in names:
            names[v.metric] = (v.metric.replace("_", " "),)
    return [(metric, _norm(p)) for metric, phrases in names.items() for p in phrases if len(_norm(p).strip()) >= 2]


def _named(text: str, phrases: list[tuple[str, str]]) -> frozenset[str]:
    norm = _norm(text)
    return frozenset(m for m, p in phrases if re.search(rf"(?<![a-z0-9]){re.escape(p.strip())}(?![a-z0-9])", norm))


def _subject(view: str, token: NumberToken, sentence: tuple[int, int], refs: list[tuple[int, int, frozenset[str]]],
             baseline: str | None) -> tuple[str, frozenset[str]] | None:
    """The run a number is said to belong to: the last subject before it, if nothing intervenes."""
    a = sentence[0]
    options = [(e, s, runs) for s, e, runs in refs if a <= s and e <= token.start]
    if baseline:
        options += [(m.end() + a, m.start() + a, frozenset({baseline}))
                    for m in re.finditer(r"\bbaseline\b", view[a:token.start], re.I)]
    if not options:
        return None
    end, start, _ = max(options)
    gap = view[end:token.start]
    if len(gap) > 80 or _BREAK.search(gap):
        return None
    # "higher in Run 4 than in Run 1 (15.2% vs. 11.8%)": any run the sentence named may own it.
    names = " / ".join(dict.fromkeys(" ".join(view[s:e].split()) for e, s, _ in sorted(options)))
    return names, frozenset().union(*(r for _, _, r in options))


def _grounded(token: NumberToken, evidence: Evidence, allowed: frozenset[str] | None,
              runs: frozenset[str] | None) -> bool:
    """A direct match, or (when the text names the metric) a change between two runs."""
    if direct_matches(token, evidence, allowed, runs):
        return True
    return allowed is not None and bool(derived_matches(token, evidence, allowed, runs))


def _ordinary(token: NumberToken) -> bool:
    """Numbers any text has: small counts, enumerations, years."""
    if token.percent and token.integer and token.value in (0, 100):
        return True  # "100% of tokens"
    if token.percent or token.ratio or not token.integer or token.half > 0.5:
        return False
    return token.value <= 10 or 1950 <= token.value <= 2035


def _why_not(token: NumberToken, matches: list[Match], subject: str) -> str:
    where = "; ".join(sorted({m.values[0].describe() if m.kind == "direct" else
                              f"{m.kind} of {m.values[0].path} between {m.values[0].run} and {m.values[1].run}"
                              for m in matches})[:3])
    return f"the text attributes it to {subject}, but it matches {where}"


def check_grounding(tex_section_text: str, evidence: Evidence, section: str = "") -> list[Finding]:
    """Numbers and run claims of one section that no result supports."""
    tex = tex_section_text
    view = prose_view(tex)
    phrases = _metric_phrases(evidence)
    baseline = "run_0" if "run_0" in evidence.runs else None
    refs = [(r.start, r.end, frozenset(f"run_{i}" for i in r.indices)) for r in run_refs(tex, view)]
    findings = check_claims(tex, view, evidence, section)
    for token in numbers(tex, view):
        sentence = sentence_bounds(view, token.start)
        clause = clause_bounds(view, token.start, sentence)
        # A metric named right around the number is what it is about; one named elsewhere in
        # the sentence only narrows which relative changes are considered.
        near = _named(tex[clause[0]:min(clause[1], token.end + 30)], phrases)
        allowed = near or _named(tex[sentence[0]:sentence[1]], phrases) or None
        subject = _subject(view, token, sentence, refs, baseline)
        runs = subject[1] if subject else None
        if _grounded(token, evidence, allowed, runs):
            continue
        base = Finding(section, "number", token.text, " ".join(view[sentence[0]:sentence[1]].split())[:240],
                       "", (), tex.count("\n", 0, token.start) + 1)
        if subject and _grounded(token, evidence, allowed, None):
            elsewhere = direct_matches(token, evidence, allowed) or derived_matches(token, evidence, allowed)
            own = [v for v in closest(token, evidence, allowed, n=50) if v.split(" ", 1)[0] in subject[1]][:2]
            findings.append(replace(base, kind="attribution", reason=_why_not(token, elsewhere, subject[0]),
                                    closest=tuple(own)))
            continue
        hints = tuple(closest(token, evidence, allowed, n=2 if allowed else 3))
        if allowed and (token.percent or token.ratio or token.change != "none"):
            hints += tuple(nearest_derived(token, evidence, allowed))
        other = direct_matches(token, evidence, None, runs) if allowed is not None else []
        # Named next to a metric, a setting stated plainly (a window, a batch size) is fine; a
        # percentage, a change, or another metric's value is a claim about the named metric.
        metric_hit = [m for m in other if m.values[0].source == "metrics"]
        claim_like = token.percent or token.change != "none" or bool(metric_hit)
        if other and near and claim_like:
            hit = (metric_hit or other)[0].values[0].describe()
            reason = f"the text says it is {' / '.join(sorted(near))}, but it only matches {hit}"
            findings.append(replace(base, reason=reason, closest=hints))
            continue
        if other or _ordinary(token):
            continue
        rounding = f"±{token.half:.2g}" + ("%" if token.percent else "")
        derived = ("nor a difference, ratio or relative change of " + "/".join(sorted(allowed)) + " between two runs"
                   if allowed else "and names no metric whose change between runs it could be")
        reason = (f"matches no value of any result file within its rounding ({rounding}), {derived}; "
                  "cite results through the results.tex macros")
        findings.append(replace(base, reason=reason, closest=hints))
    return sorted(findings, key=lambda f: f.line)


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


def check_paper(tex: str, evidence: Evidence) -> list[Finding]:
    """`check_grounding` over every part of a whole paper (the preamble is skipped, except the title)."""
    start = tex.find("\\begin{document}")
    text = tex
    if start >= 0:  # the preamble is not prose, except the title
        title = re.search(r"\\title\s*\{", tex[:start])
        keep = (title.start(), group_end(tex, title.end() - 1)) if title else (0, 0)
        text = "".join(c if c == "\n" or keep[0] <= i < keep[1] or i >= start else " " for i, c in enumerate(tex))
    findings: list[Finding] = []
    for name, part in split_sections(text):
        findings += check_grounding(part, evidence, name)
    return findings

