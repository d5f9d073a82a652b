"""Which quantity a number of a sentence is said to be: what the sentence names for it.

`quantity_of(mention, sentence, context)` reads the words around one number of a read sentence
(`agent.paper.read.reading`) and returns its `agent.paper.ground.quantity.Quantity`, looking in this order:
a duration (a time unit after it); a setting written as one (`lambda = 0.5`, `a learning rate
of`); a metric named right after it (`0.93 explained variance`, `a 3.2% drop in EV`); the noun
it counts (`488 steps`); a metric named before it in its clause, or by the label its
parenthesis or colon follows (`explained variance (from 93% to 97.3%)`, `KL divergence:
0.9986`); a config key named right before it (`Learning rate & 3e-4`); what it says it is of
(`15.2% of latents are dead`: a value, nothing named); the quantity of the number before it
in its clause when only connecting words lie between (`0.004 in the baseline and 0.0 in Runs
1--4`, `40.7% (0.75 to 1.055)`); a metric named in its clause before it, else in its sentence
(with the settings the sentence names), else by a results macro there; else nothing (a value).
Only the text of the number's own stretch counts: a name after the next number is that
number's (`0.04 targeting 320 active features`: 0.04 is not an L0).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, replace

from agent.paper.ground import vocabulary
from agent.paper.ground.evidence import Evidence
from agent.paper.ground.quantity import (
    Keys,
    Quantity,
    counted_keys,
    keys_named,
    names_evaluation,
    says_difference,
    setting_keys,
    timing_keys,
    words,
)
from agent.paper.read.mentions import Mention
from agent.paper.read.reading import Sentence

_SETTING_WORDS = re.compile(r"\b(rates?|sizes?|coefficients?|penalty|penalties|weights?|factors?|"
                            r"seeds?|epochs?|warm-?up|decay|alpha|beta|gamma|lambda|kappa|tau|"
                            r"thresholds?|temperature|momentum|eps|epsilon|layer|block|heads?|"
                            r"width|top-k)$", re.I)


def normalized(text: str) -> str:
    text = text.lower().replace("\\_", " ").replace("_", " ")
    return re.sub(r"\s+", " ", re.sub(r"[${}\\]", " ", text)).strip()


@dataclass(frozen=True)
class Context:
    evidence: Evidence
    phrases: tuple[tuple[str, str], ...]
    """(metric, phrase) for every metric name, label and alias."""
    macro_runs: dict[str, tuple[str, str]]
    """results.tex macro -> (run, metric)."""
    keys: Keys
    """The settings' keys of the evidence, with their words."""


def names_in(text: str, phrases: Iterable[tuple[str, str]]) -> frozenset[str]:
    norm = normalized(text)
    return frozenset(m for m, p in phrases if re.search(rf"(?<![a-z0-9]){re.escape(p)}(?![a-z0-9])", norm))


def phrases_of(evidence: Evidence) -> tuple[tuple[str, str], ...]:
    names = {s.name: s.names() for s in evidence.metrics}
    for v in evidence.values:
        if v.source == "metrics" and v.metric not in names:
            names[v.metric] = (v.metric.replace("_", " "),)
    return tuple((metric, normalized(p)) for metric, ps in names.items() for p in ps if len(normalized(p)) >= 2)


def _is_setting(name: str, ctx: Context) -> bool:
    """Whether `name` (the words before `=` or `of`) names a setting: a config key, a known
    alias, or a noun of settings ("L1 coefficient", "learning rate"), not a metric."""
    norm = normalized(name)
    if not norm or re.fullmatch(r"(?:\d+ )?ci|.*\binterval", norm):
        return False  # "95% CI 0.032 to 0.042": the bounds of an interval
    keys = {path.rsplit(".", 1)[-1].replace("_", " ").lower() for path, _ in ctx.keys.settings
            if path.startswith("config.")}
    if norm in keys or norm in vocabulary.known().setting_phrases or _SETTING_WORDS.search(norm):
        return True
    return len(norm) <= 2 and not names_in(name, ctx.phrases)  # a symbol: `k = 32`


def ordinary(m: Mention) -> bool:
    """A small count, or a year (not a count of something: `2000 latents`)."""
    if m.percent or m.ratio or not m.integer or m.value < 0:
        return False
    return not m.unit and (m.value <= 10 or (1950 <= m.value <= 2035 and not m.noun))


