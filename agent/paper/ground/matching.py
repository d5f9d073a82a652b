"""Matching a number of the paper against the evidence (`agent.paper.ground.evidence`): directly (its
rounding, sign and qualifier; a unit's scale), or as a value derived from two runs (difference,
relative change, ratio, by interval arithmetic over the printed precision), and the nearest
values to name in a finding."""

from __future__ import annotations

import math
import re
from collections.abc import Callable

from agent.paper.ground.evidence import Evidence, EvidenceValue, Match, MatchKind
from agent.paper.ground.quantity import is_duration
from agent.paper.read.mentions import Mention

_LIST_ITEM = re.compile(r"\.\d+(?:\.|$)")
_TIME_SCALE = {"ms": 1e3, "millisecond": 1e3, "milliseconds": 1e3, "min": 1 / 60, "minute": 1 / 60,
               "minutes": 1 / 60, "h": 1 / 3600, "hr": 1 / 3600, "hrs": 1 / 3600, "hour": 1 / 3600, "hours": 1 / 3600}

# How far a number may be from the value it claims, as a share of the number: rounding a
# result to one or two significant digits may not move it more than 5 % ("0.002" is not
# 0.0018), "about" not more than 10 %.
_EXACT_SHARE, _APPROX_SHARE = 0.05, 0.10


def _token_interval(token: Mention) -> tuple[float, float]:
    """The values the number can stand for (see the rule table of `agent.paper.ground.grounding`):
    half a unit of its last digit, but never more than 5 % of it; "about" widens that to 5-10 %;
    "exactly" narrows it to a tenth; a bound ("above 0.9", "below 16%") reaches from the number
    to one unit of its leading digit beyond it ("over 100": 100-200), not to infinity."""
    v, half = token.value, token.half
    eps = 1e-9 * max(1.0, abs(v))
    if v:
        half = min(half, _EXACT_SHARE * abs(v))
    if token.qualifier == "approx":
        half = max(min(token.half, _APPROX_SHARE * abs(v)), _EXACT_SHARE * abs(v))
    if token.qualifier == "exactly":
        half = token.half / 10
    lead = 10.0 ** math.floor(math.log10(abs(v))) if v else token.half
    if token.qualifier == "at_least":
        return v - half - eps, v + lead + eps
    if token.qualifier == "at_most":
        return v - lead - eps, v + half + eps
    return v - half - eps, v + half + eps


def _overlaps(lo: float, hi: float, a: float, b: float) -> bool:
    return lo <= b and a <= hi


def _direct_scales(token: Mention, v: EvidenceValue) -> list[float]:
    """How the value is written in the number's units: a percent of a fraction, a duration in
    another unit of time; nothing when the number is a duration and the value is not one."""
    if token.percent:
        return [100.0] + ([1.0] if re.search(r"pct|percent", v.path, re.I) else [])
    if token.unit:
        return [_TIME_SCALE.get(token.unit, 1.0)] if is_duration(v) else []
    return [1.0]


def direct_matches(token: Mention, evidence: Evidence, allowed: frozenset[str] | None = None,
                   runs: frozenset[str] | None = None, sources: frozenset[str] | None = None,
                   admit: Callable[[EvidenceValue], bool] | None = None) -> list[Match]:
    """Values equal to the number within its written digits, sign included (`allowed`: the
    metrics the prose names around it; `sources`: which parts of final_info.json count;
    `admit`: which values are of the quantity the number is about, `agent.paper.ground.quantity`)."""
    lo, hi = _token_interval(token)
    out = []
    for v in evidence.values:
        if runs is not None and v.run not in runs:
            continue
        if sources is not None and v.source not in sources:
            continue
        if allowed is not None and not (
                (v.source in ("metrics", "statistics") and v.metric in allowed)
                or (v.source in ("measurements", "other") and any(name in v.path.lower() for name in allowed))):
            continue  # the prose names a metric: a value of anything else is no support
        if token.sig <= 2 and _LIST_ITEM.search(v.path):
            continue  # a two-digit number matches some entry of a long per-item list by chance
        if "/" in v.path and not (token.percent or 0.01 <= abs(token.value) <= 1):
            continue
        if any(_overlaps(lo, hi, v.value * s, v.value * s) for s in _direct_scales(token, v)) and \
                (admit is None or admit(v)):
            out.append(Match("direct", (v,)))
    return out


