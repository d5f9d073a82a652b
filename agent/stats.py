"""Statistics the loop decides with, never the LLM: seed summaries, comparisons, verdicts.

- `summarize(values)`: mean, sample standard deviation, n, and the 95% confidence interval of
  the mean (Student's t with n - 1 degrees of freedom); fewer than 2 values: no interval.
- `compare(run, baseline, direction)`: the difference of means (run - baseline) with its 95%
  interval by Welch's t (unequal variances, Welch-Satterthwaite degrees of freedom, as
  `scipy.stats.ttest_ind(equal_var=False)`), and a verdict from a closed set: `better` or
  `worse` when the interval excludes 0 (by the metric's direction), else `no detectable
  difference`. With fewer than 2 values on either side there is no interval and no verdict.
- `hypothesis_verdict(comparison, expected, smallest_effect)`: `supported` when the interval
  lies on the expected side of 0 and the estimate is at least the smallest effect that
  matters; `refuted` when the interval lies on the other side of 0, or entirely within the
  smallest effect (the effect is too small to matter); else `inconclusive`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeGuard

from harness.seeds import LEVEL, interval, t_quantile

Verdict = Literal["better", "worse", "no detectable difference"]
HypothesisVerdict = Literal["supported", "refuted", "inconclusive"]
Direction = Literal["higher", "lower"]
Expected = Literal["increase", "decrease"]


@dataclass(frozen=True)
class Summary:
    """One metric over the seeds of one run."""

    mean: float
    sd: float
    """Sample standard deviation (n - 1); 0 for a single value."""
    n: int
    ci: tuple[float, float] | None
    """95% interval of the mean; None with fewer than 2 values."""


@dataclass(frozen=True)
class Comparison:
    """A run against the baseline on one metric."""

    diff: float
    """Mean of the run minus mean of the baseline."""
    ci: tuple[float, float] | None
    """95% Welch interval of the difference; None with fewer than 2 values on a side."""
    df: float | None
    verdict: Verdict | None
    """None when there is no interval (say so: too few seeds)."""


def summarize(values: Sequence[float]) -> Summary:
    xs = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    if not xs:
        raise ValueError("no finite values to summarize")
    mean, sd, ci = interval(xs)  # the t interval the harness records, computed by one function
    return Summary(mean, sd, len(xs), ci)


def compare(run: Sequence[float], baseline: Sequence[float], direction: Direction) -> Comparison:
    a, b = summarize(run), summarize(baseline)
    diff = a.mean - b.mean
    if a.n < 2 or b.n < 2:
        return Comparison(diff, None, None, None)
    va, vb = a.sd ** 2 / a.n, b.sd ** 2 / b.n
    se = math.sqrt(va + vb)
    if se == 0:  # both deterministic: the difference is exact
        ci, df = (diff, diff), float(a.n + b.n - 2)
    else:
        df = (va + vb) ** 2 / (va ** 2 / (a.n - 1) + vb ** 2 / (b.n - 1))  # Welch-Satterthwaite
        half = t_quantile(0.5 + LEVEL / 2, df) * se
        ci = (diff - half, diff + half)
    verdict: Verdict = "no detectable difference"
    if ci[0] > 0 or ci[1] < 0:
        up = ci[0] > 0
        verdict = "better" if up == (direction == "higher") else "worse"
    return Comparison(diff, ci, df, verdict)


def hypothesis_verdict(comparison: Comparison, expected: Expected, smallest_effect: float) -> HypothesisVerdict:
    """The verdict on "the run's metric will `expected` by at least `smallest_effect`"."""
    if comparison.ci is None:
        return "inconclusive"
    lo, hi = comparison.ci
    sign = 1.0 if expected == "increase" else -1.0
    lo, hi = sorted((sign * lo, sign * hi))  # on the expected side, positive
    effect = sign * comparison.diff
    if lo > 0 and effect >= abs(smallest_effect):
        return "supported"
    if hi < 0 or (smallest_effect and -abs(smallest_effect) < lo and hi < abs(smallest_effect)):
        return "refuted"
    return "inconclusive"


# --- runs as recorded: a final_info.json's seeds section ------------------------------------

def _finite(value: object) -> TypeGuard[float]:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def seed_values(info: Mapping[str, Any], metric: str) -> list[float]:
    """The per-seed values of `metric` in one run's final_info.json (`seeds.values`), or its
    single top-level value when the run has no seeds section or its seeds are not independent
    (identical weights: one measurement, however many times repeated). Empty if absent."""
    seeds = info.get("seeds")
    if isinstance(seeds, Mapping) and seeds.get("independent", True) is not False:
        values = seeds.get("values")
        found = values.get(metric) if isinstance(values, Mapping) else None
        if isinstance(found, list) and found and all(_finite(v) for v in found):
            return [float(v) for v in found]
    metrics = info.get("metrics")
    value = metrics.get(metric) if isinstance(metrics, Mapping) else None
    return [float(value)] if _finite(value) else []


@dataclass(frozen=True)
class RunComparison:
    """One run against another (by default the baseline) on one metric, decided by code."""

    run: str
    """`run_2`."""
    against: str
    """`run_0` for the baseline."""
    metric: str
    direction: Direction
    comparison: Comparison
    n_run: int
    n_against: int

    @property
    def verdict(self) -> Verdict | None:
        return self.comparison.verdict

    def describe(self, fmt: str = ".4g") -> str:
        """`-0.029 [95% CI -0.036, -0.022]: worse`, or `-0.029 (no interval: 1 seed)`."""
        c = self.comparison
        diff = format(c.diff, "+" + fmt.lstrip("+"))
        if c.ci is None:
            return f"{diff} (no interval: {min(self.n_run, self.n_against)} seed)"
        return f"{diff} [95% CI {format(c.ci[0], fmt)}, {format(c.ci[1], fmt)}]: {c.verdict}"


def compare_runs(run_info: Mapping[str, Any], against_info: Mapping[str, Any], metric: str,
                 direction: Direction, run: str = "", against: str = "run_0") -> RunComparison | None:
    """`run_info` against `against_info` on `metric`; None when either lacks the metric."""
    a, b = seed_values(run_info, metric), seed_values(against_info, metric)
    if not a or not b:
        return None
    return RunComparison(run, against, metric, direction, compare(a, b, direction), len(a), len(b))


def comparisons(final_infos: Mapping[str, Mapping[str, Any]], metrics: Sequence[Any],
                against: str = "run_0", headline_only: bool = True) -> list[RunComparison]:
    """Every run (by name, `run_i`) against `against` on every (headline) metric; `metrics`
    are objects with `name`, `direction` and `headline` (template metrics or MetricSpecs)."""
    base = final_infos.get(against)
    if base is None:
        return []
    out = []
    for name in sorted(final_infos, key=lambda r: int(r.rsplit("_", 1)[-1]) if r.rsplit("_", 1)[-1].isdigit() else 1 << 30):
        if name == against:
            continue
        for m in metrics:
            if headline_only and not getattr(m, "headline", False):
                continue
            found = compare_runs(final_infos[name], base, m.name, m.direction, name, against)
            if found is not None:
                out.append(found)
    return out