def _segment(s: Sentence, m: Mention, phrases: Iterable[tuple[str, str]]) -> tuple[str, str, str]:
    """(its clause up to it; the clause's text before it from the previous number and that
    number's own noun or label on; the text right after it, up to the next number): where its
    quantity is named."""
    rel, rel_end = m.start - s.start, m.end - s.start
    seps = [x.start() for x in _SEPARATOR.finditer(s.text)]
    left = max([i + 1 for i in seps if i < rel], default=0)
    right = min([i for i in seps if i >= rel_end] + [rel_end + 30, len(s.text)])
    prev = _previous(s, m)
    start = max(left, prev.end - s.start if prev else 0)
    nxt = min([x.start - s.start for x in s.mentions if x.start - s.start >= rel_end], default=len(s.text))
    before = s.text[start:rel]
    if prev and prev.noun and start == prev.end - s.start:  # "488 steps of 4096 activations": "steps" is 488's
        before = re.sub(rf"^\s*(?:thousand|million|billion|[kKMB])?\s*(?:[a-z-]+\s+)?{prev.noun}\b", "", before)
    elif prev and start == prev.end - s.start:  # "90.9% feature utilization while ... KL divergence of"
        before = _unlabelled(before, phrases)
    return s.text[left:rel], before, s.text[rel_end:min(right, nxt)]


def _unlabelled(before: str, phrases: Iterable[tuple[str, str]]) -> str:
    """The text before a number without the previous number's own label at its start
    (`90.9% feature utilization while maintaining a KL divergence score of`)."""
    norm = normalized(before)
    for _, p in phrases:
        found = re.match(rf"(?:%\s*|percent\s+)?(?:{_NOT_ITS}[a-z-]+\s+)?{re.escape(p)}(?![a-z0-9])", norm)
        if found:
            return norm[found.end():]
    return before


def _previous(s: Sentence, m: Mention) -> Mention | None:
    earlier = [x for x in s.mentions if x.end <= m.start]
    return earlier[-1] if earlier else None


_TARGET = re.compile(r"\btarget(?:s|ed|ing)?\b|\baim(?:s|ed|ing)?\s+(?:at|for)\b", re.I)
_SEPARATOR = re.compile(r"[;:()]|,(?!\d{3})")
# Between two numbers of one quantity: "0.004 in the baseline and 0.0 in Runs 1--4", "0.75 to 1.055".
_CONNECTS = re.compile(r"(?:\s|%|~|--|–|-|\b(?:in|for|on|at|of|and|or|to|from|than|vs|versus|the|its|their|"
                       r"baseline|runs?|respectively|against|compared|with)\b|\.|\d)*", re.I)
# Words between a number and a metric's name that make the name another number's: "0.75 and
# KL divergence dropping", "0.9 for MSE".
_NOT_ITS = (r"(?!(?:and|or|but|while|with|from|to|in|of|for|at|on|by|than|vs|versus|whereas|the|a|an|its|"
            r"their|this|that|which|would|is|was|are|were)\b)")


_CHANGE = (r"(?:drop|increase|decrease|reduction|rise|gain|improvement|change|loss|degradation|difference|gap|"
           r"decline|boost|fall|lift)s?")


def _named_after(text: str, phrases: Iterable[tuple[str, str]]) -> frozenset[str]:
    """Metrics named right after a number (`0.93 explained variance`, `12% dead latents`, `a 3.2%
    drop in explained variance`)."""
    norm = normalized(text)
    return frozenset(m for m, p in phrases
                     if re.match(rf"(?:%\s*|percent\s+)?(?:(?:percentage\s+)?points?\s+)?(?:{_NOT_ITS}[a-z-]+\s+|"
                                 rf"{_CHANGE}\s+(?:in|of)\s+(?:the\s+)?)?{re.escape(p)}(?![a-z0-9])", norm))


def _opened_by(s: Sentence, m: Mention, ctx: Context) -> tuple[str, frozenset[str], Mention | None]:
    """What names a number that opens a parenthesis or follows a label's colon: (the label's
    text; the metrics named right before it, `explained variance (from 93% to 97.3%)`, `KL
    divergence: 0.9986`; or the number right before it, `by 40.7% (0.75 to 1.055)`)."""
    head = s.text[:m.start - s.start].rstrip()
    opener = re.search(r"[(:](?:\s*[a-z]+){0,2}\s*$", head)
    if not opener:
        return "", frozenset(), None
    text = head[:opener.start()].rstrip()
    earlier = [x for x in s.mentions if x.end - s.start <= len(text)]
    if earlier and re.fullmatch(r"\s*%?", text[earlier[-1].end - s.start:]):
        return "", frozenset(), earlier[-1]
    label = text[max([x.end() for x in _SEPARATOR.finditer(text)], default=0):][-60:]
    return label, names_in(label, ctx.phrases), None


