"""The grounding checker: fabricated numbers and experiments are flagged, real ones are not."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent.paper.build.spec import MetricSpec
from agent.paper.ground.evidence import build_evidence
from agent.paper.ground.grounding import check_grounding, check_paper, split_sections

FIXTURES = Path(__file__).parent / "fixtures" / "paper"

# Planted in paper_planted.tex: (kind, text). Everything else in that paper is true.
PLANTED = {
    ("number", "10"),            # "10 million tokens": the runs saw 2,000,000
    ("attribution", "0.912"),    # "the baseline reaches 0.912": that is run_1's explained variance
    ("number", "0.947"),         # a CE loss score no run has
    ("ablation", "Removing the auxiliary dead-latent loss"),  # no run removed it
    ("number", "12.4%"),       # ... and the dead fraction it "caused"
    ("number", "3.2%"),        # "a 3.2% drop in explained variance"
    ("number", "15%"),         # "a 15% MSE increase"
    ("baseline", "Run~1 (the baseline"),
    ("run", "Run~7"),
    ("comparison", "outperforms Gated SAEs"),
}
# The seed-002 paper's numbers that are true of its runs (as the checker reads them).
SEED_REAL = ("0.9986", "0.9979", "1.055", "40.7%", "4081.94", "2095.25", "18432.0", "97.3%", "0.941")


@pytest.fixture(scope="module")
def sae():
    data = json.loads((FIXTURES / "sae_runs.json").read_text())
    return build_evidence(data["runs"], data["descriptions"], data["metrics"])


@pytest.fixture(scope="module")
def seed():
    data = json.loads((FIXTURES / "seed002_runs.json").read_text())
    return build_evidence(data["runs"], data["descriptions"], data["metrics"])


@pytest.fixture(scope="module")
def seed_findings(seed):
    return check_paper((FIXTURES / "seed002_paper.tex").read_text(), seed)


def _flagged(findings) -> set[tuple[str, str]]:
    return {(f.kind, f.text) for f in findings}


def test_every_planted_fabrication_is_flagged_and_nothing_else(sae) -> None:
    findings = check_paper((FIXTURES / "paper_planted.tex").read_text(), sae)
    assert _flagged(findings) == PLANTED


def test_findings_name_section_line_reason_and_closest_values(sae) -> None:
    findings = {f.text: f for f in check_paper((FIXTURES / "paper_planted.tex").read_text(), sae)}
    drop = findings["12.4%"]
    assert drop.section == "Results" and drop.line > 60
    assert "frac_dead" in drop.reason
    assert any("metrics.frac_dead = 0.118" in c for c in drop.closest)
    assert "dead latents to 12.4" in drop.context
    assert "run_0" in findings["0.912"].closest[0]  # the baseline's real value is offered


def _check(text: str, evidence) -> set[tuple[str, str]]:
    return _flagged(check_grounding(text, evidence, "Results"))


def test_rounded_values_and_percentages_match(sae) -> None:
    text = ("Run 2 reaches an explained variance of 0.933 (93.3\\%), and Run 1 an L0 of 32 with "
            "11.8\\% dead latents. The baseline's CE loss score is 0.86.")
    assert _check(text, sae) == set()


def test_differences_ratios_and_relative_changes_between_runs_match(sae) -> None:
    text = ("TopK lowers L0 from 131.5 to 32.0, a 4.1$\\times$ reduction, raises explained variance by "
            "0.061 (6.1 percentage points), and MSE falls by 33.3\\%.")
    assert _check(text, sae) == set()


def test_a_relative_change_in_the_wrong_direction_is_flagged(sae) -> None:
    assert ("number", "33.3%") in _check("MSE increases by 33.3\\% from the baseline to Run 1.", sae)


def test_configuration_values_and_ordinary_numbers_pass(sae) -> None:
    text = (r"We train on layer 3 with a dictionary of 4096 latents, $k = 32$, a learning rate of "
            r"$3 \times 10^{-4}$ and 2 million tokens, as in Section~\ref{sec:setup} and "
            r"Figure~\ref{fig:tradeoff}; see \citet{gao2024scaling} (2024). We compare two variants.")
    assert _check(text, sae) == set()


def test_numbers_inside_latex_commands_and_macros_are_ignored(sae) -> None:
    text = (r"\includegraphics[width=0.73\linewidth]{fig_9.png} \label{fig:77} \vspace{3.5mm} "
            r"Run 1 reaches \RunOneExplainedVariance{} explained variance.% and 0.555 in a comment")
    assert _check(text, sae) == set()


def test_display_math_is_read_but_indices_and_powers_are_notation(sae) -> None:
    """Display math was exempt, so an invented coefficient in an equation passed."""
    assert _check(r"\begin{equation} L = 0.37 \lVert x \rVert_2^2 \end{equation}", sae) == {("setting", "0.37")}
    assert _check(r"\begin{equation} L = \lVert x - \hat{x} \rVert_2^2 + \lambda_1 \lVert f \rVert_1 \end{equation}",
                  sae) == set()


def test_a_run_that_does_not_exist_is_flagged(sae) -> None:
    assert _check("Runs 3--5 agree.", sae) == {("run", "Runs 3--5")}


def test_more_runs_than_exist_is_flagged(sae) -> None:
    assert ("count", "eight training runs") in _check("We conduct eight training runs.", sae)


def test_an_ablation_a_run_performed_passes(sae) -> None:
    assert _check("Removing the decoder-bias subtraction (Run 4) raises MSE by 20.4\\% relative to Run 1.", sae) == set()


def test_an_ablation_no_run_performed_is_flagged(sae) -> None:
    kinds = {k for k, _ in _check("Our ablation study shows that removing the warmup hurts L0.", sae)}
    assert kinds == {"ablation"}


def test_speculative_ablations_are_not_claims(sae) -> None:
    assert _check("Future work could ablate the learning-rate warmup.", sae) == set()


def test_a_comparison_with_a_cited_method_is_not_a_claim_of_a_run(sae) -> None:
    assert _check(r"Compared with Gated SAEs \citep{rajamanoharan2024gated}, TopK needs no gate.", sae) == set()


def test_sections_keep_their_line_numbers() -> None:
    tex = "\\begin{document}\n\\begin{abstract}\nA\n\\end{abstract}\n\\section{Method}\nB\n\\section{Results}\nC\n"
    parts = dict(split_sections(tex))
    assert set(parts) >= {"Abstract", "Method", "Results"}
    assert parts["Results"].splitlines()[7] == "C"


# ---- The reference system's paper (seed 002): its fabrications are found ------------------

def test_seed_paper_fabricated_numbers_are_flagged(seed_findings) -> None:
    findings = seed_findings
    flagged = {(f.section, f.text) for f in findings if f.kind == "number"}
    for fabricated in ("3.2%", "15%", "8%", "5%", "12%"):  # the "ablations" and "overhead"
        assert ("Results", fabricated) in flagged
    assert ("Experimental Setup", "10") in flagged  # "10 million tokens": not in any result


def test_seed_paper_fake_ablations_are_flagged(seed_findings) -> None:
    findings = seed_findings
    ablations = {f.text for f in findings if f.kind == "ablation" and f.section == "Results"}
    assert {"Removing group-specific biases", "Disabling orthogonality scaling"} <= ablations


def test_seed_paper_presenting_run_1_as_the_baseline_is_flagged(seed_findings) -> None:
    findings = seed_findings
    wrong = {f.text for f in findings if f.kind == "attribution" and f.section == "Experimental Setup"}
    assert {"93.0%", "0.98", "0.996", "20,992"} <= wrong  # run_1's values, called the baseline's


def test_seed_paper_real_numbers_are_not_flagged(seed_findings) -> None:
    findings = seed_findings
    flagged = {f.text for f in findings}
    for real in SEED_REAL:
        assert real not in flagged


def test_durations_in_minutes_match_timings_in_seconds(sae) -> None:
    assert _check("Each TopK run trained in about 1.6 minutes; harvesting took 41.2 s.", sae) == set()


def test_numbers_written_in_gate_messages_and_config_strings_are_evidence() -> None:
    infos = {"run_0": {"metrics": {"l0": 40.0}, "config": {"model": "pythia-70m"},
                       "gates": [{"name": "dead", "passed": False, "severity": "warn",
                                  "message": "12.5% of latents never fired"}]}}
    evidence = build_evidence(infos, {}, [MetricSpec("l0", "L0")])
    text = "We use Pythia with 70 million parameters; 12.5\\% of latents never fired."
    assert _check(text, evidence) == set()
