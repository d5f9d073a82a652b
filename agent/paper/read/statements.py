"""A sentence read for a statistical claim: which runs, which metric, which way.

`SentenceView` locates in one sentence of `agent.paper.read.reading` the metrics it names (names,
labels and aliases of the template specs; the metric of a cited results macro), the runs it
names (`Run 2`, `the baseline`, a results macro's run), whether each run is named as the one
compared with ("than the baseline", "relative to Run 1", "from 131.5 (baseline)"), and its
clauses. `cues` finds the direction words ("lowers", "higher", "improves", "outperforms",
"no effect", "comparable"), each with its negation ("does not lower"); `cue_metrics` and
`pairs` say which metric and which (run, reference) pairs a direction word is about, or
nothing when the text does not determine them ("our method lowers L0"). The rules that
decide the claims are `agent.paper.ground.verdicts`'.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from agent.paper.build.results_tex import metric_word, number_word
from agent.paper.ground.evidence import Evidence
from agent.paper.ground.matching import direct_matches
from agent.paper.read.reading import PLACEHOLDER, Sentence

Claim = Literal["up", "down", "better", "worse", "same"]

CUES = re.compile(
    r"(?P<same>\bno\s+(?:(?:statistically\s+)?(?:significant|detectable|measurable|noticeable|meaningful|clear|"
    r"discernible|appreciable|real)\s+)?(?:effect|change|difference|impact)s?\b|"
    r"\b(?:unchanged|unaffected|comparable|similar(?:ly)?|indistinguishable|on\s+par|match(?:es|ed|ing)?)\b|"
    r"\bnot\s+(?:an?\s+)?(?:statistically\s+|significantly\s+|detectably\s+|measurably\s+)?(?:significant|detectable|"
    r"different|distinguishable)\b|\bwithin\s+(?:the\s+)?noise\b|"
    r"\b(?:does|do|did)\s+not\s+(?:significantly\s+|detectably\s+|measurably\s+|noticeably\s+)?"
    r"(?:change|affect|alter|impact|move)\b)|"
    r"(?P<up>\b(?:increas(?:e|es|ed|ing)|rais(?:e|es|ed|ing)|higher|larger|greater|ris(?:e|es|ing|en)|rose|"
    r"grow(?:s|n|ing)?|grew|boost(?:s|ed|ing)?|climb(?:s|ed|ing)?)\b)|"
    r"(?P<down>\b(?:decreas(?:e|es|ed|ing)|lower(?:s|ed|ing)?|reduc(?:e|es|ed|ing|tions?)|smaller|"
    r"drop(?:s|ped|ping)?|fall(?:s|en|ing)?|fell|declin(?:e|es|ed|ing)|cuts?|shrink(?:s|ing)?|shrank|"
    r"halv(?:e|es|ed|ing))\b)|"
    r"(?P<better>\b(?:improv(?:e|es|ed|ing|ements?)|better|outperform(?:s|ed|ing)?|beats?|"
    r"surpass(?:es|ed|ing)?|superior)\b)|"
    r"(?P<worse>\b(?:worse(?:ns?|ned)?|degrad(?:e|es|ed|ing|ation)|hurt(?:s|ing)?|harm(?:s|ed|ing)?|"
    r"underperform(?:s|ed|ing)?|inferior)\b)|"
    r"(?P<more>\bmore\b)|(?P<less>\b(?:less|fewer)\b)", re.I)
# Direction words that compare nothing between runs: "lower is better", "the lower bound".
_NOT_A_CLAIM = re.compile(r"\b(?:higher|lower|larger|smaller|up|down|left|right)(?:\s+and\s+to\s+the\s+(?:left|right))?"
                          r"[\s-]+(?:is|=|means)[\s-]+(?:better|worse)\b|"
                          r"\bthe\s+(?:higher|lower|larger|smaller)\s+the\s+(?:better|worse)\b|"
                          r"\b(?:lower|upper|higher)\s+(?:bound|end|limit|edge|tail)s?\b|\broom\s+for\s+improvement\b|"
                          r"\b(?:better|worse|higher|lower|more|less|larger|smaller)\s+than\s+"
                          r"(?:expected|predicted|anticipated|hypothesi[sz]ed|before|chance|random|usual)\b", re.I)
STATISTICAL_SAME = re.compile(r"no\s+(?:statistically\s+)?(?:significant|detectable|discernible)|indistinguishable|"
                               r"not\s+(?:an?\s+)?(?:statistically\s+)?(?:significant|detectable|distinguishable)|within\s+(?:the\s+)?"
                               r"(?:noise|interval)|(?<!not\s)includes?\s+(?:zero|0)\b", re.I)
NEGATION = re.compile(r"(?:\bnot|n't|\bno|\bnever|\bneither|\bnor|\bfail(?:s|ed)?\s+to|\bwithout|\bcannot)"
                       r"\s+(?:[a-z]+ly\s+|any\s+|a\s+)?$", re.I)
CONDITIONAL = re.compile(r"\b(?:if|would|could|might|may|whether|should|future)\b|"
                          r"\b(?:hypothesi[sz]e[sd]?|predict(?:s|ed)?|expect(?:s|ed)?|posit(?:s|ed)?|conjecture[sd]?|"
                          r"aim(?:s|ed)?|hope[sd]?)\s+(?:that|to)\b|\bhypothes[ie]s\b|\bH\s?\d+\b", re.I)
# Before the run a claim is compared with: "than (that of) the baseline", "over Run 1", "from
# 210.3 in the baseline", "from 131.5 (baseline)", "outperforms Run 1".
_REFERENCE = re.compile(r"(?:\bthan|\boutperform\w*|\bbeats?|\bsurpass\w*|\bunderperform\w*|\bexceed\w*|"
                        r"\btrail\w*|\bimprov\w*\s+(?:up)?on|\bcompared\s+(?:to|with|against)|\brelative\s+to|"
                        r"\bin\s+comparison\s+(?:to|with)|\bvs\.?|\bversus|\bover|\bagainst|\bfrom|\bunlike|"
                        r"\bwith\s+respect\s+to)\s+(?:(?:that|those)\s+of\s+)?(?:[-−]?\d[\d.,]*\s*%?\s*)?"
                        r"(?:\(\s*|(?:in|for|of|on|at|by)\s+)?(?:the\s+|an?\s+|our\s+)?$", re.I)
# Between two runs named in one role: "Run 2 and Run 3", "the baseline's 30.1 and Run 1's".
_LISTED = re.compile(r"(?:\s|,|'s|&|\band\b|\bor\b|\bnor\b|\bboth\b|\bthe\b|\bas\s+well\s+as\b|"
                     r"[-−]?\d[\d.,]*\s*%?)*", re.I)
# After a reference, the same run again: "from \BaselineLZero{} in the baseline", "131.5 (baseline)".
_APPOSITION = re.compile(r"[\s(]*(?:(?:in|for|of|on|by|at)\s+)?(?:the\s+)?", re.I)
# What may open a clause before its direction word: ", a 4.1x reduction", ", far lower than".
_OPENS = re.compile(r"[\s\W\d]*(?:(?:and|a|an|the|much|far|slightly|significantly|substantially|considerably|"
                    r"somewhat|marginally|[\d.,]+\s*(?:%|×|x|times)?)\s+)*", re.I)
_CLAUSE_BREAK = re.compile(r";|,(?!\d{3})|[()]|\b(?:but|while|whereas|although|though|yet)\b", re.I)


@dataclass(frozen=True)
class Cited:
    """A results macro cited in the sentence, decoded: `RunTwoTopOneAccDelta` -> run_2, top1_acc, Delta."""

    pos: int
    name: str
    run: str
    metric: str
    suffix: str
    """What follows run and metric: empty for a value, `Delta`, `DeltaCI`, `Verdict`, `PM`, ..."""
    hypothesis: str = ""
    """The hypothesis a `\\Hypothesis<i>...` macro is about (`H1`)."""


@dataclass(frozen=True)
class RunMention:
    """Runs named in the sentence: `Runs 2--4`, "the baseline", a results macro's value."""

    start: int
    """Offsets in the sentence's text."""
    end: int
    runs: frozenset[str]
    reference: bool
    """Named as what the subject is compared with ("than the baseline")."""
    named: bool
    """A run reference or "the baseline" in words (not a results macro's value)."""


