"""Sentences that count the hypotheses: how many were registered, how many have each verdict.

`wrong_counts(text, evidence)` reads a sentence about the hypotheses for the counts it writes
and checks each against `hypotheses_verdicts.json` (those added after the results count
nowhere):

| the sentence writes                                   | flagged unless                              |
|-------------------------------------------------------|---------------------------------------------|
| "of the 4 pre-registered hypotheses", "two hypotheses"| that many were registered                   |
| "support 3", "refute 0", "leave 1 inconclusive",      | that many have the verdict                  |
| "two were supported", "1 of 3 hypotheses is refuted"  |                                             |
| "both hypotheses were supported", "neither ..."       | two were registered, and both (neither) have|
|                                                       | the verdict                                 |
| "all (our) hypotheses are supported", "every          | every (no) registered hypothesis has the    |
| hypothesis held", "the hypotheses were refuted",      | verdict                                     |
| "none of the hypotheses is supported"                 |                                             |

Conditional sentences ("if", "would", "whether") state no count.
"""

from __future__ import annotations

import re

from agent.paper.ground.evidence import Evidence
from agent.paper.read.texnum import WORDS, count_value

_N = r"(\d+|" + "|".join(WORDS) + r")"
_KIND = r"(?:(?:pre-?registered|registered|pre-?specified|stated|initial|original|main)\s+)?"
_VERB = r"(?:are|were|is|was|remain|remained)\s+(?:(?:all|both|each)\s+)?(?:(?:judged|found|rated|deemed)\s+)?"
_VERDICT = r"(supported|refuted|inconclusive)\b"
_REGISTERED = re.compile(rf"\b{_N}\s+{_KIND}hypothes[ie]s\b", re.I)
_TALLY = (
    (re.compile(rf"\bsupport(?:s|ed)?\s+(?:only\s+|just\s+)?{_N}\b(?!\s*(?:%|\\%|percent))", re.I), "supported"),
    (re.compile(rf"\brefut(?:e|es|ed)\s+(?:only\s+|just\s+)?{_N}\b(?!\s*(?:%|\\%|percent))", re.I), "refuted"),
    (re.compile(rf"\bleav(?:e|es|ing)\s+{_N}\s+(?:\w+\s+)?(?:inconclusive|undecided|open)", re.I), "inconclusive"),
    (re.compile(rf"\b{_N}\s+of\s+(?:the\s+|our\s+|these\s+)?{_N}\s+(?:\S+\s+)?hypothes[ie]s\s+"
                rf"{_VERB}{_VERDICT}", re.I), None),
    (re.compile(rf"(?<!\bof\s)(?<!\bthe\s)(?<!\bour\s)\b{_N}\s+(?:of\s+them\s+|(?:of\s+the\s+)?hypothes[ie]s\s+)?"
                rf"{_VERB}{_VERDICT}", re.I), None),
)
"""Tallies of verdicts (the tally is the first number; the last group is the verdict where the
pattern names none)."""
_QUANTIFIED = re.compile(
    rf"\b(?P<q>all|both|every|each|none|neither|no)\s+(?:of\s+)?(?:(?:the|our|these|its|their|{_N[1:-1]})\s+)*"
    rf"{_KIND}hypothes[ie]s?\b[^.;:]{{0,60}}?\b{_VERB}{_VERDICT}"
    rf"|(?<!\bof\s)\b(?P<the>the|our|these)\s+(?:(?:two|three|four|five|\d+)\s+)?{_KIND}hypotheses\s+{_VERB}{_VERDICT}", re.I)
"""Quantified verdicts: "both hypotheses were supported", "all of our hypotheses are
refuted", "none of the hypotheses is supported", "the hypotheses were supported" (all)."""
_CONDITIONAL = re.compile(r"\b(?:if|would|could|whether|might|may|should)\b", re.I)


def wrong_counts(text: str, evidence: Evidence) -> list[tuple[int, int, str]]:
    """(start, end, reason) of each count of the sentence `text` that the records contradict."""
    records = evidence.hypotheses
    if records is None or not re.search(r"hypothes|\bof\s+them\b", text, re.I) or _CONDITIONAL.search(text):
        return []
    registered = [h for h in records if not h.added]  # one added after the results counts nowhere
    ids = ", ".join(h.id for h in registered) or "none"
    out = []
    for m in _REGISTERED.finditer(text):
        if count_value(m.group(1)) != len(registered):
            out.append((m.start(), m.end(), f"{len(registered)} hypotheses were registered before run 1 ({ids}), "
                                            f"not {m.group(1)}; write \\NumHypotheses"))
    for pattern, verdict in _TALLY:
        for m in pattern.finditer(text):
            said = (verdict or m.group(m.lastindex or 0)).lower()
            having = [h.id for h in registered if h.verdict == said]
            if count_value(m.group(1)) != len(having):
                out.append((m.start(), m.end(), _reason(len(having), registered, said, having, m.group(1))))
    for m in _QUANTIFIED.finditer(text):
        said = (m.group(m.lastindex or 0)).lower()
        having = [h.id for h in registered if h.verdict == said]
        q = (m.group("q") or "all").lower()
        if re.search(r"\bnot\s+$", text[:m.start()], re.I):  # "not all of them were supported"
            if q in ("all", "every", "each", "both") and registered and len(having) == len(registered):
                out.append((m.start(), m.end(), _reason(len(having), registered, said, having, f"not {q}")))
            continue
        pair = q in ("both", "neither")
        wanted = 0 if q in ("none", "neither", "no") else len(registered)
        if len(having) != wanted or (pair and len(registered) != 2) or not registered:
            out.append((m.start(), m.end(), _reason(len(having), registered, said, having, q)))
    return out


def _reason(n: int, registered: list, said: str, having: list[str], written: str) -> str:  # type: ignore[type-arg]
    return (f"{n} of the {len(registered)} registered hypotheses are {said} ({', '.join(having) or 'none'}; "
            f"hypotheses_verdicts.json, decided by code on each as registered), not {written}")
