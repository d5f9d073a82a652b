"""Claims the statistics must carry: each contradicting sentence is flagged, its true twin is not.

The runs (3 seeds each unless said): run_1 is detectably better than the baseline on explained
variance (+0.037 [0.032, 0.042]) and detectably worse on L0 (+5.9: higher, lower is better),
with no detectable difference in MSE; run_2 is detectably better on L0 (-10.1) and MSE, with no
detectable difference in explained variance (+0.0007 [-0.017, 0.019]); run_3 has one seed (no
interval). Hypotheses: H1 (run 1 raises explained variance) supported, H2 (run 2 lowers L0 by
at least 50) refuted, H3 (run 3) inconclusive.
"""

from __future__ import annotations

from typing import Any

import pytest

from agent.paper.build.spec import MetricSpec
from agent.paper.ground.evidence import build_evidence
from agent.paper.ground.grounding import check_grounding, check_paper
from agent.stats import summarize

METRICS = [MetricSpec("l0", "L0", "lower", True, ".1f"),
           MetricSpec("explained_variance", "Explained variance", "higher", True, ".3f"),
           MetricSpec("mse", "MSE", "lower", False, ".4f")]
SEEDS = {
    "run_0": {"l0": [30.1, 29.8, 30.4], "explained_variance": [0.433, 0.431, 0.435], "mse": [0.0210, 0.0212, 0.0208]},
    "run_1": {"l0": [36.0, 36.4, 35.6], "explained_variance": [0.470, 0.468, 0.472], "mse": [0.0215, 0.0205, 0.0213]},
    "run_2": {"l0": [20.0, 20.3, 19.7], "explained_variance": [0.440, 0.425, 0.436], "mse": [0.0190, 0.0192, 0.0188]},
    "run_3": {"l0": [25.0], "explained_variance": [0.450], "mse": [0.0200]},
}


def _info(values: dict[str, list[float]]) -> dict[str, Any]:
    """A run's final_info.json as the evaluator writes it: means on top, the seeds beside them."""
    sums = {m: summarize(v) for m, v in values.items()}
    n = len(next(iter(values.values())))
    return {"metrics": {m: s.mean for m, s in sums.items()}, "config": {"d_sae": 512, "lr": 3e-4},
            "seeds": {"requested": list(range(n)), "succeeded": list(range(n)), "failed": [], "n": n,
                      "independent": True, "level": 0.95, "values": values,
                      "sd": {m: s.sd for m, s in sums.items()},
                      "ci95": {m: list(s.ci) if s.ci else None for m, s in sums.items()}}}


VERDICTS = {"level": 0.95, "verdicts": [
    {"id": "H1", "statement": "The run raises explained variance", "metric": "explained_variance", "run": 1,
     "against": 0, "expected": "increase", "smallest_effect": 0.01, "amended_after_run": None,
     "added_after_results": False, "verdict": "supported", "diff": 0.037, "ci": [0.0325, 0.0415], "n_run": 3,
     "n_against": 3, "why": "the 95% interval lies above 0 and |diff| >= 0.01"},
    {"id": "H2", "statement": "The run lowers L0 by 50", "metric": "l0", "run": 2, "against": 0,
     "expected": "decrease", "smallest_effect": 50.0, "amended_after_run": None, "added_after_results": False,
     "verdict": "refuted", "diff": -10.1, "ci": [-10.78, -9.42], "n_run": 3, "n_against": 3,
     "why": "the 95% interval lies within the smallest effect"},
    {"id": "H3", "statement": "Run 3 lowers MSE", "metric": "mse", "run": 3, "against": 0, "expected": "decrease",
     "smallest_effect": 0.0, "amended_after_run": None, "added_after_results": False, "verdict": "inconclusive",
     "diff": -0.001, "ci": None, "n_run": 1, "n_against": 3, "why": "run 3 has 1 seed: no interval"},
]}


@pytest.fixture(scope="module")
def evidence():
    return build_evidence({run: _info(values) for run, values in SEEDS.items()}, {}, METRICS, VERDICTS)


def _found(text: str, evidence) -> set[tuple[str, str]]:
    return {(f.kind, f.text) for f in check_grounding(text, evidence, "Results")}


def _kinds(text: str, evidence) -> set[str]:
    return {kind for kind, _ in _found(text, evidence)}