@dataclass(frozen=True)
class Cue:
    """A direction word: "lowers", "higher", "improves", "no effect", "comparable"."""

    start: int
    """Offsets in the sentence's text."""
    end: int
    claim: Claim
    """up / down: of the raw value; better / worse: by the metric's direction; same: no change."""
    negated: bool
    """"does not lower", "no improvement", "without hurting"."""


class MacroNames:
    """results.tex macro names decoded by the naming scheme of `agent.paper.build.results_tex`."""

    def __init__(self, evidence: Evidence, known: Mapping[str, tuple[str, str]]):
        self.known = known
        self.hypotheses = {"Hypothesis" + number_word(i): h.id for i, h in enumerate(evidence.hypotheses or (), 1)}
        self.prefixes = {("Baseline" if r == "run_0" else "Run" + number_word(int(r[4:]))): r
                         for r in evidence.runs if re.fullmatch(r"run_\d{1,3}", r)}
        names = {s.name for s in evidence.metrics} | {k for info in evidence.infos.values()
                                                      for k in (info.get("metrics") or {})}
        self.words = {metric_word(n): n for n in names if re.search(r"[A-Za-z0-9]", n)}

    def decode(self, pos: int, name: str) -> Cited | None:
        for prefix, hypothesis in self.hypotheses.items():  # `\HypothesisOneId`: the first of the verdicts file
            if re.fullmatch(prefix + r"[A-Z][A-Za-z]*", name):
                return Cited(pos, name, "", "", name[len(prefix):], hypothesis)
        if name.startswith(("Hypothesis", "Num", "Setup")):
            return None
        best: tuple[int, str, str, str] | None = None
        for prefix, run in self.prefixes.items():
            if not name.startswith(prefix):
                continue
            for word, metric in self.words.items():
                if name.startswith(prefix + word) and (best is None or len(prefix + word) > best[0]):
                    best = (len(prefix + word), run, metric, name[len(prefix + word):])
        if best is not None:
            return Cited(pos, name, best[1], best[2], best[3])
        run, metric = self.known.get(name, ("", ""))
        return Cited(pos, name, run, metric, "") if run and metric else None


