"""The grounding rules as data: which rule applies to a number, and what grounds it.

`RULES` is an ordered tuple of `Rule(name, mention, grounded, applies, check)`; the first rule
whose `applies` holds for a number decides it (`decide`): `check` returns None when the number
is grounded, else the finding. The rule table of `agent.paper.ground.grounding`'s docstring and
of `docs/grounding-rules.md` is generated from the same tuple (`table()`; a test keeps them
equal):

    python -m agent.paper.ground.rules > docs/grounding-rules.md
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cached_property

from agent.paper.ground.evidence import Evidence, Match
from agent.paper.ground.findings import Finding
from agent.paper.ground.matching import closest, derived_matches, direct_matches, nearest_derived
from agent.paper.ground.naming import ordinary
from agent.paper.ground.quantity import Quantity
from agent.paper.read.mentions import Mention
from agent.paper.read.reading import Sentence


@dataclass(frozen=True)
class Facts:
    """One number of the paper and what the checker knows about it."""

    m: Mention
    s: Sentence
    evidence: Evidence
    section: str
    line: int
    quantity_of: Callable[[], Quantity]
    subject: tuple[str, frozenset[str]] | None
    """The run(s) the text says the number belongs to (`agent.paper.ground.grounding`)."""

    @cached_property
    def q(self) -> Quantity:
        """What the number is said to be (`agent.paper.ground.naming`), read once when needed."""
        return self.quantity_of()

    @property
    def runs(self) -> frozenset[str] | None:
        return self.subject[1] if self.subject else None

    def finding(self, kind: str, reason: str, hints: Iterable[str]) -> Finding:
        context = " ".join(self.s.text.replace("\uE000", "<macro>").split())[:240]
        return Finding(self.section, kind, self.m.text, context, reason, tuple(hints), self.line)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Rule:
    name: str
    mention: str
    """The numbers it applies to, as the table says it."""
    grounded: str
    """What grounds them, as the table says it."""
    applies: Callable[[Facts], bool]
    check: Callable[[Facts], Finding | None]
    """None: grounded; else the finding."""


def _grounded(_: Facts) -> None:
    return None


def _is_level(f: Facts) -> bool:
    """`95% CI`, `95% confidence interval`, `a 95% level`, where the runs' intervals have that level."""
    m, after = f.m, f.s.text[f.m.end - f.s.start:]
    if not (m.percent and re.match(r"\s*(?:%|percent)?[\s-]*(?:CIs?|confidence|credible|intervals?|level)\b",
                                   after, re.I)):
        return False
    return any(v.path.endswith("level") and abs(100 * v.value - m.value) <= m.half for v in f.evidence.values
               if v.source == "statistics")


def _why_other_run(matches: list[Match], subject: str) -> str:
    where = "; ".join(sorted({mt.values[0].describe() if mt.kind == "direct" else
                              f"{mt.kind} of {mt.values[0].path} between {mt.values[0].run} and "
                              f"{mt.values[1].run}" for mt in matches})[:3])
    return f"the text attributes it to {subject}, but it matches {where}"


def _check_value(f: Facts) -> Finding | None:
    """A value of the quantity (a duration, a counted noun, or anything but a difference or a
    harness value when nothing is named), of its run if the text names one."""
    m, ev, q = f.m, f.evidence, f.q
    if direct_matches(m, ev, runs=f.runs, admit=q.admits):
        return None
    if f.subject and direct_matches(m, ev, admit=q.admits):
        return f.finding("attribution", _why_other_run(direct_matches(m, ev, admit=q.admits), f.subject[0]),
                         closest(m, ev, None, n=2))
    what = f"no value of {q.name}" if q.kind in ("count", "duration") else "no value of any result file"
    return f.finding("number", f"matches {what} within its written digits (±{m.half:.2g}{'%' if m.percent else ''}) "
                     "and names no metric whose change between runs it could be; cite results through the "
                     "results.tex macros", closest(m, ev, None, n=3))


def _derived(f: Facts, runs: frozenset[str] | None = None) -> list[Match]:
    """Changes of the named metrics between two runs, when the number is said to be one."""
    return derived_matches(f.m, f.evidence, f.q.metrics, runs) if f.q.difference or f.m.ratio else []


