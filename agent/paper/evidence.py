"""What the paper may claim: the numbers the evaluator and the effective config wrote, and
what can be derived from them.

Evidence is only what a run's `final_info.json` holds under metrics, config, measurements,
timings, gates, data and evaluation (and any section of a result file of another shape):
never the LLM's own prose (the runs' descriptions), the training process's self-report, nor
bookkeeping (commits, hashes, dates). A number equals a
value when the value lies within half a unit of the number's last written digit (`0.95`:
±0.005; `0.005`: ±0.0005, so it does not "match" a metric that is 0), with its sign. Derived
values (a difference, ratio or relative change of one metric between two runs) use interval
arithmetic over the metric's printed precision, because authors compute them from the rounded
numbers they see (1.055 / 0.75 - 1 = 40.7%, not 40.6%).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from agent.paper.mentions import Mention
from agent.paper.spec import MetricSpec, as_specs

Source = Literal["metrics", "config", "measurements", "timings", "gates", "data", "evaluation", "other"]
MatchKind = Literal["direct", "difference", "relative", "ratio"]
_SOURCES = ("metrics", "config", "measurements", "timings", "gates", "data", "evaluation")
_NOT_EVIDENCE = frozenset({"code", "harness", "provenance", "checkpoint", "written_at", "training",
                           "reported", "ignored_from_experiment", "cached_from", "pending"})
"""Bookkeeping (commits, hashes, dates) and the training process's self-report: never evidence.
Any other section (a result file of another shape) is evidence of source `other`."""
# Config keys that give a metric a natural denominator: L0 / dictionary size = fraction active.
_SIZE_KEY = re.compile(r"^(dict_size|d_sae|n_latents|num_latents|dictionary_size|n_features|num_features|d_hidden|latent_dim)$")
_LIST_ITEM = re.compile(r"\.\d+(?:\.|$)")
_TIME_SCALE = {"ms": 1e3, "millisecond": 1e3, "milliseconds": 1e3, "min": 1 / 60, "minute": 1 / 60,
               "minutes": 1 / 60, "h": 1 / 3600, "hr": 1 / 3600, "hrs": 1 / 3600, "hour": 1 / 3600, "hours": 1 / 3600}


@dataclass(frozen=True)
class EvidenceValue:
    """One number of one run's result file."""

    run: str
    """`run_0` (baseline) ... `run_N`."""
    path: str
    """Where it sits, e.g. `metrics.mse`, `config.lr`, `metrics.l0/config.dict_size` (derived)."""
    value: float
    source: Source
    metric: str
    """The metric it belongs to (`mse`, `l0` for `l0/dict_size`); empty for non-metrics."""
    half: float
    """Half a unit of the metric's printed precision (0 for non-metrics)."""

    def describe(self) -> str:
        return f"{self.run} {self.path} = {self.value:.6g}"


@dataclass(frozen=True)
class Match:
    """How a number of the prose is grounded."""

    kind: MatchKind
    values: tuple[EvidenceValue, ...]
    """One value (direct) or the pair it was derived from."""


@dataclass(frozen=True)
class Evidence:
    """Everything the paper may rest on."""

    values: tuple[EvidenceValue, ...]
    runs: tuple[str, ...]
    """Run names, baseline first."""
    descriptions: tuple[tuple[str, str], ...]
    """(run, one-line description of what changed vs the baseline)."""
    metrics: tuple[MetricSpec, ...]

    def run_indices(self) -> frozenset[int]:
        return frozenset(int(r.split("_")[1]) for r in self.runs if re.fullmatch(r"run_\d+", r))

    def description_text(self) -> str:
        return " \n".join(d for _, d in self.descriptions).lower()

    def series(self) -> dict[str, list[EvidenceValue]]:
        """Metric values grouped by path: the same metric across runs."""
        out: dict[str, list[EvidenceValue]] = {}
        for v in self.values:
            if v.source == "metrics":
                out.setdefault(v.path, []).append(v)
        return out


def _half(value: float, fmt: str) -> float:
    """Half a unit of the last digit `format(value, fmt)` prints."""
    if fmt.endswith("d"):
        return 0.5
    m = re.search(r"\.(\d+)([eEfF%gG]?)$", fmt)
    digits, kind = (int(m.group(1)), m.group(2)) if m else (4, "g")
    if kind in ("f", "F"):
        return 0.5 * 10.0 ** -digits
    if kind == "%":
        return 0.5 * 10.0 ** -(digits + 2)
    if value == 0:
        return 0.0
    exp = math.floor(math.log10(abs(value)))
    return 0.5 * 10.0 ** (exp - (digits if kind in ("e", "E") else max(digits, 1) - 1))


def _leaves(node: Any, path: str) -> Iterable[tuple[str, Any]]:
    if isinstance(node, Mapping):
        for k, v in node.items():
            yield from _leaves(v, f"{path}.{k}" if path else str(k))
    elif isinstance(node, (list, tuple)):
        for i, v in enumerate(node):
            yield from _leaves(v, f"{path}.{i}")
    else:
        yield path, node