def _described(after: str) -> bool:
    """Whether the words after a number say what it is of (`15.2% of latents are dead`)."""
    return bool(re.match(r"\s*%?\s*(?:percent\s+)?of\s+(?:the\s+|all\s+|its\s+|their\s+)?"
                         r"(?!runs?\b|baseline\b)[a-z]", after, re.I))


def quantity_of(m: Mention, s: Sentence, ctx: Context) -> Quantity:
    """What the number is said to be (`agent.paper.ground.quantity`), in this order: a setting written
    as one; a metric named right after it; the noun it counts; a metric named before it in its
    clause; a config key named right before it; what the previous number of its clause is; a
    metric named in its clause, its sentence, or by a results macro there."""
    ev = ctx.evidence
    clause, before, after = _segment(s, m, ctx.phrases)  # clause: up to the number
    partner = s.mentions[m.range_with] if m.range_with is not None else None
    base = {"difference": says_difference(m, s.text[:m.start - s.start], s.text, partner),
            "evaluation": names_evaluation(s.text), "sentence": words(s.text)}
    if m.unit:  # a duration: "Training took 95.1 s", "harvesting took 41.2 s"
        return Quantity("duration", m.unit, keys=timing_keys(clause + after, ev), **base)  # type: ignore[arg-type]
    if m.setting and _is_setting(m.setting, ctx):
        keys = setting_keys(m.setting, ctx.keys)
        return Quantity("setting", m.setting, keys=_factor(keys, m, ctx), **base)  # type: ignore[arg-type]
    label, labelled, owner = _opened_by(s, m, ctx)
    named = _named_after(after, ctx.phrases) or (frozenset() if m.noun else names_in(before, ctx.phrases) or labelled)
    if not named and m.noun and counted_keys(m.noun):
        return Quantity("count", m.noun, **base)  # type: ignore[arg-type]
    if named and _TARGET.search(before):  # "targeting 320 active features": a target setting, or the metric
        targets = frozenset(path for path, key in ctx.keys.config if "target" in key)
        return Quantity("metric", " / ".join(sorted(named)), metrics=named, keys=targets, **base)  # type: ignore[arg-type]
    # a setting named only around it (not written as one) does not make a small count or a
    # number word ("sum to one, so a token ...") a setting, nor a share of it ("the last 20% of the steps")
    loose = named or ordinary(m) or _described(after)
    keys = frozenset() if loose else keys_named(before, ctx.keys) or keys_named(label, ctx.keys)
    if keys:
        return Quantity("setting", _words_of(keys), keys=_factor(keys, m, ctx), **base)  # type: ignore[arg-type]
    if not named and (m.noun or _described(after)):
        return Quantity("value", m.noun, **base)  # type: ignore[arg-type]
    prev = _previous(s, m)
    if not named and prev is not None and (owner is prev or _CONNECTS.fullmatch(before)):
        inherited = quantity_of(prev, s, ctx)  # "0.004 in the baseline and 0.0 in Runs 1--4"
        if inherited.kind == "metric" or (inherited.kind == "setting" and not ordinary(m)):
            return replace(inherited, **base)  # type: ignore[arg-type]
    macro_metrics = frozenset(ctx.macro_runs[name][1] for _, name in s.macros if name in ctx.macro_runs
                              and ctx.macro_runs[name][1])
    near = named or names_in(clause, ctx.phrases)
    allowed = near or names_in(s.text, ctx.phrases) or macro_metrics
    settings = frozenset() if near else keys_named(s.text, ctx.keys)  # "peaks at 9e-4 ... at higher learning rates"
    if not allowed or (ordinary(m) and not near):
        return Quantity("value", "", **base)  # type: ignore[arg-type]
    return Quantity("metric", " / ".join(sorted(allowed)), metrics=allowed, keys=settings, **base)  # type: ignore[arg-type]


def _factor(keys: frozenset[str] | None, m: Mention, ctx: Context) -> frozenset[str] | None:
    """A setting written as a multiple ("a dictionary of eight times the width") may be the
    factor the configuration records (a key naming a factor, an expansion or a multiplier)."""
    if not m.ratio or keys is None:
        return keys
    return keys | frozenset(path for path, key in ctx.keys.config if {"factor", "expansion", "multiplier"} & key)


def _words_of(keys: frozenset[str]) -> str:
    return " / ".join(sorted({k.rsplit(".", 1)[-1] for k in keys}))