def _blank(text: str, pattern: re.Pattern[str]) -> str:
    return pattern.sub(lambda m: " " * len(m.group(0)), text)


class SentenceView:
    """One sentence with its metrics, runs, cited macros and clauses located."""

    def __init__(self, s: Sentence, evidence: Evidence, patterns: Sequence[tuple[str, re.Pattern[str]]],
                 macros: MacroNames):
        self.s, self.text = s, s.text
        self.cited = [c for pos, name in s.macros if (c := macros.decode(pos - s.start, name)) is not None]
        self.metrics = self._metrics(patterns)
        self.breaks = [m.start() for m in _CLAUSE_BREAK.finditer(self.text)]
        self.mentions = self._runs(evidence)

    def _metrics(self, patterns: Sequence[tuple[str, re.Pattern[str]]]) -> list[tuple[int, int, str]]:
        found: list[tuple[int, int, str]] = []
        for metric, pattern in patterns:  # longest phrase first; a shorter one inside it is not another
            for m in pattern.finditer(self.text):
                if not any(a < m.end() and m.start() < b for a, b, _ in found):
                    found.append((m.start(), m.end(), metric))
        found += [(c.pos, c.pos + 1, c.metric) for c in self.cited]
        return sorted(found)

    def _runs(self, evidence: Evidence) -> list[RunMention]:
        spans: list[tuple[int, int, frozenset[str], bool]] = []
        for r in self.s.runs:
            runs = frozenset(f"run_{i}" for i in r.indices) & frozenset(evidence.runs)
            if runs:
                spans.append((r.start - self.s.start, r.end - self.s.start, runs, True))
        if "run_0" in evidence.runs:
            spans += [(m.start(), m.end(), frozenset({"run_0"}), True)
                      for m in re.finditer(r"\bbaseline\b", self.text, re.I)]
        spans += [(c.pos, c.pos + 1, frozenset({c.run}), False) for c in self.cited if c.suffix == ""]
        spans.sort(key=lambda x: x[:2])
        out: list[RunMention] = []
        for start, end, runs, named in spans:
            before = self.text[max(out[-1].end if out else 0, start - 40):start]
            reference = bool(_REFERENCE.search(before))
            if out and out[-1].reference and not reference:  # "than the baseline's 30.1 and Run 1's 36.0"
                gap, rest = self.text[out[-1].end:start], self.text[end:self.clause(end)[1]]
                reference = bool(_APPOSITION.fullmatch(gap) or (_LISTED.fullmatch(gap) and not CUES.search(rest)))
            out.append(RunMention(start, end, runs, reference, named))
        return out

    def clause(self, pos: int) -> tuple[int, int]:
        """The clause around `pos`: between `;`, `,`, brackets, "but", "while", "whereas"."""
        return (max([b + 1 for b in self.breaks if b < pos], default=0),
                min([b for b in self.breaks if b >= pos], default=len(self.text)))

    def metrics_between(self, a: int, b: int) -> list[tuple[int, int, str]]:
        return [m for m in self.metrics if a <= m[0] and m[1] <= b]

    def context(self) -> str:
        """The sentence for a finding, each results macro written as its name."""
        chars = list(self.text)
        for c in reversed(self.cited):
            chars[c.pos:c.pos + 1] = ["\\" + c.name]
        return " ".join("".join(chars).replace(PLACEHOLDER, "<macro>").split())[:240]


