"""results.tex: a macro for every number, deltas for headline metrics, a booktabs table."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from agent.paper.results_tex import build_results_tex, metric_word, number_word, write_results_tex
from agent.paper.spec import MetricSpec, as_specs

FIXTURES = Path(__file__).parent / "fixtures" / "paper"


@pytest.fixture(scope="module")
def sae() -> dict:
    return json.loads((FIXTURES / "sae_runs.json").read_text())


def _macros(sae: dict):
    return build_results_tex(sae["runs"], sae["metrics"], sae["descriptions"])


def test_run_indices_are_spelled_in_words() -> None:
    assert [number_word(n) for n in (0, 7, 13, 21, 40, 105)] == [
        "Zero", "Seven", "Thirteen", "TwentyOne", "Forty", "OneHundredFive"]


def test_metric_names_become_letters_only() -> None:
    assert metric_word("explained_variance") == "ExplainedVariance"
    assert metric_word("l0") == "LZero"
    assert metric_word("l2_ratio") == "LTwoRatio"
    assert metric_word("top10_acc") == "TopTenAcc"


def test_every_metric_of_every_run_gets_a_macro(sae: dict) -> None:
    result = _macros(sae)
    names = {m.name for m in result.macros}
    for run, prefix in (("run_0", "Baseline"), ("run_1", "RunOne"), ("run_4", "RunFour")):
        for metric in sae["runs"][run]["metrics"]:
            assert prefix + metric_word(metric) in names
    assert all(re.fullmatch(r"[A-Za-z]+", n) for n in names)


def test_values_are_printed_with_the_metric_format(sae: dict) -> None:
    by_name = {m.name: m for m in _macros(sae).macros}
    assert by_name["BaselineExplainedVariance"].value == "0.852"
    assert by_name["RunOneLZero"].value == "32.0"
    assert by_name["RunFourFracDead"].value == r"15.2\%"
    assert by_name["RunTwoMse"].value == "0.0208"
    assert by_name["NumRuns"].value == "4"


def test_headline_metrics_get_signed_deltas_against_the_baseline(sae: dict) -> None:
    by_name = {m.name: m for m in _macros(sae).macros}
    assert by_name["RunOneExplainedVarianceDelta"].value == "+0.061"
    assert by_name["RunOneLZeroDelta"].value == "$-$99.5"
    assert by_name["RunOneLZeroDeltaPct"].value == r"$-$75.7\%"
    assert by_name["RunOneFracDeadDelta"].value == "+7.5 pp"  # a difference of percentages
    assert "RunOneMseDelta" not in by_name  # MSE is not a headline metric
    assert "BaselineExplainedVarianceDelta" not in by_name


def test_table_is_booktabs_with_direction_arrows_and_best_in_bold(sae: dict) -> None:
    text = _macros(sae).text
    assert "\\toprule" in text and "\\midrule" in text and "\\bottomrule" in text
    assert r"Explained variance $\uparrow$" in text and r"L0 $\downarrow$" in text
    assert r"\textbf{0.933}" in text  # run_2 has the best explained variance
    assert r"\textbf{32.0}" in text  # L0: lower is better, three runs tie
    assert r"\newcommand{\ResultsTable}" in text and r"\label{tab:results}" in text


def test_descriptions_are_escaped_in_the_table(sae: dict) -> None:
    text = _macros(sae).text
    assert r"subtract\_b\_dec = False" in text


def test_a_run_failing_a_gate_is_marked() -> None:
    infos = {"run_0": {"metrics": {"l0": 10.0}, "gates": []},
             "run_1": {"metrics": {"l0": 900.0}, "gates": [{"name": "l0", "passed": False, "severity": "fail"}]}}
    text = build_results_tex(infos, [MetricSpec("l0", "L0", "lower", True, ".1f")]).text
    assert r"Run 1$^\dagger$" in text and "fails a plausibility gate" in text


def test_runs_without_metrics_or_with_odd_names_are_skipped() -> None:
    infos = {"run_0": {"metrics": {"l0": 1.0}}, "run_1": {"config": {}}, "scratch": {"metrics": {"l0": 2.0}}}
    result = build_results_tex(infos, [MetricSpec("l0", "L0", headline=True)])
    assert {m.run for m in result.macros if m.run} == {"run_0"}
    assert len(result.skipped) == 2


def test_missing_and_non_finite_values_have_no_macro() -> None:
    infos = {"run_0": {"metrics": {"l0": None, "mse": float("nan")}}}
    result = build_results_tex(infos, [MetricSpec("l0", "L0", headline=True), MetricSpec("mse", "MSE")])
    assert [m.name for m in result.macros] == ["NumRuns"]


def test_listing_names_every_macro_for_the_prompt(sae: dict) -> None:
    result = _macros(sae)
    listing = result.listing()
    assert "\\RunTwoCeLossScore = 0.944  (run_2, ce_loss_score, value)" in listing
    assert len(listing.splitlines()) == len(result.macros)


def test_write_puts_results_tex_in_the_latex_folder(tmp_path: Path, sae: dict) -> None:
    result = write_results_tex(tmp_path / "latex", sae["runs"], as_specs(sae["metrics"]), sae["descriptions"])
    assert (tmp_path / "latex" / "results.tex").read_text() == result.text


def test_importing_the_package_loads_no_heavy_library() -> None:
    code = ("import sys, agent.paper, agent.paper.results_tex, agent.paper.grounding, agent.paper.checks, "
            "agent.paper.compile; bad = [m for m in ('pylatex', 'torch', 'litellm') if m in sys.modules]; "
            "print(bad); sys.exit(1 if bad else 0)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr


def test_metrics_the_manifest_does_not_declare_still_get_macros() -> None:
    infos = {"run_0": {"metrics": {"l0": 12.0, "frac_alive": 0.91234, "notes": "text"}}}
    by_name = {m.name: m for m in build_results_tex(infos, [MetricSpec("l0", "L0", headline=True)]).macros}
    assert by_name["BaselineFracAlive"].value == "0.9123"
    assert "BaselineNotes" not in by_name


def test_metric_names_that_collide_as_macros_are_refused() -> None:
    infos = {"run_0": {"metrics": {"l0": 1.0}}, "run_1": {"metrics": {"l0": 2.0, "l0_delta": 3.0}}}
    with pytest.raises(ValueError, match="collide"):
        build_results_tex(infos, [MetricSpec("l0", "L0", headline=True), MetricSpec("l0_delta", "x")])


def _record(layer: int, tokens: int, dataset: str, gates: list[dict], seed: int = 0) -> dict:
    return {"metrics": {"l0": 10.0}, "preset": "tiny", "gates": gates,
            "config": {"model": "tiny-neox", "layer": layer, "tokens": tokens, "d_in": 128, "d_sae": 1024,
                       "seed": seed},
            "data": {"model_label": "a tiny model", "dataset_label": dataset, "layer": layer},
            "evaluation": {"reconstruction_tokens": 4096, "ce_kl_positions": 512}}


PASS = {"name": "dead_latents", "passed": True, "severity": "fail"}
FAIL = {"name": "dead_latents", "passed": False, "severity": "fail"}
WARN = {"name": "ce_loss_score_good", "passed": False, "severity": "warn"}


def _defined(infos: dict) -> dict[str, str]:
    text = build_results_tex(infos, [MetricSpec("l0", "L0")]).text
    return dict(re.findall(r"\\newcommand\{\\((?:Setup|Gate)\w+)\}\{(.*)\\xspace\}", text))


def test_setup_facts_are_macros_read_from_the_records() -> None:
    got = _defined({"run_0": _record(1, 300_032, "the shipped Shakespeare text", [PASS]),
                    "run_1": _record(1, 300_032, "the shipped Shakespeare text", [PASS])})
    assert got["SetupLayer"] == "1" and got["SetupTrainTokens"] == "300{,}032"
    assert got["SetupDataset"] == "the shipped Shakespeare text" and got["SetupModel"] == "a tiny model"
    assert got["SetupDSae"] == "1{,}024" and got["SetupSeeds"] == "0" and got["SetupNumSeeds"] == "1"
    assert got["SetupPreset"] == r"\texttt{tiny}" and got["SetupCePositions"] == "512"
    assert got["GateSummary"] == "Both runs (the baseline included) pass every plausibility gate of the template."
    other = _defined({"run_0": _record(2, 150_016, "the Pile", [PASS]),
                      "run_1": _record(2, 150_016, "the Pile", [PASS])})
    assert other["SetupLayer"] == "2" and other["SetupDataset"] == "the Pile"


def test_a_fact_that_differs_between_runs_says_so() -> None:
    got = _defined({"run_0": _record(1, 300_032, "x", [PASS], seed=0),
                    "run_1": _record(1, 600_064, "x", [PASS], seed=1)})
    assert got["SetupTrainTokens"] == "300{,}032 (baseline; runs differ)"
    assert got["SetupSeeds"] == "0, 1" and got["SetupNumSeeds"] == "2"


def test_the_gate_summary_names_every_failing_and_warning_run() -> None:
    got = _defined({"run_0": _record(1, 1, "x", [PASS, WARN]), "run_1": _record(1, 1, "x", [FAIL]),
                    "run_2": _record(1, 1, "x", [PASS])})
    summary = got["GateSummary"]
    assert r"run 1 fails dead\_latents" in summary
    assert "The baseline and run 2 pass every gate." in summary
    assert r"Warnings: the baseline triggers ce\_loss\_score\_good." in summary
    every = _defined({"run_0": _record(1, 1, "x", [WARN]), "run_1": _record(1, 1, "x", [WARN])})
    assert every["GateSummary"].endswith(r"Warnings: every run triggers ce\_loss\_score\_good.")
