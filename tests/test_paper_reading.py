"""The checker's escapes, each a sentence it must flag beside the true one it must let through.

Each escape was found by reading the regex checker the parser-based one replaced; the evidence
is tests/fixtures/paper/sae_runs.json (run_1: explained variance 0.9123, run_2: 0.9334,
MSE 0.0275 / 0.0208, frac_dense 0 in run_1, config lr 3e-4, l1_coeff 0.004 in run_0)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent.paper.ground.evidence import build_evidence
from agent.paper.ground.grounding import check_grounding, check_paper
from agent.paper.read.mentions import mentions
from agent.paper.read.reading import read, sentences_of

FIXTURES = Path(__file__).parent / "fixtures" / "paper"


@pytest.fixture(scope="module")
def sae():
    data = json.loads((FIXTURES / "sae_runs.json").read_text())
    descriptions = {**data["descriptions"], "run_2": "TopK activation with k = 64 and lr 0.003"}
    return build_evidence(data["runs"], descriptions, data["metrics"])


def _flags(text: str, evidence) -> set[str]:
    return {f.text for f in check_grounding(text, evidence, "Results")}


# (escape, flagged sentence, the number it must flag, true sentence it must let through)
ESCAPES = [
    ("a number before ' in' was blanked as a length",
     "The explained variance rises to 0.95 in Run 2.", "0.95",
     "The explained variance rises to 0.933 in Run 2."),
    ("the first value cell of a table row was read as a run index",
     r"\begin{tabular}{lr} Run & Explained variance \\ \midrule Run 1 & 0.95 \\ \end{tabular}", "0.95",
     r"\begin{tabular}{lr} Run & Explained variance \\ \midrule Run 1 & 0.912 \\ \end{tabular}"),
    ("'line' had no word boundary, so the number after 'baseline' was skipped",
     "Run 2 reaches an explained variance of 0.933 (vs baseline 0.720).", "0.720",
     "Run 2 reaches an explained variance of 0.933 (vs baseline 0.852)."),
    ("the second end of a range was dropped",
     "The MSE of the TopK runs spans 0.0208-0.0500.", "0.0500",
     "The MSE of the TopK runs spans 0.0208-0.0275."),
    ("the LLM's own run descriptions counted as evidence",
     "Run 2 uses a learning rate of 0.003.", "0.003",
     "Run 2 uses a learning rate of 0.0003."),
    ("a config value satisfied a sentence about a metric",
     "Run 2 reaches an explained variance of 512.", "512",
     "Run 2 reaches an explained variance of 0.933."),
    ("a fixed ±0.005 band let 0.005 match a metric that is 0",
     "Run 1 has a dense fraction of 0.005.", "0.005",
     "Run 1 has a dense fraction of 0.0."),
    ("the sign was ignored",
     "Run 2 reaches an explained variance of -0.933.", "-0.933",
     "Run 2 reaches an explained variance of 0.933."),
    ("numbers written as words were not read",
     "In Run 4, fifty percent of the latents are dead (dead fraction).", "fifty",
     "In Run 4, fifteen percent of the latents are dead (dead fraction)."),
    ("a second labelled number was attributed to the first label",
     "Explained variance (baseline: 0.852, optimized: 0.950).", "0.950",
     "Explained variance (baseline: 0.852, optimized: 0.933)."),
    ("an invented one-digit setting matched some metric by coincidence",
     "The baseline uses $\\lambda = 0.9$ for the L1 coefficient.", "0.9",
     "The baseline uses an L1 coefficient of $0.004$."),
    ("display math was exempt",
     r"\begin{equation} \mathrm{MSE} = 0.5 \end{equation}", "0.5",
     r"\begin{equation} \mathrm{MSE} = 0.0208 \end{equation}"),
]


@pytest.mark.parametrize(("escape", "bad", "number", "good"), ESCAPES, ids=[e[0][:40] for e in ESCAPES])
def test_each_escape_is_closed(sae, escape: str, bad: str, number: str, good: str) -> None:
    assert number in _flags(bad, sae), escape
    assert _flags(good, sae) == set(), escape


def test_a_redefined_results_macro_is_a_finding_and_a_private_macro_is_read_where_used(sae) -> None:
    tex = (r"\renewcommand{\RunOneExplainedVariance}{0.99}" "\n"
           r"\newcommand{\myev}{0.99}" "\n"
           r"Run 1 reaches an explained variance of \RunOneExplainedVariance{}; Run 2 reaches \myev{} explained variance.")
    found = check_grounding(tex, sae, "Results", {"RunOneExplainedVariance": ("run_1", "explained_variance")})
    assert {(f.kind, f.text) for f in found} == {("macro", "\\RunOneExplainedVariance"), ("number", "0.99")}
    honest = check_grounding(r"\newcommand{\myev}{0.933} Run 2 reaches \myev{} explained variance.", sae, "Results")
    assert honest == []


def test_a_private_macro_defined_in_the_preamble_is_read_in_every_section(sae) -> None:
    tex = ("\\documentclass{article}\n\\newcommand{\\myev}{0.99}\n\\begin{document}\n"
           "\\section{Results}\nRun 2 reaches an explained variance of \\myev{}.\n\\end{document}\n")
    found = check_paper(tex, sae)
    assert [(f.section, f.kind, f.text) for f in found] == [("Results", "number", "0.99")]
    assert found[0].line == 5


def test_mentions_keep_how_each_number_is_written() -> None:
    got = {m.text: m for m in mentions("about 0.9, above 0.5, 12.4% dead, 6.1 percentage points, "
                                       "2.5x faster, 3.2e-4, 40 s, 2 million tokens, -0.79, 1.44-1.63")}
    assert got["0.9"].qualifier == "approx" and got["0.5"].qualifier == "at_least"
    assert got["12.4%"].percent and got["6.1"].points and got["2.5"].ratio
    assert got["3.2e-4"].value == pytest.approx(3.2e-4) and got["3.2e-4"].half == pytest.approx(5e-6)
    assert got["40"].unit == "s" and got["2"].value == 2e6
    assert got["-0.79"].value == -0.79
    assert got["1.44"].range_with is not None and got["1.63"].value == 1.63


def test_what_a_reader_does_not_read_is_not_read() -> None:
    tex = (r"See Figure~3, Section 2 and \cref{fig:x} \citep{gao2024}; \includegraphics[width=0.73\linewidth]{f_9.png}"
           r" \label{t:7} \vspace{3.5mm} % 0.555 in a comment" "\n"
           r"gemma-2-2b, v1.3, the 2nd run, $x_2^2$, $W_{12}$, and Run 3.")
    reading = read(tex)
    assert [m.text for s in sentences_of(reading) for m in s.mentions] == []
    assert [r.indices for s in sentences_of(reading) for r in s.runs] == [(3,)]


def test_the_false_flag_rate_on_labelled_correct_numbers_stays_under_ten_percent(sae) -> None:
    """labelled_correct.tex: true statements about the fixture runs, in the styles papers use
    (percentages, changes, ratios, ranges, settings, a table, an equation, approximations)."""
    tex = (FIXTURES / "labelled_correct.tex").read_text()
    numbers = sum(len(s.mentions) for s in sentences_of(read(tex)))
    flagged = [f for f in check_grounding(tex, sae, "Results") if f.kind in ("number", "setting", "attribution")]
    assert numbers >= 70
    assert len(flagged) / numbers < 0.10, [f.describe() for f in flagged]


def test_a_result_file_of_another_shape_is_evidence_but_its_bookkeeping_is_not() -> None:
    """A reference-system result file (no `metrics` key): its sections count, a metric found
    by its name in their paths; commits and the training process's self-report do not."""
    from agent.paper.build.spec import MetricSpec

    infos = {"run_0": {"core evaluation results": {"metrics": {"reconstruction_quality": {
        "explained_variance": 0.9301}}}, "code": {"commit": 1234}, "training": {"final_loss": 0.4321}}}
    evidence = build_evidence(infos, {}, [MetricSpec("explained_variance", "Explained variance")])
    assert _flags("The baseline reaches an explained variance of 0.930.", evidence) == set()
    assert _flags("The baseline reaches an explained variance of 0.950.", evidence) == {"0.950"}
    assert _flags("It was built from commit 1234 with a final loss of 0.4321.", evidence) == {"1234", "0.4321"}


def test_a_run_named_right_after_a_number_owns_it(sae) -> None:
    assert _flags("The explained variance is 0.933 in Run 2 and 0.912 in Run 1.", sae) == set()
    found = check_grounding("The explained variance is 0.933 in Run 1.", sae, "Results")
    assert [(f.kind, f.text) for f in found] == [("attribution", "0.933")]


def test_a_term_of_a_formula_is_notation_but_a_value_in_math_is_a_claim(sae) -> None:
    """The cpu main job's 'explained variance is $1 - \\sum ...$' was flagged as a value."""
    assert _flags(r"Explained variance is $1 - \sum \lVert x - \hat{x}\rVert^2 / \sum \lVert x \rVert^2$.", sae) == set()
    assert _flags(r"Explained variance is $\frac{1}{2}$ of the maximum.", sae) == set()
    assert _flags(r"Run 2 reaches an explained variance of $0.5$.", sae) == {"0.5"}