def _derived_ranges(token: Mention, a: EvidenceValue, b: EvidenceValue) -> list[tuple[MatchKind, float, float]]:
    x, y = sorted((abs(a.value), abs(b.value)))
    hx, hy = (a.half, b.half) if abs(a.value) <= abs(b.value) else (b.half, a.half)
    out: list[tuple[MatchKind, float, float]] = []
    diff, dh = y - x, hx + hy
    if token.ratio:
        if x - hx > 0:
            out.append(("ratio", (y - hy) / (x + hx), (y + hy) / (x - hx)))
        return out
    if not token.percent:
        return [("difference", max(0.0, diff - dh), diff + dh)]
    if y <= 1.5:
        out.append(("difference", 100 * max(0.0, diff - dh), 100 * (diff + dh)))
    if token.points:
        return out
    if token.change in ("up", "none") and x - hx > 0:
        out.append(("relative", 100 * ((y - hy) / (x + hx) - 1), 100 * ((y + hy) / (x - hx) - 1)))
    if token.change in ("down", "none") and y - hy > 0:
        out.append(("relative", 100 * (1 - (x + hx) / (y - hy)), 100 * (1 - (x - hx) / (y + hy))))
    return out


def derived_matches(token: Mention, evidence: Evidence, allowed: frozenset[str] | None = None,
                    runs: frozenset[str] | None = None) -> list[Match]:
    """Differences, ratios and relative changes of one metric between two runs that fit the
    number (its magnitude: a change may be written either way round)."""
    lo, hi = _token_interval(token)
    if token.value < 0:
        lo, hi = -hi, -lo
    out = []
    for series in evidence.series().values():
        if allowed is not None and series[0].metric not in allowed:
            continue
        for i, a in enumerate(series):
            for b in series[i + 1:]:
                if a.run == b.run or (runs is not None and a.run not in runs and b.run not in runs):
                    continue
                for kind, r_lo, r_hi in _derived_ranges(token, a, b):
                    if _overlaps(lo, hi, r_lo, r_hi) and not (kind == "difference" and r_hi == 0):
                        out.append(Match(kind, (a, b)))
    return out


def closest(token: Mention, evidence: Evidence, allowed: frozenset[str] | None = None, n: int = 3) -> list[str]:
    """The `n` values nearest to the token (relative distance), described for the LLM.

    Metrics the text names come first, then other metrics and the configuration, then the rest.
    """
    target = token.value / 100 if token.percent else token.value

    def rank(v: EvidenceValue) -> tuple[int, float]:
        tier = (0 if v.source == "metrics" and (allowed is None or v.metric in allowed) else
                1 if v.source in ("metrics", "config") else 2)
        return tier, abs(v.value - target) / max(abs(target), 1e-12)

    pool = [v for v in evidence.values if ("/" not in v.path or (token.percent and abs(v.value) >= 0.005))
            and not _LIST_ITEM.search(v.path)]
    pool.sort(key=rank)
    return [v.describe() + (f" ({100 * v.value:.4g}%)" if token.percent else "") for v in pool[:n]]


def nearest_derived(token: Mention, evidence: Evidence, allowed: frozenset[str], n: int = 2) -> list[str]:
    """The changes between runs of the named metrics nearest to the token, described."""
    found: list[tuple[float, str]] = []
    for series in evidence.series().values():
        if series[0].metric not in allowed or "/" in series[0].path:
            continue
        for i, a in enumerate(series):
            for b in series[i + 1:]:
                lo, hi = sorted((a, b), key=lambda v: abs(v.value))
                if abs(lo.value) == 0 or lo.value == hi.value:
                    continue
                x, y = abs(lo.value), abs(hi.value)
                if token.ratio:
                    value, text = y / x, f"x{y / x:.3g}"
                elif token.percent:
                    value = 100 * (y - x) / (x if token.change != "down" else y)
                    text = f"{'+' if token.change != 'down' else '-'}{value:.3g}%"
                else:
                    value, text = y - x, f"{y - x:.4g}"
                where = f"{lo.metric} {lo.run} -> {hi.run}" if token.change != "down" else f"{hi.metric} {hi.run} -> {lo.run}"
                found.append((abs(value - abs(token.value)), f"{where}: {text}"))
    return [text for _, text in sorted(found)[:n]]