def _numbers_in_string(text: str) -> list[float]:
    """Numbers written inside a string: `pythia-70m` -> 70 and 7e7, `15.2%` -> 15.2 and 0.152."""
    out = []
    for m in re.finditer(r"(?<![\d.])(\d+(?:\.\d+)?)([kKmMbB%]?)(?![\d])", text):
        out.append(float(m.group(1)))
        if m.group(2) == "%":
            out.append(float(m.group(1)) / 100)
        elif m.group(2):
            out.append(float(m.group(1)) * {"k": 1e3, "m": 1e6, "b": 1e9}[m.group(2).lower()])
    return out


def build_evidence(final_infos: Mapping[str, Mapping[str, Any]], descriptions: Mapping[str, str] | None = None,
                   metrics: Sequence[Any] = ()) -> Evidence:
    """Evidence from `run name -> final_info dict`, the runs' descriptions and the metric specs."""
    specs = as_specs(metrics)
    by_name = {s.name: s for s in specs}
    values: list[EvidenceValue] = []
    runs = sorted(final_infos, key=lambda r: (int(r.split("_")[1]) if re.fullmatch(r"run_\d+", r) else 10**6, r))
    for run in runs:
        info = final_infos[run]
        sizes = {k.rsplit(".", 1)[-1]: float(v) for k, v in _leaves(info.get("config", {}), "")
                 if _SIZE_KEY.match(k.rsplit(".", 1)[-1]) and isinstance(v, (int, float)) and v > 1}
        for path, leaf in _leaves(info, ""):
            top = path.split(".", 1)[0]
            if top in _NOT_EVIDENCE:
                continue
            source: Source = top if top in _SOURCES else "other"  # type: ignore[assignment]
            if isinstance(leaf, str) and source in ("config", "gates"):  # pythia-70m, "12.5% of"
                values += [EvidenceValue(run, path, x, source, "", 0.0) for x in _numbers_in_string(leaf)]
            if isinstance(leaf, bool) or not isinstance(leaf, (int, float)) or not math.isfinite(leaf):
                continue
            if source != "metrics":
                values.append(EvidenceValue(run, path, float(leaf), source, "", 0.0))
                continue
            key = path.split(".", 1)[1] if "." in path else path
            spec = by_name.get(key) or by_name.get(key.rsplit(".", 1)[-1])
            name = spec.name if spec else key.rsplit(".", 1)[-1]
            half = _half(float(leaf), spec.format if spec else ".4g")
            values.append(EvidenceValue(run, path, float(leaf), "metrics", name, half))
            for size_key, size in sizes.items():
                values.append(EvidenceValue(run, f"{path}/config.{size_key}", float(leaf) / size, "metrics",
                                            name, half / size))
    descs = tuple((r, d) for r, d in (descriptions or {}).items())  # for claims, never numbers
    return Evidence(tuple(values), tuple(r for r in runs), descs, specs)


def _token_interval(token: Mention) -> tuple[float, float]:
    """The values the number can stand for: its rounding, widened by a qualifier ("about"),
    open-ended for a bound ("above 0.9")."""
    v, half = token.value, token.half
    eps = 1e-9 * max(1.0, abs(v))
    if token.qualifier == "approx":
        half = max(half, 0.05 * abs(v))
    if token.qualifier == "at_least":
        return v - half - eps, math.inf
    if token.qualifier == "at_most":
        return -math.inf, v + half + eps
    return v - half - eps, v + half + eps


def _overlaps(lo: float, hi: float, a: float, b: float) -> bool:
    return lo <= b and a <= hi


def _direct_scales(token: Mention, v: EvidenceValue) -> list[float]:
    if token.percent:
        return [100.0] + ([1.0] if re.search(r"pct|percent", v.path, re.I) else [])
    if token.unit and (v.source == "timings" or re.search(r"time|_s$|sec|duration", v.path)):
        return [_TIME_SCALE.get(token.unit, 1.0)]
    return [1.0]


def direct_matches(token: Mention, evidence: Evidence, allowed: frozenset[str] | None = None,
                   runs: frozenset[str] | None = None,
                   sources: frozenset[str] | None = None) -> list[Match]:
    """Values equal to the number within its written digits, sign included (`allowed`: the
    metrics the prose names around it; `sources`: which parts of final_info.json count)."""
    lo, hi = _token_interval(token)
    out = []
    for v in evidence.values:
        if runs is not None and v.run not in runs:
            continue
        if sources is not None and v.source not in sources:
            continue
        if allowed is not None and not (
                (v.source == "metrics" and v.metric in allowed)
                or (v.source in ("measurements", "other") and any(name in v.path.lower() for name in allowed))):
            continue  # the prose names a metric: a value of anything else is no support
        if token.sig <= 2 and _LIST_ITEM.search(v.path):
            continue  # a two-digit number matches some entry of a long per-item list by chance
        if "/" in v.path and not (token.percent or 0.01 <= abs(token.value) <= 1):
            continue
        if any(_overlaps(lo, hi, v.value * s, v.value * s) for s in _direct_scales(token, v)):
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