# (what the sentence gets wrong, the sentence, the kind it must be flagged with, its true twin)
PLANTED = [
    ("a direction opposite to the verdict (raw value)",
     "Run 1 lowers L0 relative to the baseline.", "direction",
     "Run 1 raises L0 relative to the baseline."),
    ("a comparison opposite to the verdict",
     "The baseline's explained variance is higher than Run 1's.", "direction",
     "Run 1's explained variance is higher than the baseline's."),
    ("a direction where there is no detectable difference (a hedge does not rescue it)",
     "Run 2 slightly improves explained variance over the baseline.", "direction",
     "Run 2's explained variance is indistinguishable from the baseline's within the 95\\% interval."),
    ("a direction where there is no interval (one seed)",
     "Run 3 lowers L0.", "direction",
     "Run 3 was trained with a single seed, so its L0 has no interval."),
    ("'improves' read as 'raises' on a lower-is-better metric",
     "Run 1 improves L0.", "direction",
     "Run 2 improves L0."),
    ("'outperforms' where the run is detectably worse",
     "Run 1 outperforms the baseline on L0.", "direction",
     "Run 1 outperforms the baseline on explained variance."),
    ("a comparison of two runs, the wrong way round",
     "Run 1 has a lower L0 than Run 2.", "direction",
     "Run 2 has a lower L0 than Run 1."),
    ("'no effect' where there is a detectable difference",
     "The orthogonality penalty in Run 2 has no effect on L0.", "no_difference",
     "The orthogonality penalty in Run 2 has no effect on explained variance."),
    ("'comparable' where there is a detectable difference",
     "Run 1 reaches an L0 comparable to the baseline's.", "no_difference",
     "Run 1 reaches an MSE comparable to the baseline's."),
    ("a negated direction the data show",
     "Run 2 does not lower L0.", "no_difference",
     "Run 2 does not change explained variance."),
    ("a refuted hypothesis called supported",
     "H2 is supported by the data.", "hypothesis",
     "H2 is refuted: the decrease in L0 is smaller than the smallest effect that matters."),
    ("an inconclusive hypothesis called confirmed",
     "Our results confirm H3.", "hypothesis",
     "H3 remains inconclusive because Run 3 has a single seed."),
    ("a supported hypothesis called refuted",
     "We reject H1.", "hypothesis",
     "H1 is supported."),
    ("a difference without its interval where there is none detectable (macro)",
     r"Run 2 changes explained variance by \RunTwoExplainedVarianceDelta{}.", "interval",
     r"Run 2 changes explained variance by \RunTwoExplainedVarianceDelta{} (95\% CI \RunTwoExplainedVarianceDeltaCI{})."),
    ("a difference without its interval where there is none detectable (number)",
     "Run 2 and the baseline differ in explained variance by 0.0007.", "interval",
     "Run 2 and the baseline differ in explained variance by 0.0007 (95\\% CI -0.017 to 0.019)."),
]


@pytest.mark.parametrize(("what", "bad", "kind", "good"), PLANTED, ids=[p[0][:50] for p in PLANTED])
def test_each_contradiction_is_flagged_and_its_true_twin_is_not(evidence, what: str, bad: str, kind: str,
                                                                 good: str) -> None:
    assert _kinds(bad, evidence) == {kind}, what
    assert _found(good, evidence) == set(), what


def test_correct_statements_are_not_flagged(evidence) -> None:
    text = ("Run 1 raises explained variance from 0.433 to 0.470 (+0.037, 95\\% CI 0.032 to 0.042). "
            "Run 2 lowers L0 by 10.1 relative to the baseline. "
            "There is no detectable difference in MSE between Run 1 and the baseline. "
            "Compared with the baseline, Run 2 reduces MSE. "
            "\\RunTwoLZero{} is lower than \\BaselineLZero{}. "
            "H1 is supported, H2 is refuted and H3 is inconclusive. "
            "A lower L0 means a sparser code; lower is better. "
            "Our method lowers explained variance.")  # an unresolved subject is not a claim
    assert _found(text, evidence) == set()


def test_the_finding_says_what_the_data_show_and_what_to_write(evidence) -> None:
    (finding,) = check_grounding("Run 2 slightly improves explained variance over the baseline.", evidence, "Results",
                                 {"RunTwoExplainedVarianceDelta": ("run_2", "explained_variance")})
    assert "includes 0" in finding.reason and "no detectable difference" in finding.reason
    assert "\\RunTwoExplainedVarianceDelta" in finding.reason
    assert any("+0.001 [95% CI -0.017, 0.019]" in hint for hint in finding.closest), finding.closest
    (flipped,) = check_grounding("Run 1 lowers L0 relative to the baseline.", evidence, "Results")
    assert "opposite" in flipped.reason and "L0 is detectably higher in Run 1 than in the baseline" in flipped.reason
    (single,) = check_grounding("Run 3 lowers L0.", evidence, "Results")
    assert "no interval" in single.reason


def test_a_number_of_the_other_run_sets_the_reference(evidence) -> None:
    """'from 36.0 to 20.0': the first value is run_1's, so Run 2 is compared with run_1, not the baseline."""
    assert _found("Run 2 lowers L0 from 36.0 to 20.0.", evidence) == set()
    assert _kinds("Run 2 raises L0 from 36.0 to 20.0.", evidence) == {"direction"}


def test_the_statistics_are_evidence_for_numbers(evidence) -> None:
    text = ("The baseline reaches an explained variance of 0.433 ± 0.002 (95\\% CI 0.428 to 0.438) "
            "over seeds 0.433, 0.431 and 0.435.")
    assert _found(text, evidence) == set()
    assert ("number", "0.046") in _found("Run 1 raises explained variance by 0.037 (95\\% CI 0.032 to 0.046).",
                                         evidence)


