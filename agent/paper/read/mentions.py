"""Number mentions in one sentence of read text: what each number is, as written.

`mentions(text)` finds the numbers a reader sees in a sentence that `agent.paper.read.reading` has
already turned into plain text (digits, scientific notation, `10^-3`, numbers in words), and
keeps how each is written: sign, the digits that set its tolerance, percent / percentage
points / factor, a multiplier (`2 million`), a time unit, a qualifier ("about", "above",
"exactly"), direction words around it, whether it is said to be a difference ("by 0.06", "a
gap of", "+0.04", "8% lower", percentage points), the noun it counts (`488 steps`), the setting
it is given to (`lambda = 0.5`, "a learning rate of"), and the other end of a range
(`1.44-1.63`). Structure (Figure 3, Section 2), run references, ordinals, versions and numbers
glued to names (`gemma-2-2b`) are not mentions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from agent.paper.read.texnum import run_refs_in

Qualifier = Literal["exact", "approx", "at_least", "at_most", "exactly"]
"""`exact`: written plainly; `exactly`: "exactly", "precisely"."""
Change = Literal["up", "down", "none"]

_WORD_UNITS = {w: i for i, w in enumerate("zero one two three four five six seven eight nine ten "
                                          "eleven twelve thirteen fourteen fifteen sixteen "
                                          "seventeen eighteen nineteen".split())}
_WORD_TENS = {w: 10 * i for i, w in enumerate("_ _ twenty thirty forty fifty sixty seventy eighty "
                                              "ninety".split()) if w != "_"}
_WORD_NUMBER = re.compile(
    r"\b(?:(" + "|".join(_WORD_TENS) + r")(?:[-\s](" + "|".join(list(_WORD_UNITS)[1:10]) + r"))?|("
    + "|".join(_WORD_UNITS) + r"))(?:\s+(hundred|thousand|million|billion))?\b", re.I)
_NUMBER = re.compile(
    r"(?P<sign>(?<![\w.)\]])[-−–](?=\d))?"
    r"(?P<int>\d{1,3}(?:(?:\{,\}|,)\d{3})+|\d+)(?P<frac>\.\d+)?"
    r"(?:\s*(?:×|·|\\times)\s*10\s*\^\s*\{?\s*(?P<exp>[-−]?\d+)(?:\s*\})?|[eE](?P<eexp>[-+]?\d+)(?![\w]))?")
_POWER = re.compile(r"(?<![\d.])10\s*\^\s*\{?\s*(?P<exp>[-−]?\d+)(?:\s*\})?")
_STRUCTURE = re.compile(r"\b(?:section|sec\.|§|figures?|figs?\.|tables?|tab\.|equations?|eqs?\.|"
                        r"appendix|algorithm|alg\.|lines?|chapter|page|p\.|footnote|item|part|"
                        r"stage|phase|contribution|question|hypothesis|point|step|version|v)\s*\(?$",
                        re.I)
_APPROX = re.compile(r"(?:about|around|approximately|approx\.?|roughly|nearly|almost|circa|~|≈|"
                     r"some)\s*$", re.I)
_AT_LEAST = re.compile(r"(?:above|over|more than|greater than|higher than|at least|exceeds?|"
                       r"exceeding|beyond|>|≥)\s*=?\s*$", re.I)
_AT_MOST = re.compile(r"(?:below|under|less than|fewer than|lower than|at most|up to|within|<|≤)"
                      r"\s*=?\s*$", re.I)
_EXACTLY = re.compile(r"(?:exactly|precisely)\s*$", re.I)
# Said to be a difference: "by 0.06", "a gap of 0.02", "loses 0.016", "+0.037", "-0.05" before
# it; "8% lower", "15% MSE increase", "6.1 percentage points" after it.
_DIFF_BEFORE = re.compile(r"(?:\bby|\b(?:difference|gap|change|improvement|increase|decrease|reduction|drop|"
                          r"gain|delta|margin|decline|rise|boost|lift|degradation|effect|shift)s?"
                          r"(?:\s+(?:of|is|was|were|=|:))?|\b(?:loses|lost|gains|gained)|Δ\s*\w*\s*=|"
                          r"\bDelta\b[^,;]{0,20}=|[+])\s*(?:about|around|approximately|roughly|nearly|only|just|"
                          r"~|≈)?\s*$", re.I)
_DIFF_AFTER = re.compile(r"\s*%?\s*(?:(?:percentage\s+)?points?\b|pp\b|pts\b)?\s*(?:[\w-]+\s+){0,2}?"
                         r"(?:higher|lower|more|less|larger|smaller|better|worse|greater|fewer|improvement|"
                         r"increase|decrease|reduction|drop|gain|difference|gap|change|rise|decline|boost)\b", re.I)
# The noun a number counts: "488 steps", "2 million tokens", "4096 latents".
_NOUN = re.compile(r"\s*(?:thousand|million|billion|[kKMB])?\s*(?:[a-z-]+\s+)?(tokens|steps|latents|features|"
                   r"sequences|rows|runs|seeds|groups|epochs|parameters|layers|dimensions|examples|samples|"
                   r"batches|iterations|updates|blocks|heads|words|characters|prompts)\b")
_UP = re.compile(r"increas|higher|\brise|\brose|\brais|grow|grew|\bgain|\bmore\b|larger|\bup\b|"
                 r"boost|improv", re.I)
_DOWN = re.compile(r"decreas|lower|\bdrop|\bfell|\bfall|reduc|declin|\bless\b|smaller|\bdown\b|"
                   r"\bcut\b|shrink|fewer", re.I)
_MULT = {"thousand": 1e3, "k": 1e3, "million": 1e6, "m": 1e6, "billion": 1e9, "b": 1e9}
_SETTING = re.compile(r"(?:([A-Za-z][\w\s\-]{0,30}?|[A-Za-z]+)\s*(?:=|:=)\s*|"
                      r"\b(of|at|to|with|is|was|are|were|equals)\s+)$")


@dataclass(frozen=True)
class Mention:
    """A number a reader of the paper sees."""

    text: str
    """As read (`-0.79`, `91.3%`, `3 × 10^-4`, `ninety`)."""
    value: float
    """Signed, with any multiplier applied (`10 million` -> 1e7); a percent stays 91.3."""
    half: float
    """Half a unit of its last written digit, in the units of `value`: the tolerance."""
    percent: bool
    points: bool
    ratio: bool
    integer: bool
    sig: int
    """Significant digits written."""
    qualifier: Qualifier
    change: Change
    unit: str
    """A time unit written after it (`s`, `min`, `h`, `ms`), else empty."""
    start: int
    """Offsets in the read text."""
    end: int
    range_with: int | None = None
    """Index (in the sentence's mentions) of the other end of a range (`1.44-1.63`)."""
    setting: str = ""
    """The name it is set to, when written as a setting (`lambda = 0.5`, `lr of 3e-4`)."""
    difference: bool = False
    """Said to be a difference ("by 0.06", "+0.04", "a gap of", "8% lower", points)."""
    noun: str = ""
    """The noun it counts, written right after it (`488 steps` -> `steps`), else empty."""
    formula: bool = False
    """A term of a formula in math (`1 - \\sum ...`, `\\frac{1}{2}`): notation, not a claim."""


def _sig(digits: str) -> int:
    return max(1, len(digits.replace(".", "").lstrip("0")))


def _qualifier(before: str) -> Qualifier:
    tail = before[-24:].rstrip(" ($")
    if _AT_LEAST.search(tail):
        return "at_least"
    if _AT_MOST.search(tail):
        return "at_most"
    if _EXACTLY.search(tail):
        return "exactly"
    return "approx" if _APPROX.search(tail) else "exact"


def _change(context: str) -> Change:
    up, down = bool(_UP.search(context)), bool(_DOWN.search(context))
    return "up" if up and not down else "down" if down and not up else "none"


def _clause(text: str, pos: int) -> tuple[int, int]:
    seps = [m.start() for m in re.finditer(r",(?!\d{3})|[;:()]", text)]
    return (max([s + 1 for s in seps if s < pos], default=0),
            min([s for s in seps if s >= pos], default=len(text)))


def mentions(text: str, offset: int = 0) -> list[Mention]:
    """The number mentions of one sentence of read text (run references left out)."""
    taken = [(r.start, r.end) for r in run_refs_in(text)]
    raw: list[tuple[int, int, float, float, bool, int, str]] = []  # start, end, value, half, integer, sig, text
    for m in _POWER.finditer(text):
        power = int(m.group("exp").replace("−", "-"))
        raw.append((m.start(), m.end(), 10.0 ** power, 0.5 * 10.0 ** power, False, 1, m.group(0)))
    for m in _NUMBER.finditer(text):
        if any(a <= m.start("int") < b for a, b in taken):
            continue
        digits = m.group("int").replace("{,}", "").replace(",", "")
        frac = m.group("frac") or ""
        decimals = len(frac) - 1 if frac else 0
        value, half = float(digits + frac), 0.5 * 10.0 ** -decimals
        exp = m.group("exp") or m.group("eexp")
        if exp:
            scale = 10.0 ** int(exp.replace("−", "-"))
            value, half = value * scale, half * scale
        if m.group("sign"):
            value = -value
        raw.append((m.start(), m.end(), value, half, not frac and not exp, _sig(digits + frac), m.group(0)))
    for m in _WORD_NUMBER.finditer(text):
        tens, unit, small, mult = m.group(1), m.group(2), m.group(3), m.group(4)
        value = float(_WORD_TENS[tens.lower()] + (_WORD_UNITS[unit.lower()] if unit else 0)) if tens \
            else float(_WORD_UNITS[small.lower()])
        if mult:
            value *= {"hundred": 100, "thousand": 1e3, "million": 1e6, "billion": 1e9}[mult.lower()]
        raw.append((m.start(), m.end(), value, 0.5, True, len(str(int(value)).rstrip("0")) or 1,
                    m.group(0)))
    kept: list[tuple[int, int, float, float, bool, int, str]] = []
    for item in sorted(raw, key=lambda r: (r[0], -(r[1] - r[0]))):  # longest first at a start
        if not kept or item[0] >= kept[-1][1]:
            kept.append(item)
    found: list[Mention] = []
    for start, end, value, half, integer, sig, written in kept:
        before, after = text[max(0, start - 30):start], text[end:end + 30]
        if _STRUCTURE.search(before.rstrip(" ~")):
            continue  # Figure 3, Section 2, line 5, step 4
        if re.search(r"[A-Za-z_]$|[A-Za-z][-/]$|\d[/]$", before) and not re.search(r"[=:]\s*$", before):
            continue  # part of a name: gemma-2-2b, W_2, pythia-70m, x/2
        if re.match(r"(?:st|nd|rd|th|D)\b|[./]\d|[A-Za-z]*_", after):
            continue  # ordinals, 2D, versions (2.2.1), dates
        percent = bool(re.match(r"\s*(?:%|percent\b|per cent\b)", after))
        points = bool(re.match(r"\s*%?\s*(?:percentage\s+)?(?:points?|pp)\b", after))
        ratio = bool(re.match(r"\s*(?:x|×|times|-?fold)(?![A-Za-z])", after)
                     or re.search(r"factor of\s*$", before))
        mult = re.match(r"\s*(thousand|million|billion|[kKMB])(?![A-Za-z])", after)
        unit = re.match(r"\s*(ms|milliseconds?|s|sec|seconds?|min|minutes?|h|hrs?|hours?)\b", after)
        if not (mult or ratio or percent or unit) and re.match(r"[A-Za-z]", after) and \
                not _WORD_NUMBER.fullmatch(written):
            continue  # glued to a unit or a name: 16GB, 3rd, 2b
        scale = _MULT[mult.group(1).lower()] if mult else 1.0
        left, right = _clause(text, start)
        setting = _SETTING.search(before)
        name = ""
        if re.match(r"\s*(?:[-+*/·×^]|\\frac)", after):
            setting = None  # `EV = 1 - ...`: a term of a formula, not a value set
        noun = re.search(r"\b(layer|block|seed|epochs?|heads?|width|top-k|k)\s*$", before, re.I)
        if noun:  # `layer 19`, `seed 42`: a setting named right before it
            name = noun.group(1)
        elif setting and setting.group(1):  # `lambda = 0.5`: the symbol before `=`
            symbol = setting.group(1).replace("_", " ").split()
            name = symbol[-1] if symbol else ""
        elif setting:  # `a learning rate of 3e-4`: the words before `of`
            words = re.findall(r"[A-Za-z][\w\-]*", before[:setting.start()])
            name = " ".join(words[-2:])
        # written with its sign: "+0.037", "-0.05" (not the second half of "+/-")
        signed = bool(re.search(r"\+\s*$", before)) or (value < 0 and not re.search(r"\+/\s*$", before))
        counted = _NOUN.match(after)
        found.append(Mention(
            text=written + ("%" if percent and "%" in after[:3] else ""),
            value=value * scale, half=half * scale, percent=percent or points, points=points,
            ratio=ratio, integer=integer, sig=sig, qualifier=_qualifier(before),
            change=_change(text[max(left, start - 40):min(right, end + 25)]),
            unit=unit.group(1) if unit else "", start=offset + start, end=offset + end, setting=name,
            difference=bool(points or signed or _DIFF_BEFORE.search(before) or _DIFF_AFTER.match(after)),
            noun=counted.group(1) if counted else ""))
    return _ranges(text, offset, found)


def _ranges(text: str, offset: int, found: list[Mention]) -> list[Mention]:
    """Link the two ends of `1.44-1.63`, `1.44--1.63`, `from 1.44 to 1.63`, `between a and b`:
    each end is a mention of its own (a range written as `a-b` is not a negative `-b`)."""
    out = list(found)
    for i in range(len(out) - 1):
        a, b = out[i], out[i + 1]
        gap = text[a.end - offset:b.start - offset]
        before = text[:a.start - offset][-20:]
        dash = b.value < 0 and text[b.start - offset] in "-−–" and re.fullmatch(r"[-–—]?", gap)
        if dash or re.fullmatch(r"\s*(?:--|–|—|-)\s*", gap) or (
                gap.strip() == "to" and re.search(r"from\s*$", before)) or (
                gap.strip() == "and" and re.search(r"between\s*$", before)):
            if dash:
                b = Mention(**{**b.__dict__, "value": -b.value, "text": b.text.lstrip("-−–"), "difference": False})
            out[i] = Mention(**{**a.__dict__, "range_with": i + 1})
            out[i + 1] = Mention(**{**b.__dict__, "range_with": i})
    return out