def metric_patterns(evidence: Evidence) -> list[tuple[str, re.Pattern[str]]]:
    """(metric, pattern) for every name, label and alias of a metric, longest phrase first."""
    names: dict[str, set[str]] = {s.name: set(s.names()) for s in evidence.metrics}
    for info in evidence.infos.values():
        for key in info.get("metrics") or {}:
            names.setdefault(key, {key.lower(), key.replace("_", " ").lower()})
    phrases = sorted({(p, m) for m, ps in names.items() for p in ps if len(p) >= 2}, key=lambda x: -len(x[0]))
    return [(m, re.compile(r"(?<![A-Za-z0-9])" + r"[\s_~\-]+".join(map(re.escape, re.split(r"[\s_]+", p)))
                           + r"(?![A-Za-z0-9])", re.I)) for p, m in phrases]


def cues(view: SentenceView) -> list[Cue]:
    """The direction words of the sentence, in order (not bounds: "less than 5%")."""
    text = _blank(view.text, _NOT_A_CLAIM)
    out = []
    for m in CUES.finditer(text):
        kind = m.lastgroup or ""
        after = text[m.end():view.clause(m.start())[1]]
        than = re.match(r"\s+(?:\S+\s+){0,4}?than\s+(\S+)", after)
        if than and re.match(r"[-−]?\d", than.group(1)):
            continue  # "less than 5%", "higher than 0.9": a bound, not a comparison of runs
        if kind in ("more", "less"):
            if not than:
                continue  # "more latents": only "fewer dead latents than Run 1" compares
            kind = "up" if kind == "more" else "down"
        left = view.clause(m.start())[0]
        before = text[left:m.start()]
        negated = bool(NEGATION.search(before)) and not re.search(r"\bnot\s+only\s+$", before, re.I)
        if negated and kind == "same":
            continue  # "not comparable": a difference of no stated direction
        if kind in ("better", "worse") and re.match(r"(?:outperform|surpass|beat|underperform)\w*\s+by\b",
                                                    text[m.start():m.end() + 4], re.I):
            kind = "worse" if kind == "better" else "better"  # "is outperformed by Run 1": the other way round
        out.append(Cue(m.start(), m.end(), kind, negated))  # type: ignore[arg-type]
    return out


def cue_metrics(view: SentenceView, found_cues: list[Cue], i: int) -> list[tuple[int, int, str]]:
    """The metrics a direction word is about: after it up to the next one in its clause, else
    before it back to the previous one; a clause that opens with it (", lower than Run 1's")
    is about the last metric of the clause before. A results macro's metric comes first: "raises
    the largest value to \\RunOneMaxScore" is about max_score."""
    cue = found_cues[i]
    left, right = view.clause(cue.start)
    nxt = min([c.start for c in found_cues[i + 1:]] + [right])
    found = view.metrics_between(cue.end, max(nxt, cue.end))
    if not found:
        prev = max([c.end for c in found_cues[:i]] + [left])
        found = view.metrics_between(min(prev, cue.start), cue.start)[-1:]
    if not found and _OPENS.fullmatch(view.text[left:cue.start]):
        found = [m for m in view.metrics if m[1] <= left][-1:]
    cited = [m for m in found if m[1] - m[0] == 1 and view.text[m[0]] == PLACEHOLDER]
    return cited or found


