"""Seed statistics and verdicts: intervals equal scipy's, verdicts follow the metric's direction."""

from __future__ import annotations

import pytest
from scipy import stats as sp

from agent.stats import Comparison, compare, hypothesis_verdict, summarize

RUN = [0.412, 0.405, 0.398, 0.409]
BASE = [0.433, 0.429, 0.437]


def test_the_interval_of_a_mean_is_students_t() -> None:
    s = summarize(RUN)
    assert s.n == 4 and s.mean == pytest.approx(sum(RUN) / 4)
    assert s.sd == pytest.approx(sp.tstd(RUN))
    expected = sp.t.interval(0.95, 3, loc=s.mean, scale=sp.sem(RUN))
    assert s.ci == pytest.approx(expected)
    # by hand: t_{0.975, 3} = 3.182446
    assert s.ci[1] - s.mean == pytest.approx(3.182446 * s.sd / 2, rel=1e-6)


def test_the_difference_interval_is_welchs_as_scipy_computes_it() -> None:
    c = compare(RUN, BASE, "higher")
    ref = sp.ttest_ind(RUN, BASE, equal_var=False).confidence_interval(0.95)
    assert c.diff == pytest.approx(sum(RUN) / 4 - sum(BASE) / 3)
    assert c.ci == pytest.approx((ref.low, ref.high))
    assert c.verdict == "worse"  # lower explained variance, interval below 0
    assert compare(RUN, BASE, "lower").verdict == "better"  # the same numbers as an MSE


def test_an_interval_that_contains_zero_is_no_detectable_difference() -> None:
    assert compare([0.41, 0.43, 0.40], [0.42, 0.41, 0.43], "higher").verdict == "no detectable difference"


def test_fewer_than_two_seeds_give_no_interval_and_no_verdict() -> None:
    assert summarize([0.4]).ci is None
    c = compare([0.4], BASE, "higher")
    assert c.ci is None and c.verdict is None and c.diff == pytest.approx(0.4 - sum(BASE) / 3)
    with pytest.raises(ValueError):
        summarize([float("nan")])


def test_deterministic_runs_compare_exactly() -> None:
    assert compare([1.0, 1.0], [1.0, 1.0], "higher").verdict == "no detectable difference"
    assert compare([2.0, 2.0], [1.0, 1.0], "higher").ci == (1.0, 1.0)


@pytest.mark.parametrize(("ci", "diff", "expected", "smallest", "verdict"), [
    ((0.02, 0.05), 0.035, "increase", 0.01, "supported"),
    ((0.02, 0.05), 0.035, "increase", 0.05, "inconclusive"),   # real, but maybe smaller than matters
    ((-0.05, -0.02), -0.035, "increase", 0.01, "refuted"),     # the other way
    ((-0.004, 0.003), 0.0, "increase", 0.01, "refuted"),        # too small to matter, either way
    ((-0.02, 0.04), 0.01, "increase", 0.01, "inconclusive"),
    ((-0.05, -0.02), -0.035, "decrease", 0.01, "supported"),
])
def test_hypothesis_verdicts(ci, diff, expected, smallest, verdict) -> None:
    assert hypothesis_verdict(Comparison(diff, ci, 5.0, None), expected, smallest) == verdict
    assert hypothesis_verdict(Comparison(diff, None, None, None), expected, smallest) == "inconclusive"
