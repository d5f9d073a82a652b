"""A number is grounded only by evidence of the quantity its sentence says it is.

Each attack below was accepted by the checker before (issue 24, item 5): a value of another
quantity, an evaluation-harness setting, a difference between runs, a tolerance too loose at
one or two significant digits, a qualifier read as a half-line. Each stands beside its true
twin, which must not be flagged; the two false flags the rules had are twins too.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent.paper.build.spec import MetricSpec
from agent.paper.ground.evidence import build_evidence
from agent.paper.ground.grounding import check_grounding
from agent.paper.read.reading import read, sentences_of
from tests.invented import blocks, fabrications, with_harness_sections

FIXTURES = Path(__file__).parent / "fixtures" / "paper"
METRICS = [MetricSpec("explained_variance", "Explained variance", "higher", True, ".3f", ("EV",)),
           MetricSpec("l0", "L0", "lower", True, ".1f", ("active features",)),
           MetricSpec("mse", "MSE", "lower", False, ".4f")]


def _run(ev: float, l0: float, mse: float, **config: float) -> dict:
    return {"metrics": {"explained_variance": ev, "l0": l0, "mse": mse},
            "config": {"lr": 0.0018, "batch_size": 2048, "steps": 0, "d_sae": 4096, "sparsity_penalty": 0.04,
                       "target_l0": 320, **config},
            "evaluation": {"llm_batch_size": 4096, "reconstruction_tokens": 1000},
            "data": {"eval_tokens": 65536, "context_len": 128}}


@pytest.fixture(scope="module")
def runs():
    infos = {"run_0": _run(0.95, 318.2, 0.0210), "run_1": _run(0.13, 40.0, 0.0410, lr=0.0003),
             "run_2": _run(0.7812, 64.0, 0.0330), "run_3": _run(0.45, 250.0, 0.0500)}
    return build_evidence(infos, {}, METRICS)


@pytest.fixture(scope="module")
def sae():
    data = json.loads((FIXTURES / "sae_runs.json").read_text())
    return build_evidence(with_harness_sections(data["runs"]), data["descriptions"], data["metrics"])


def _flags(text: str, evidence) -> set[str]:
    return {f.text for f in check_grounding(text, evidence, "Results")}


# (what the checker accepted, the attack, the number it must flag, the true twin)
ATTACKS = [
    ("a setting matched a config value of another setting (d_sae)",
     "We use a batch size of 4096.", "4096",
     "We use a batch size of 2048."),
    ("a batch size matched the evaluation harness's batch size",
     "Training uses batches of size 4096.", "4096",
     "The evaluation harness runs the model with a batch size of 4096."),
    ("'1,000 steps' matched a test-set size when training ran 0 steps",
     "We train for 1,000 steps.", "1,000",
     "The held-out evaluation reconstructs 1,000 tokens."),
    ("a metric matched a difference between two other runs",
     "The best run reaches an explained variance of 0.82.", "0.82",
     "Run 0 improves explained variance by 0.82 over Run 1."),
    ("a number matched another metric's value named elsewhere in the sentence",
     "Run 2 reaches an explained variance of 0.781, and Run 3 reaches 0.050.", "0.050",
     "Run 2 reaches an explained variance of 0.781, and Run 3 reaches 0.450."),
    ("a one-digit setting matched a value it merely rounds to (10 % away)",
     r"We train with a learning rate of $\eta = 0.002$.", "0.002",
     r"We train with a learning rate of $\eta = 0.0018$."),
    ("a one-digit result matched a value 11 % away",
     "Run 3 reaches an explained variance of 0.5.", "0.5",
     "Run 3 reaches an explained variance of about 0.45."),
    ("'about' widened a one-digit number by half a unit: 'about 0.1' matched 0.13",
     "Run 1 reaches an explained variance of about 0.1.", "0.1",
     "Run 1 reaches an explained variance of roughly 0.13, and Run 2 of about 0.8."),
    ("'over' was read as any larger value",
     "L0 stays over 100 in Run 3.", "100",
     "L0 stays over 200 in Run 3."),
    ("'below' was read as any smaller value",
     "Run 1 keeps L0 below 200.", "200",
     "Run 1 keeps L0 below 50."),
    ("'exactly' allowed the rounding of a plain number",
     "Run 2's explained variance is exactly 0.78.", "0.78",
     "Run 2's explained variance is exactly 0.7812."),
]


@pytest.mark.parametrize(("what", "bad", "number", "good"), ATTACKS, ids=[a[0][:50] for a in ATTACKS])
def test_each_attack_is_flagged_and_its_true_twin_is_not(runs, what: str, bad: str, number: str, good: str) -> None:
    assert number in _flags(bad, runs), what
    assert _flags(good, runs) == set(), what


def test_a_setting_sentence_that_then_names_a_metric_is_not_read_as_that_metric(runs) -> None:
    """'0.04 targeting 320 active features': 0.04 is the penalty, 320 the target, not an L0."""
    assert _flags("We train with a sparsity penalty 0.04 targeting 320 active features.", runs) == set()
    assert _flags("We train with a sparsity penalty 0.05 targeting 320 active features.", runs) == {"0.05"}
    assert _flags("We train with a sparsity penalty 0.04 targeting 300 active features.", runs) == {"300"}


def test_a_number_before_a_parenthesis_naming_the_baseline_is_not_the_baselines(sae) -> None:
    """'0.933 (baseline 0.852)': the baseline labels 0.852, not 0.933."""
    assert _flags("Run 2 reaches an explained variance of 0.933 (baseline 0.852).", sae) == set()
    assert _flags("Run 2 reaches an explained variance of 0.852 (baseline 0.933).", sae) == {"0.852", "0.933"}


def test_a_difference_of_the_seed_statistics_grounds_only_a_number_said_to_be_one() -> None:
    seeds = {"run_0": [0.433, 0.431, 0.435], "run_1": [0.470, 0.468, 0.472]}
    infos = {run: {"metrics": {"explained_variance": sum(v) / 3},
                   "seeds": {"n": 3, "level": 0.95, "values": {"explained_variance": v}}} for run, v in seeds.items()}
    evidence = build_evidence(infos, {}, METRICS[:1])
    assert _flags("Run 1 raises explained variance by 0.037 over the baseline.", evidence) == set()
    assert _flags("Run 1 reaches an explained variance of 0.037.", evidence) == {"0.037"}


def test_a_duration_is_grounded_by_the_timing_its_clause_names(sae) -> None:
    assert _flags("Training took 95.1 s in Run 1; harvesting took 41.2 s in the baseline.", sae) == set()
    assert _flags("Training took 41.2 s per run.", sae) == {"41.2"}
    assert _flags("Evaluation took 0.9 minutes.", sae) == {"0.9"}  # 0.9 is an explained variance, not a time


def test_a_table_column_named_with_a_digit_names_its_metric(sae) -> None:
    table = r"\begin{tabular}{lr} Run & L0 \\ \midrule Run 1 & %s \\ \end{tabular}"
    assert _flags(table % "32.0", sae) == set()
    assert _flags(table % "95.1", sae) == {"95.1"}  # run_1's training time


def test_a_table_of_settings_is_grounded_row_by_row(sae) -> None:
    table = r"\begin{tabular}{lr} Setting & Value \\ \midrule Learning rate & %s \\ Batch size & %s \\ \end{tabular}"
    assert _flags(table % ("0.0003", "4096"), sae) == set()
    assert _flags(table % ("0.0005", "1024"), sae) == {"0.0005", "1024"}  # a dense fraction; an eval count


def test_a_correct_paper_of_tables_and_bounds_has_no_false_flag(sae) -> None:
    tex = (FIXTURES / "labelled_correct_tables.tex").read_text()
    numbers = sum(len(s.mentions) for s in sentences_of(read(tex)))
    assert numbers >= 50
    assert [f.describe() for f in check_grounding(tex, sae, "Results")] == []


def test_invented_numbers_in_a_correct_paper_pass_at_most_five_percent(sae) -> None:
    """Every number of labelled_correct.tex replaced by fabrications (tests/invented.py)."""
    pool = fabrications(blocks((FIXTURES / "labelled_correct.tex").read_text()), sae)
    assert len(pool) >= 150

    def found(block: str) -> set[tuple[str, str]]:
        return {(f.kind, f.text) for f in check_grounding(block, sae, "Results")}

    passed = [f for f in pool if not found(f.block) - {(k, t.replace(f.true, f.invented)) for k, t in found(f.original)}]
    assert len(passed) <= 0.05 * len(pool), [(f.kind, f.true, f.invented) for f in passed]
