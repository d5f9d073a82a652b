"""The numbers a reader of the paper sees, the runs it names, and the run counts it claims.

On the prose view (`agent.paper.prose`), sub- and superscripts and command names are blanked
too; the numbers left are claims. Numbers that name a figure, section or run are structure:
run references are returned apart, the rest dropped. Each number keeps how it was written
(rounding, percent, factor, qualifier, direction words), which decides what it may match.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from agent.paper.prose import blank, blank_spans, clause_bounds, prose_view, sentence_bounds

Qualifier = Literal["exact", "approx", "bound"]
Change = Literal["up", "down", "none"]

_INLINE_MATH = re.compile(r"(?<![\\$])\$(?!\$)(.+?)(?<!\\)\$|\\\((.+?)\\\)", re.S)
_SCI = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?)\s*(?:\\times|\\cdot|×)\s*10\s*\^\s*\{?\s*([-−]?\d+)\s*\}?"
                  r"|(?<![\w.])10\s*\^\s*\{\s*([-−]?\d+)\s*\}|(?<![\w.])(\d+(?:\.\d+)?)[eE]([-+]?\d+)(?![\w.])")
_NUMBER = re.compile(r"(?<![\d.])(\d{1,3}(?:(?:\{,\}|,)\d{3})+|\d+)(\.\d+)?(?![\d])")
_STRUCTURE = re.compile(r"(?:section|sec\.|§|figure|fig\.|figs\.|table|tab\.|equation|eq\.|eqs\.|appendix|"
                        r"algorithm|alg\.|line|step|chapter|page|p\.|footnote|item|part|stage|phase|"
                        r"contribution|question|hypothesis|point)\s*\(?$", re.I)
_APPROX = re.compile(r"(?:about|around|approximately|approx\.?|roughly|nearly|almost|circa|~|\\sim|"
                     r"\\approx|≈|some)\s*$", re.I)
_BOUND = re.compile(r"(?:above|below|over|under|more than|less than|fewer than|at least|at most|up to|"
                    r"exceeds?|exceeding|beyond|within|greater than|higher than|lower than|"
                    r"<|>|\\leq?|\\geq?|\\lt|\\gt|≤|≥)\s*=?\s*$", re.I)
_UP = re.compile(r"increas|higher|\brise|\brose|\brais|grow|grew|\bgain|\bmore\b|larger|\bup\b|boost", re.I)
_DOWN = re.compile(r"decreas|lower|\bdrop|\bfell|\bfall|reduc|declin|\bless\b|smaller|\bdown\b|\bcut\b|shrink|fewer", re.I)
_RUN_REF = re.compile(r"\b([Rr]uns?)(?:\s|~|\\,|\\ |\\?_|\{|\})*(\d+)((?:\s*(?:,|and|&|--|-|–|—|to|through|or)"
                      r"\s*(?:[Rr]uns?(?:\s|~|\\?_)*)?\d+)*)")
WORDS = {w: i for i, w in enumerate("zero one two three four five six seven eight nine ten eleven twelve "
                                    "thirteen fourteen fifteen sixteen seventeen eighteen nineteen twenty".split())}
_COUNT = re.compile(r"\b(" + "|".join(WORDS) + r"|\d+)\s+(?:(?:complete|full|training|experimental|additional|"
                    r"separate|independent|different|distinct|total|new|further|successful|main)\s+){0,2}"
                    r"(runs|experiments|trials|configurations|variants|ablations)\b", re.I)
_MULT = {"thousand": 1e3, "k": 1e3, "million": 1e6, "m": 1e6, "billion": 1e9, "b": 1e9}


@dataclass(frozen=True)
class NumberToken:
    """A number a reader of the paper sees."""

    text: str
    """As written in the source, e.g. `91.3\\%`."""
    value: float
    """Its magnitude with any multiplier applied (`10 million` -> 1e7); a percent stays 91.3."""
    half: float
    """Half a unit of its last printed digit, in the same units as `value`."""
    percent: bool
    """Written as a percentage."""
    points: bool
    """Written as percentage points."""
    ratio: bool
    """Written as a factor (`2.5x`, `3 times`, `-fold`)."""
    integer: bool
    """Written without decimals or exponent."""
    sig: int
    """Significant digits written (`0.98` -> 2, `97.3` -> 3): how much a match can mean."""
    qualifier: Qualifier
    """Approximate (`about 0.9`), a bound (`above 0.9`), or exact."""
    change: Change
    """Direction words near it: up (increase, higher), down (drop, lower), none."""
    unit: str
    """A time unit written after it (`s`, `min`, `h`, `ms`), else empty."""
    start: int
    end: int


@dataclass(frozen=True)
class RunRef:
    """`Run 3`, `Runs 2--4`, `run_5` in the prose."""

    text: str
    indices: tuple[int, ...]
    start: int
    end: int


@dataclass(frozen=True)
class CountClaim:
    """`eight runs`, `3 experiments`."""

    text: str
    count: int
    start: int


def _mask_math_scripts(text: str) -> str:
    def scripts(m: re.Match[str]) -> str:
        inner = re.sub(r"[_^]\s*(\{[^{}]*\}|\\[A-Za-z]+|.)", lambda s: blank(s.group(0)), m.group(0))
        return inner
    return _INLINE_MATH.sub(scripts, text)


def _qualifier(before: str) -> Qualifier:
    tail = before[-24:].rstrip("$ (~")
    if _BOUND.search(tail):
        return "bound"
    return "approx" if _APPROX.search(tail) else "exact"


def _change(context: str) -> Change:
    up, down = bool(_UP.search(context)), bool(_DOWN.search(context))
    return "up" if up and not down else "down" if down and not up else "none"


def _sig(digits: str) -> int:
    return max(1, len(digits.replace(".", "").lstrip("0")))


def numbers(tex: str, view: str | None = None) -> list[NumberToken]:
    """Every number in the prose of `tex` (structure and run references left out)."""
    view = prose_view(tex) if view is None else view
    consumed = [(r.start, r.end) for r in run_refs(tex, view)]
    found: list[tuple[int, int, float, float, bool, int]] = []  # start, end, value, half, integer, sig
    for m in _SCI.finditer(view):
        if m.group(3) is not None:
            mant, exp = "1", m.group(3)
        else:
            mant, exp = (m.group(1), m.group(2)) if m.group(1) else (m.group(4), m.group(5))
        exp_i = int(exp.replace("−", "-"))
        decimals = len(mant.split(".")[1]) if "." in mant else 0
        found.append((m.start(), m.end(), float(mant) * 10.0 ** exp_i, 0.5 * 10.0 ** (exp_i - decimals), False,
                      _sig(mant)))
    view = _mask_math_scripts(blank_spans(view, [(a, b) for a, b, *_ in found] + consumed))
    suffixes = view  # still has \\times, \\%: what follows a number says what it is
    view = re.sub(r"\\[A-Za-z]+|\\[,;:! ]", lambda m: blank(m.group(0)), view)
    for m in _NUMBER.finditer(view):
        before = view[max(0, m.start() - 24):m.start()]
        if re.search(r"(?:[A-Za-z_]|[A-Za-z][-/]|\d[-/])$", before) or _STRUCTURE.search(before.rstrip(" ~")):
            continue
        digits = m.group(1).replace("{,}", "").replace(",", "")
        frac = m.group(2) or ""
        decimals = len(frac) - 1 if frac else 0
        found.append((m.start(), m.end(), float(digits + frac), 0.5 * 10.0 ** -decimals, not frac, _sig(digits + frac)))
    tokens = []
    for start, end, value, half, integer, sig in sorted(found):
        after = suffixes[end:end + 30]
        if re.match(r"(?:st|nd|rd|th|D)\b|\.\d", after) or re.search(r"(?:\bv|version\s)$", view[max(0, start - 9):start]):
            continue  # ordinals, 2D, versions (2.2.1, v1.3)
        percent = bool(re.match(r"\s*(?:\\%|%|\s*percent|\s*per cent)", after))
        points = bool(re.match(r"\s*(?:\\%|%)?\s*(?:percentage\s+)?(?:points?|pp)\b", after))
        ratio = bool(re.match(r"\s*(?:x|×|\$?\\times\$?|times|-?fold)(?![A-Za-z])", after)
                     or re.search(r"factor of\s*$", view[max(0, start - 20):start]))
        mult = re.match(r"\s*(thousand|million|billion|[kKMB])(?![A-Za-z])", after)
        unit = re.match(r"\s*(ms|milliseconds?|s|sec|seconds?|min|minutes?|h|hrs?|hours?)\b", after)
        if not (mult or ratio) and re.match(r"[A-Za-z]", after):
            continue  # glued to a unit or a name: 16GB, 2mm, 3rd
        scale = _MULT[mult.group(1).lower()] if mult else 1.0
        left, right = clause_bounds(view, start, sentence_bounds(view, start))
        sign = re.match(r"\s*\\?%", after) if percent else None
        tokens.append(NumberToken(
            text=tex[start:end + (sign.end() if sign else 0)].strip(),
            value=value * scale, half=half * scale, percent=percent or points, points=points, ratio=ratio,
            integer=integer, sig=sig, qualifier=_qualifier(view[max(0, start - 30):start]),
            change=_change(view[max(left, start - 40):min(right, end + 25)]),
            unit=unit.group(1) if unit else "", start=start, end=end))
    return tokens


def run_refs(tex: str, view: str | None = None) -> list[RunRef]:
    """Every `Run N` / `Runs N--M` / `run_N` in the prose."""
    view = prose_view(tex) if view is None else view
    refs = []
    for m in _RUN_REF.finditer(view):
        indices: list[int] = [int(m.group(2))]
        rest = m.group(3) or ""
        for sep, num in re.findall(r"(,|and|&|--|-|–|—|to|through|or)\s*(?:[Rr]uns?(?:\s|~|\\?_)*)?(\d+)", rest):
            n = int(num)
            if sep in ("--", "-", "–", "—", "to", "through") and n > indices[-1] and n - indices[-1] < 50:
                indices.extend(range(indices[-1] + 1, n + 1))
            else:
                indices.append(n)
        refs.append(RunRef(tex[m.start():m.end()], tuple(indices), m.start(), m.end()))
    return refs


def count_claims(tex: str, view: str | None = None) -> list[CountClaim]:
    """`eight runs`, `3 experiments`: how many runs the prose says there were."""
    view = prose_view(tex) if view is None else view
    out = []
    for m in _COUNT.finditer(view):
        word = m.group(1).lower()
        out.append(CountClaim(m.group(0), WORDS[word] if word in WORDS else int(word), m.start()))
    return out