def test_a_whole_paper_reports_the_contradictions_by_section(evidence) -> None:
    tex = ("\\documentclass{article}\n\\begin{document}\n\\begin{abstract}\nRun 1 improves L0.\n\\end{abstract}\n"
           "\\section{Results}\nRun 2 improves L0. H2 is supported.\n\\end{document}\n")
    found = [(f.section, f.kind, f.line) for f in check_paper(tex, evidence)]
    assert found == [("Abstract", "direction", 4), ("Results", "hypothesis", 7)]


def test_without_a_verdicts_file_hypotheses_are_not_judged() -> None:
    bare = build_evidence({run: _info(values) for run, values in SEEDS.items()}, {}, METRICS)
    assert bare.hypotheses is None
    assert _found("H2 is supported by the data.", bare) == set()


def test_old_single_seed_records_are_not_judged_for_intervals() -> None:
    """A record with no seeds section has one value and no interval: nothing to decide with."""
    old = build_evidence({r: {"metrics": {m: sum(v) / len(v) for m, v in values.items()}}
                          for r, values in SEEDS.items()}, {}, METRICS)
    assert _found("Run 2 improves L0. Run 2 and the baseline differ in explained variance by 0.0007.", old) == set()


def test_the_evidence_keeps_the_records_and_the_verdicts(evidence) -> None:
    assert set(evidence.infos) == set(SEEDS)
    assert [(h.id, h.verdict) for h in evidence.hypotheses] == [("H1", "supported"), ("H2", "refuted"),
                                                                ("H3", "inconclusive")]
    rc = evidence.compare("run_2", "run_0", "l0")
    assert rc is not None and rc.verdict == "better"


def test_hypothesis_macros_name_their_hypothesis(evidence) -> None:
    """`\\HypothesisTwoId` prints H2 (the second of the verdicts file): the text around it is read as about H2."""
    assert _kinds(r"\HypothesisTwoId{} is supported.", evidence) == {"hypothesis"}
    assert _found(r"\HypothesisTwoId{} is \HypothesisTwoVerdict{} (\HypothesisTwoCI{}).", evidence) == set()


def test_a_passive_comparison_is_read_the_other_way_round(evidence) -> None:
    assert _found("The baseline is outperformed by Run 1 on explained variance.", evidence) == set()
    assert _kinds("Run 1 is outperformed by the baseline on explained variance.", evidence) == {"direction"}



@pytest.mark.parametrize(("wrong", "right"), [
    ("Of the 4 pre-registered hypotheses, H1 is supported.", "Of the 3 pre-registered hypotheses, H1 is supported."),
    ("We registered two hypotheses before run 1.", "We registered three hypotheses before run 1."),
    ("Of the three hypotheses, the intervals support 2, refute 1 and leave 0 inconclusive.",
     "Of the three hypotheses, the intervals support 1, refute 1 and leave 1 inconclusive."),
    ("Two of them were supported and the hypotheses were otherwise refuted.",
     "One of the hypotheses was supported; H2 was refuted."),
    ("Of our hypotheses, one is refuted and two are inconclusive.",
     "Of our hypotheses, one is refuted and one is inconclusive."),
    ("2 of 3 hypotheses were supported.", "1 of 3 hypotheses were supported."),
    ("Two of the three hypotheses were supported.", "One of the three hypotheses was supported."),
    ("Of three hypotheses, two were supported.", "Of three hypotheses, one was supported."),
    # counts written as quantifiers (the reader counts "both", "all", "none" too)
    ("Both pre-registered hypotheses were supported.", "Of the three pre-registered hypotheses, one was supported."),
    ("All of our hypotheses were supported by the runs.", "Not all of our hypotheses were supported: H1 was."),
    ("The hypotheses were refuted.", "Of the hypotheses, only H2 was refuted."),
    ("None of the hypotheses was refuted.", "None of the hypotheses was judged on a single seed."),
    ("Every hypothesis was inconclusive.", "H3 was inconclusive."),
    ("Neither hypothesis was supported.", "H1 was supported; H2 was not."),
])
def test_how_many_hypotheses_and_verdicts_a_sentence_counts_must_be_the_records(evidence, wrong: str,
                                                                                 right: str) -> None:
    """The reader sees the tallies (3 registered: one supported, one refuted, one inconclusive):
    a sentence that miscounts them is a hypothesis finding naming the true count; its twin is not."""
    found = check_grounding(wrong, evidence, "Results")
    assert [f.kind for f in found if f.kind == "hypothesis"], wrong
    assert any("3 hypotheses were registered" in f.reason or "of the 3 registered hypotheses" in f.reason
               for f in found), [f.reason for f in found]
    assert [f for f in check_grounding(right, evidence, "Results") if f.kind == "hypothesis"] == [], right


def test_a_tally_in_a_conditional_or_of_something_else_is_not_read(evidence) -> None:
    assert _found("If the data support 2 of the hypotheses, the method would be useful.", evidence) == set()
    assert _found("The decoder has 512 latents and supports 512 dimensions.", evidence) - {("number", "512")} == set()