def _subjects(view: SentenceView, cue: Cue) -> list[RunMention]:
    """The runs a claim is made of: the nearest run named before the direction word in its clause
    (with those listed with it: "Run 2 and Run 3 lower"), else the first after it ("lower in Run
    2"); then the same in the whole sentence."""
    left, right = view.clause(cue.start)
    subjects = [m for m in view.mentions if not m.reference]
    for a, b in ((left, right), (0, len(view.text))):
        before = [m for m in subjects if a <= m.start and m.end <= cue.start
                  and not re.search(r":|\s[-–—]\s", view.text[m.end:cue.start]) and cue.start - m.end <= 150]
        after = [m for m in subjects if cue.end <= m.start < b]
        group = before[::-1] or after
        if group:
            out = [group[0]]
            for m in group[1:]:
                gap = view.text[min(m.end, out[-1].end):max(m.start, out[-1].start)]
                if not _LISTED.fullmatch(gap):
                    break
                out.append(m)
            return out
    return []


def pairs(view: SentenceView, cue: Cue, evidence: Evidence, metric: str) -> list[tuple[str, str]]:
    """(subject, reference) run pairs the claim is about; empty when the text does not say."""
    chosen = _subjects(view, cue)
    subjects: set[str] = set().union(*(m.runs for m in chosen))
    if not subjects:  # "L0 drops by \RunTwoLZeroDelta": the difference macro names the pair
        return [(c.run, "run_0") for c in view.cited if c.suffix.startswith("Delta") and c.metric == metric]
    # the reference: named in the claim's clause, or in the clause its subject was named in, or
    # in a clause that names only a reference ("Compared with Run 1, Run 3 lowers L0")
    clauses = {view.clause(cue.start), *(view.clause(m.start) for m in chosen)}
    refs: set[str] = set().union(*(m.runs for m in view.mentions if m.reference and view.clause(m.start) in clauses))
    if not refs:
        refs = set().union(*(m.runs for m in view.mentions if m.reference and not any(
            not o.reference and view.clause(o.start) == view.clause(m.start) for o in view.mentions)))
    if not refs and cue.claim == "same" and "run_0" not in subjects and len(subjects) >= 2:
        ordered = sorted(subjects)  # "Runs 2 and 3 reach comparable MSE"
        return [(a, b) for i, a in enumerate(ordered) for b in ordered[i + 1:]]
    if not refs and "run_0" in subjects and len(subjects) > 1:
        refs, subjects = {"run_0"}, subjects - {"run_0"}  # "the baseline and Run 2 reach comparable MSE"
    if not refs:
        stated = _stated_runs(view, evidence, metric, subjects)
        if stated is None:
            return []  # its numbers are another run's, and which one is not clear
        if stated:
            refs = stated
        elif "run_0" in evidence.infos and any(m.named for m in view.mentions if m.runs & subjects):
            refs = {"run_0"}  # "Run 2 lowers L0": a run is a change to the baseline
    return sorted((s, r) for s in subjects for r in refs if s != r and s in evidence.infos and r in evidence.infos)


def _stated_runs(view: SentenceView, evidence: Evidence, metric: str, subjects: set[str]) -> set[str] | None:
    """The other run whose value of `metric` the sentence states ("cuts the dead fraction from
    11.8% to 6.1%": 11.8% is run_1's): empty when it states none, None when it is unclear."""
    others: list[frozenset[str]] = []
    for m in view.s.mentions:
        runs = frozenset(mt.values[0].run for mt in direct_matches(m, evidence, frozenset({metric}),
                                                                   sources=frozenset({"metrics"})))
        if runs and not runs & subjects:
            others.append(runs)
    if not others:
        return set()
    single = set().union(*(r for r in others if len(r) == 1))
    return single if len(single) == 1 else None