def _check_metric(f: Facts) -> Finding | None:
    """A value of a named metric (its seed statistics included), or its change between two
    runs where the number is said to be a change."""
    m, ev, q = f.m, f.evidence, f.q
    if direct_matches(m, ev, runs=f.runs, admit=q.admits) or _derived(f, f.runs):
        return None
    elsewhere = direct_matches(m, ev, admit=q.admits) + _derived(f)
    if f.subject and elsewhere:
        own = [v for v in closest(m, ev, q.metrics, n=50) if v.split(" ", 1)[0] in f.subject[1]][:2]
        return f.finding("attribution", _why_other_run(elsewhere, f.subject[0]), own)
    changed = m.percent or m.ratio or m.change != "none"
    hints = [*closest(m, ev, q.metrics, n=2), *(nearest_derived(m, ev, q.metrics) if changed else [])]
    other = direct_matches(m, ev, None, f.runs)
    if other:
        reason = f"the text says it is {q.name}, but it only matches {other[0].values[0].describe()}"
    else:
        reason = (f"matches no value of {q.name} within its written digits (±{m.half:.2g}"
                  f"{'%' if m.percent else ''}), nor a difference, ratio or relative change of "
                  f"{q.name} between two runs it is said to be; cite results through the results.tex macros")
    return f.finding("number", reason, hints)


def _check_setting(f: Facts) -> Finding | None:
    """A config value of the setting its name names (of its run; any run if none is named)."""
    m, ev, q = f.m, f.evidence, f.q
    if direct_matches(m, ev, runs=f.runs, admit=q.admits):
        return None
    hints = closest(m, ev, None, n=3)
    if f.subject and direct_matches(m, ev, admit=q.admits):
        return f.finding("attribution", f"the setting '{q.name}' is attributed to {f.subject[0]}, but only "
                         "another run's configuration has it", hints)
    if q.keys is not None and not q.keys:
        return f.finding("setting", f"'{q.name}' = {m.text}: no run's configuration has a setting named "
                         f"'{q.name}': write only settings a run's config has", hints)
    keys = ", ".join(sorted({k.rsplit(".", 1)[-1] for k in q.keys})) if q.keys else "any setting"
    return f.finding("setting", f"'{q.name}' = {m.text} is not the value of {keys} in the effective "
                     "configuration of any run it could describe: write only settings a run's config has", hints)


RULES: tuple[Rule, ...] = (
    Rule("formula", "a term of a formula in math (`1 - \\sum`)", "always: notation, not a claim",
         lambda f: f.m.formula, _grounded),
    Rule("level", "the level of an interval (`95% CI`)", "the runs' intervals (they have that level)",
         _is_level, _grounded),
    Rule("duration", "written with a time unit (`41.2 s`)",
         "a timing its clause names (\"harvesting\"), else any timing",
         lambda f: f.q.kind == "duration", _check_value),
    Rule("setting", "a setting written as one (`lambda = 0.5`, `a learning rate of`), or a key named right "
         "before it (`Learning rate & 3e-4`)",
         "a config value of the keys its name names (`learning rate` = `lr`), of its run (any run if none "
         "named); a symbol no key has: any training setting; a name no key has: none",
         lambda f: f.q.kind == "setting", _check_setting),
    Rule("ordinary", "a year, or a small count (<= 10, or a number word), no metric named in its clause",
         "always", lambda f: f.q.kind in ("count", "value") and ordinary(f.m), _grounded),
    Rule("count", "counting a noun (`488 steps`, `4096 latents`)", "a value of the keys of that noun "
         "(`steps`, `hidden_dim`)", lambda f: f.q.kind == "count", _check_value),
    Rule("metric", "a metric named right after it, before it in its clause, by its parenthesis' or colon's "
         "label, or (else) in its sentence",
         "a value of those metrics (their seed statistics included), or of the settings its sentence names; "
         "a change of them between two runs only if it is said to be a change",
         lambda f: f.q.kind == "metric", _check_metric),
    Rule("value", "nothing named (`15.2% of latents are dead`)",
         "any value but a difference between runs or an evaluation-harness value",
         lambda f: True, _check_value),
)


def decide(facts: Facts) -> Finding | None:
    """The first rule that applies decides the number: None (grounded) or its finding."""
    return next(r for r in RULES if r.applies(facts)).check(facts)


def table(rules: Iterable[Rule] = RULES) -> str:
    """The rules as the fixed-width table of the docs."""
    widths = (10, 46, 52)
    lines = [f"| {'rule':<{widths[0]}} | {'the mention':<{widths[1]}} | {'grounded when it equals':<{widths[2]}} |",
             "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    for r in rules:
        cells = [textwrap.wrap(text, w) or [""] for text, w in zip((r.name, r.mention, r.grounded), widths,
                                                                   strict=True)]
        for i in range(max(len(c) for c in cells)):
            row = [c[i] if i < len(c) else "" for c in cells]
            lines.append("| " + " | ".join(f"{text:<{w}}" for text, w in zip(row, widths, strict=True)) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    print("# The grounding rules\n\nGenerated from `agent/paper/ground/rules.py` "
          "(`python -m agent.paper.ground.rules > docs/grounding-rules.md`); the first rule that applies "
          "to a number decides it.\n")
    print(table())
