"""Claims of experiments that never ran: ablations, comparisons, runs, counts, the baseline.

Each claim is checked against the runs that exist and their one-line descriptions (what
changed vs the baseline). Speculative sentences (future work, "could", "we did not") are not
claims of results and are left alone.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from agent.paper.ground.evidence import Evidence
from agent.paper.ground.findings import Finding, FindingKind
from agent.paper.read.prose import sentence_bounds
from agent.paper.read.texnum import count_claims, run_refs

_SPECULATIVE = re.compile(r"\b(future|could|would|should|might|may|leave|left for|remains?|plan|not yet|"
                          r"did not|do not|does not|no ablation|not run|not perform|beyond the scope|interesting)\b", re.I)
_RESULTISH = re.compile(r"\d|reduc|increas|decreas|\bdrop|improv|degrad|hurt|led to|lead to|result|lower|higher|"
                        r"worse|better|impact|effect|contribut|importan|necess|crucial|essential|harm|benefit|"
                        r"confirm|show|demonstrat|reveal", re.I)
_ABLATION = re.compile(r"\bablat\w*|\bremov(?:e|es|ed|ing|al of)\b|\bdisabl(?:e|es|ed|ing)\b|\bw/o\b|"
                       r"\bwithout\b|\bturn(?:ing|ed)? off\b|\bswitch(?:ing|ed)? off\b|\bexclud(?:e|es|ed|ing)\b|"
                       r"\breplac(?:e|es|ed|ing)\b", re.I)
_DESC_ABLATION = re.compile(r"ablat|remov|disabl|without|w/o|\bno\b|\bzero\b|=\s*0(?![.\d])|\boff\b|exclud|"
                            r"replac|drop|only|instead", re.I)
# Comparison targets that are not methods: "better than expected", "higher than before".
_NOT_A_METHOD = re.compile(r"^(?:that|those|these|this|it|its|expected|anticipated|before|previously|usual|average|"
                           r"chance|random|any|most|many|several|the (?:others?|rest|same))\b", re.I)
_COMPARE = re.compile(r"\b(?:compared (?:to|with|against)|in comparison (?:to|with)|relative to|outperform\w*|"
                      r"versus|vs\.?|benchmark\w* against|better than|worse than|beat\w*|surpass\w*|"
                      r"improv\w* (?:up)?on)\s+", re.I)
_SELF = re.compile(r"baseline|\bruns?\b|vanilla|unmodified|original|default|standard|reference|control|"
                   r"previous|prior|other|each other|itself|all\b|variants?|configurations?|settings?|"
                   r"\bours?\b|\d|\\cite|chance|random", re.I)
_STOP = set("the a an of to in on for with and or our its their this that these those we by from at as is "
            "are was were be been it which using use".split())
_BASELINE_RUN = (
    # "the baseline (Run 1)", "the baseline: Run 1", "the baseline, i.e. Run 1"; not
    # "compared with the baseline, Run 2 raises ..."
    re.compile(r"baseline\s*(?:[(:]|,\s*i\.e\.,?)\s*\(?\s*\b[Rr]uns?[\s~]*(\d+)", re.I),
    re.compile(r"\b[Rr]uns?[\s~]*(\d+)\s*[),]?\s*\(\s*(?:the\s+|our\s+)?baseline", re.I),
    re.compile(r"\b[Rr]uns?[\s~]*(\d+)[^.]{0,40}?\b(?:serves?|served|acts?|acted|used|is|was)\s+as\s+"
               r"(?:the|our|a)\s+baseline", re.I),
)


def _stems(phrase: str) -> set[str]:
    words = re.findall(r"[a-z][a-z-]+", phrase.lower())
    return {w[:5] for w in words if w not in _STOP and len(w) >= 4}


def _object(view: str, end: int) -> str:
    """The few words after a trigger: what is removed, or compared against."""
    tail = re.split(r"[.;:,()\n]|\b(?:led|leads?|result\w*|reduc\w*|increas\w*|decreas\w*|improv\w*|caus\w*|rais\w*|"
                    r"lower\w*|yield\w*|gives?|hurts?|helps?|chang\w*|makes?|is|are|was|were|has|have|on|in)\b",
                    view[end:end + 80])[0]
    return " ".join(tail.replace("{", " ").replace("}", " ").split()[:6])


def _supported(obj: str, descriptions: list[str], trigger: Callable[[str], bool]) -> bool:
    stems = _stems(obj)
    for d in descriptions:
        if trigger(d) and (not stems or stems & _stems(d)):
            return True
    return False


def _line(tex: str, pos: int) -> int:
    return tex.count("\n", 0, pos) + 1


def _context(view: str, pos: int) -> str:
    a, b = sentence_bounds(view, pos)
    return " ".join(view[a:b].split())[:240]


def check_claims(tex: str, view: str, evidence: Evidence, section: str) -> list[Finding]:
    """Run references, run counts, ablations, comparisons and baseline labels in `tex`."""
    found: list[Finding] = []
    indices = evidence.run_indices()
    existing = ", ".join(f"run_{i}" for i in sorted(indices)) or "none"
    descriptions = [d for _, d in evidence.descriptions]
    # Metric and setting names: "L0 vs. explained variance" compares quantities, not methods.
    known = set().union(*(_stems(" ".join(s.names())) for s in evidence.metrics), set())
    known |= {stem for v in evidence.values if v.source in ("config", "metrics")
              for stem in _stems(v.path.rsplit(".", 1)[-1].replace("_", " "))}

    def add(kind: FindingKind, text: str, pos: int, reason: str) -> None:
        found.append(Finding(section, kind, text, _context(view, pos), reason, (), _line(tex, pos)))

    for ref in run_refs(tex, view):
        missing = [i for i in ref.indices if i not in indices]
        if missing:
            add("run", ref.text, ref.start, f"no run {', '.join(map(str, missing))} exists; the runs are {existing} "
                "(run_0 is the baseline)")
    for claim in count_claims(tex, view):
        if claim.count > len(indices) and not _SPECULATIVE.search(_context(view, claim.start)):
            add("count", claim.text, claim.start, f"only {len(indices)} runs exist ({existing}), "
                f"including the baseline run_0")
    for pattern in _BASELINE_RUN:
        for m in pattern.finditer(view):
            if int(m.group(1)) != 0:
                add("baseline", m.group(0), m.start(), f"the baseline is run_0 (the unmodified template), not "
                    f"run {m.group(1)}: {dict(evidence.descriptions).get('run_' + m.group(1), 'a modified run')}")
    seen: set[int] = set()
    for m in _ABLATION.finditer(view):
        a, b = sentence_bounds(view, m.start())
        sentence = view[a:b]
        if a in seen or _SPECULATIVE.search(sentence):
            continue
        word = m.group(0).lower()
        obj = _object(view, m.end())
        if word == "without" and (re.match(r"\w+ing\b|any\b|loss\b|much\b|sacrific|compromis", obj) or not obj):
            continue
        if not word.startswith("ablat") and not _RESULTISH.search(sentence):
            continue
        trigger = (lambda d: True) if word.startswith("replac") else (lambda d: bool(_DESC_ABLATION.search(d)))
        if not _supported(obj if not word.startswith("ablat") else "", descriptions, trigger):
            seen.add(a)
            what = f"removing/disabling '{obj}'" if not word.startswith("ablat") else "an ablation"
            add("ablation", m.group(0) + (" " + obj if obj else ""), m.start(),
                f"claims {what}, but no run's description shows such an ablation; runs: {existing}")
    for m in _COMPARE.finditer(view):
        a, b = sentence_bounds(view, m.start())
        obj = _object(view, m.end())
        if (_SPECULATIVE.search(view[a:b]) or not obj or _SELF.search(obj) or _NOT_A_METHOD.search(obj)
                or "\\cite" in tex[a:b] or _stems(obj) & known):
            continue
        if not _supported(obj, descriptions, lambda d: True):
            add("comparison", m.group(0) + obj, m.start(),
                f"compares with '{obj}', but no run's description mentions it; only {existing} were run")
    return found
