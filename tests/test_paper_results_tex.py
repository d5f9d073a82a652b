"""results.tex: a macro for every number, deltas for declared metrics, a booktabs table."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from agent.paper.build.results_tex import (
    build_results_tex,
    metric_word,
    number_word,
    write_results_tex,
)
from agent.paper.build.spec import MetricSpec, as_specs
from tests.conftest import REPO

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


def test_declared_metrics_get_signed_deltas_against_the_baseline(sae: dict) -> None:
    by_name = {m.name: m for m in _macros(sae).macros}
    assert by_name["RunOneExplainedVarianceDelta"].value == "+0.061"
    assert by_name["RunOneLZeroDelta"].value == "$-$99.5"
    assert by_name["RunOneLZeroDeltaPct"].value == r"$-$75.7\%"
    assert by_name["RunOneFracDeadDelta"].value == "+7.5 pp"  # a difference of percentages
    # not a headline metric, but declared: a paper comparing it needs its difference and verdict
    mse = sae["runs"]["run_1"]["metrics"]["mse"] - sae["runs"]["run_0"]["metrics"]["mse"]
    assert by_name["RunOneMseDelta"].number == pytest.approx(mse)
    assert by_name["RunOneMseVerdict"].value == "no interval (1 seed)"
    assert "BaselineExplainedVarianceDelta" not in by_name
    runs = {k: {**v, "metrics": {**v["metrics"], "extra_stat": 1.0}} for k, v in sae["runs"].items()}
    undeclared = {m.name for m in build_results_tex(runs, sae["metrics"]).macros}
    assert "RunOneExtraStat" in undeclared and "RunOneExtraStatDelta" not in undeclared


def test_table_is_booktabs_with_direction_arrows_and_no_best_in_bold(sae: dict) -> None:
    text = _macros(sae).text
    assert "\\toprule" in text and "\\midrule" in text and "\\bottomrule" in text
    assert r"Explained variance $\uparrow$" in text and r"L0 $\downarrow$" in text
    assert r"\textbf" not in text  # a largest single-seed value is not a finding
    assert "single seed per run: there are no intervals" in text
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
    assert [m.name for m in result.macros if m.run] == []


def test_listing_names_every_macro_for_the_prompt(sae: dict) -> None:
    result = _macros(sae)
    listing = result.listing()
    assert "\\RunTwoCeLossScore = 0.944  (run_2, ce_loss_score, value)" in listing
    assert len(listing.splitlines()) == len(result.macros)


def test_write_puts_results_tex_in_the_latex_folder(tmp_path: Path, sae: dict) -> None:
    result = write_results_tex(tmp_path / "latex", sae["runs"], as_specs(sae["metrics"]), sae["descriptions"])
    assert (tmp_path / "latex" / "results.tex").read_text() == result.text


def test_importing_the_package_loads_no_heavy_library() -> None:
    code = ("import sys, agent.paper, agent.paper.build.results_tex, agent.paper.ground.grounding, agent.paper.tex.checks, "
            "agent.paper.build.compile; bad = [m for m in ('pylatex', 'torch', 'litellm') if m in sys.modules]; "
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


def _defined(infos: dict, setup: tuple | None = None) -> dict[str, str]:
    """The Setup and Gate macros, with the SAE template's setup facts (its template.toml)."""
    from agent import template as template_mod

    facts = template_mod.load(REPO / "templates" / "sae_variants").setup if setup is None else setup
    text = build_results_tex(infos, [MetricSpec("l0", "L0")], setup=facts).text
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
    # the facts are the template's: without its [[setup]] only the preset, seeds and gates remain
    bare = _defined({"run_0": _record(1, 1, "x", [PASS])}, setup=())
    assert set(bare) == {"SetupPreset", "SetupSeeds", "SetupNumSeeds", "GateSummary"}


def test_a_fact_that_differs_between_runs_says_so() -> None:
    got = _defined({"run_0": _record(1, 300_032, "x", [PASS], seed=0),
                    "run_1": _record(1, 600_064, "x", [PASS], seed=1)})
    assert got["SetupTrainTokens"] == "300{,}032 (baseline; runs differ)"
    assert got["SetupSeeds"] == "0, 1" and got["SetupNumSeeds"] == "1"  # one seed per run


def test_the_gate_summary_names_every_failing_and_warning_run() -> None:
    got = _defined({"run_0": _record(1, 1, "x", [PASS, WARN]), "run_1": _record(1, 1, "x", [FAIL]),
                    "run_2": _record(1, 1, "x", [PASS])})
    summary = got["GateSummary"]
    assert r"run 1 fails dead\_latents" in summary
    assert "The baseline and run 2 pass every gate." in summary
    assert r"Warnings: the baseline triggers ce\_loss\_score\_good." in summary
    every = _defined({"run_0": _record(1, 1, "x", [WARN]), "run_1": _record(1, 1, "x", [WARN])})
    assert every["GateSummary"].endswith(r"Warnings: every run triggers ce\_loss\_score\_good.")


# --- seeds, intervals, verdicts, hypotheses ------------------------------------------------------

SPECS = [MetricSpec("explained_variance", "Explained variance", "higher", True, ".3f"),
         MetricSpec("l0", "L0", "lower", True, ".1f"),
         MetricSpec("dead_frac", "Dead latents", "lower", True, ".1%"),
         MetricSpec("mse", "MSE", "lower", False, ".4f")]


def _seeded(values: dict[str, list[float]], failed: tuple[int, ...] = (), independent: bool = True) -> dict:
    """A run's final_info.json as the evaluator writes it with seeds (ci95 from agent.stats)."""
    from agent import stats

    ok = [s for s in (0, 1, 2) if s not in failed]

    def ci(v: list[float]) -> list[float] | None:
        found = stats.summarize(v).ci
        return list(found) if found else None
    return {"metrics": {k: sum(v) / len(v) for k, v in values.items()},
            "config": {"seed": [0, 1, 2], "model": "tiny-neox"},
            "seeds": {"requested": [0, 1, 2], "succeeded": ok, "n": len(ok), "independent": independent,
                      "failed": [{"seed": s, "reason": "exited 1"} for s in failed], "level": 0.95,
                      "values": values, "ci95": {k: ci(v) for k, v in values.items()}}}


SEEDED = {
    "run_0": _seeded({"explained_variance": [0.433, 0.430, 0.436], "l0": [31.2, 29.8, 30.5],
                      "dead_frac": [0.04, 0.05, 0.045], "mse": [0.02, 0.021, 0.0205]}),
    "run_1": _seeded({"explained_variance": [0.404, 0.401, 0.407], "l0": [25.0, 26.1, 24.4],
                      "dead_frac": [0.03, 0.06, 0.05], "mse": [0.025, 0.026, 0.0255]}),
    "run_2": _seeded({"explained_variance": [0.417, 0.441], "l0": [30.0, 31.5], "dead_frac": [0.02, 0.03],
                      "mse": [0.02, 0.021]}, failed=(1,)),
    "run_3": _seeded({"explained_variance": [0.45], "l0": [28.0], "dead_frac": [0.01], "mse": [0.019]},
                     failed=(0, 2)),
}
VERDICTS = {"level": 0.95, "problem": None, "verdicts": [
    {"id": "H1", "statement": "Orthogonality lowers L0 by ≥ 2 latents & keeps 50% of EV — per token…",
     "metric": "l0", "run": 1, "against": 0, "expected": "decrease", "smallest_effect": 2.0,
     "amended_after_run": None, "added_after_results": False, "verdict": "supported", "diff": -5.333,
     "ci": [-7.144, -3.523], "n_run": 3, "n_against": 3, "why": "below 0"},
    {"id": "H2", "statement": "EV rises", "metric": "explained_variance", "run": 2, "against": 1,
     "expected": "increase", "smallest_effect": 0.01, "amended_after_run": 1, "added_after_results": False,
     "verdict": "inconclusive", "diff": 0.025, "ci": [-0.1, 0.15], "n_run": 2, "n_against": 3, "why": "0 inside"},
    {"id": "H3", "statement": "Fewer dead latents", "metric": "dead_frac", "run": 4, "against": 0,
     "expected": "decrease", "smallest_effect": 0.005, "amended_after_run": 2, "added_after_results": True,
     "verdict": "inconclusive", "diff": None, "ci": None, "n_run": 0, "n_against": 3, "why": "never executed"},
]}


def _by_name(result) -> dict:
    return {m.name: m for m in result.macros}


def test_a_seeded_run_gets_its_interval_sd_and_half_width_from_the_seed_values() -> None:
    from agent import stats

    got = _by_name(build_results_tex(SEEDED, SPECS))
    s = stats.summarize(SEEDED["run_1"]["seeds"]["values"]["l0"])
    assert got["RunOneLZeroLow"].number == pytest.approx(s.ci[0]) and got["RunOneLZeroLow"].kind == "ci_low"
    assert got["RunOneLZeroHigh"].number == pytest.approx(s.ci[1]) and got["RunOneLZeroHigh"].kind == "ci_high"
    assert got["RunOneLZeroSd"].number == pytest.approx(s.sd) and got["RunOneLZeroSd"].kind == "sd"
    assert got["RunOneLZeroPM"].number == pytest.approx((s.ci[1] - s.ci[0]) / 2) and got["RunOneLZeroPM"].kind == "ci_half"
    assert (got["RunOneLZeroLow"].value, got["RunOneLZeroHigh"].value, got["RunOneLZeroPM"].value) == ("23.0", "27.3", "2.1")
    assert got["BaselineDeadFracPM"].value == r"1.2\%" and "BaselineMseSd" in got  # every metric, not only headline
    assert not any(n.startswith("RunThree") and n.endswith(("Low", "High", "Sd", "PM")) and "Delta" not in n
                   for n in got)  # one successful seed: no interval


def test_comparisons_give_the_welch_interval_and_the_verdict() -> None:
    from agent import stats

    got = _by_name(build_results_tex(SEEDED, SPECS))
    c = stats.compare(SEEDED["run_1"]["seeds"]["values"]["explained_variance"],
                      SEEDED["run_0"]["seeds"]["values"]["explained_variance"], "higher")
    assert got["RunOneExplainedVarianceDeltaLow"].number == pytest.approx(c.ci[0])
    assert got["RunOneExplainedVarianceDeltaHigh"].number == pytest.approx(c.ci[1])
    assert got["RunOneExplainedVarianceVerdict"].value == "worse" == c.verdict
    assert got["RunOneExplainedVarianceDeltaCI"].value == r"95\% CI [$-$0.036, $-$0.022]"
    assert got["RunOneLZeroVerdict"].value == "better"  # lower is better
    assert got["RunOneDeadFracVerdict"].value == "no detectable difference"
    assert got["RunOneDeadFracDeltaCI"].value == r"95\% CI [$-$3.2 pp, 3.6 pp]"
    assert got["RunThreeLZeroVerdict"].value == "no interval (1 seed)" == got["RunThreeLZeroDeltaCI"].value
    assert "RunThreeLZeroDeltaLow" not in got
    assert "RunOneMseVerdict" in got  # declared, though not headline: its comparison is there too
    assert {m.against for m in got.values() if m.kind in ("delta", "delta_low", "verdict", "delta_ci")} == {"run_0"}
    assert got["RunOneLZeroVerdict"].line() == r"\RunOneLZeroVerdict = better  (run_1, l0, verdict)"


def test_the_table_shows_mean_pm_half_width_marks_verdicts_and_says_over_how_many_seeds() -> None:
    text = build_results_tex(SEEDED, SPECS).text
    assert r"$0.433 \pm 0.007$" in text and r"$0.404 \pm 0.007$\rlap{$^{-}$}" in text
    assert r"$25.2 \pm 2.1$\rlap{$^{+}$}" in text and r"$4.7\% \pm 3.8\%$\\" in text  # no mark: no difference
    assert "&$0.450$&$28.0$&$1.0\\%$" in text  # one seed: the plain value
    assert r"\textbf" not in text
    assert "over 3 seeds per run (run 2: 2 seeds; run 3: 1 seed)" in text
    assert r"$^{+}$ better / $^{-}$ worse than the baseline: the 95\% Welch interval of the difference excludes 0" in text


def test_seed_setup_macros_come_from_the_seeds_section() -> None:
    got = _by_name(build_results_tex(SEEDED, SPECS))
    assert got["SetupSeeds"].value == "0, 1, 2" and got["SetupNumSeeds"].value == "3"
    assert got["SetupNumSeeds"].number == 3.0
    summary = got["SeedSummary"].value
    assert summary.startswith("Every run (the baseline included) was trained with 3 seeds (0, 1, 2)")
    assert "Run 2: 2 of 3 seeds succeeded (seed 1 failed)." in summary
    assert "Run 3: 1 of 3 seeds succeeded (seeds 0, 2 failed), so it has no interval." in summary
    identical = {"run_0": _seeded({"l0": [3.0, 3.0, 3.0]}, independent=False)}
    result = build_results_tex(identical, [MetricSpec("l0", "L0", headline=True)])
    assert "identical weights" in _by_name(result)["SeedSummary"].value and "BaselineLZeroLow" not in _by_name(result)
    single = _by_name(build_results_tex({"run_0": {"metrics": {"l0": 1.0}, "config": {"seed": [4, 5]}}}, SPECS))
    assert single["SetupSeeds"].value == "4, 5" and "single seed" in single["SeedSummary"].value


def test_a_record_that_disagrees_with_its_own_seeds_is_reported() -> None:
    import copy

    infos = copy.deepcopy(SEEDED)
    infos["run_1"]["seeds"]["ci95"]["l0"] = [20.0, 30.0]
    infos["run_1"]["metrics"]["mse"] = 0.5
    problems = build_results_tex(infos, SPECS).problems
    assert any("run_1 l0: seeds.ci95 is [20.0, 30.0]" in p for p in problems)
    assert any("run_1 mse: metrics holds 0.5" in p for p in problems)
    assert build_results_tex(SEEDED, SPECS).problems == ()


def test_hypotheses_get_macros_and_a_table_with_marks() -> None:
    result = build_results_tex(SEEDED, SPECS, hypotheses=VERDICTS)
    got = _by_name(result)
    # H3 was added after the results: listed and marked, not counted among the pre-registered
    assert got["NumHypotheses"].value == "2" and got["NumHypothesesSupported"].value == "1"
    assert got["HypothesisOneVerdict"].value == "supported" and got["HypothesisOneVerdict"].kind == "hypothesis_verdict"
    assert got["HypothesisOneDiff"].value == "$-$5.3" and got["HypothesisOneDiff"].number == -5.333
    assert got["HypothesisOneLow"].number == -7.144 and got["HypothesisOneHigh"].value == "$-$3.5"
    assert got["HypothesisOneCI"].value == r"95\% CI [$-$7.1, $-$3.5]"
    assert (got["HypothesisTwoDiff"].run, got["HypothesisTwoDiff"].against) == ("run_2", "run_1")
    assert got["HypothesisOneStatement"].value == (r"Orthogonality lowers L0 by $\geq$ 2 latents \& keeps 50\% "
                                                   r"of EV --- per token\ldots{}")
    assert got["HypothesisThreeVerdict"].value == "inconclusive"
    # without a result or an interval Diff and CI still exist (a paper citing them compiles)
    assert (got["HypothesisThreeDiff"].value, got["HypothesisThreeDiff"].number) == ("n/a", None)
    assert got["HypothesisThreeCI"].value == "no interval (no result)" and "HypothesisThreeLow" not in got
    one_seed = {"verdicts": [{**VERDICTS["verdicts"][0], "ci": None, "n_run": 1, "n_against": 3}]}
    assert _by_name(build_results_tex(SEEDED, SPECS, hypotheses=one_seed))["HypothesisOneCI"].value \
        == "no interval (1 seed)"
    text = result.text
    assert r"H2$^{\ast}$&EV rises&" in text and r"H3$^{\dagger}$&" in text and "&not run&" in text
    assert r"amended after results were seen (H2 after run 1)" in text
    assert r"added after results were seen, so not pre-registered and not counted (H3 after run 2)" in text
    assert r"\label{tab:hypotheses}" in text and {"HypothesesTable", "HypothesesTabular"} <= result.names()
    assert "H1: " in result.hypotheses[0] and "SUPPORTED" in result.hypotheses[0]


def test_an_amended_hypothesis_shows_its_registered_and_its_amended_form_and_only_the_first_counts() -> None:
    registered = {**VERDICTS["verdicts"][0], "amended_after_run": 1, "verdict": "supported"}
    amended = {**registered, "statement": "Orthogonality lowers L0 by 20", "smallest_effect": 20.0,
               "after_run": 1, "reason": "noisier than planned", "verdict": "refuted"}
    result = build_results_tex(SEEDED, SPECS, hypotheses={"verdicts": [{**registered, "amended": amended}]})
    got = _by_name(result)
    assert got["HypothesisOneVerdict"].value == "supported" and got["NumHypothesesSupported"].value == "1"
    assert got["NumHypothesesRefuted"].value == "0"
    text = result.text
    rows = [line for line in text.splitlines() if line.startswith("H1") or "amended after run 1&" in line]
    assert len(rows) == 2 and r"&supported\\" in rows[0] and r"&refuted (post hoc)\\" in rows[1]
    assert "Orthogonality lowers L0 by 20" in rows[1] and "whose verdict is the one that counts" in text
    assert "post hoc, REFUTED" in result.hypotheses[1] and "counts nowhere" in result.hypotheses[1]


@pytest.mark.parametrize("doc, sentence", [
    (None, "No hypotheses were pre-registered for these runs."),
    ({"verdicts": []}, "No hypotheses were pre-registered for these runs."),
    ({"verdicts": [], "problem": "the plan had no `hypotheses` block & 2% of it was prose"},
     r"No hypotheses were pre-registered for these runs: the plan had no `hypotheses` block \& 2\% of it was prose."),
])
def test_without_hypotheses_the_table_macro_still_prints_why(doc, sentence) -> None:
    result = build_results_tex(SEEDED, SPECS, hypotheses=doc)
    assert f"\\newcommand{{\\HypothesesTable}}{{\\par\\noindent {sentence}\\par}}" in result.text
    assert _by_name(result)["NumHypotheses"].value == "0" and "HypothesesTable" in result.names()


def test_the_prompt_lines_list_every_comparison_with_its_macros() -> None:
    result = build_results_tex(SEEDED, SPECS)
    assert len(result.comparisons) == 9  # 3 runs x 3 headline metrics
    assert result.comparisons[1].startswith("run_1 vs run_0, L0: -5.333 [95% CI -7.144, -3.523]: better (n = 3 vs 3; "
                                            "\\RunOneLZeroDelta, \\RunOneLZeroDeltaCI, \\RunOneLZeroVerdict)")
    assert "no interval: 1 seed" in result.comparisons[-1]
    assert "Run 2: 2 of 3 seeds succeeded" in result.seed_note


needs_tex = pytest.mark.skipif(shutil.which("pdflatex") is None, reason="pdflatex is not installed")


@needs_tex
def test_results_tex_with_seeds_and_hypotheses_compiles(tmp_path: Path) -> None:
    from agent.paper.build.compile import compile_paper

    latex = tmp_path / "latex"
    shutil.copytree(Path(__file__).parents[1] / "templates" / "sae_variants" / "latex", latex)
    h2 = VERDICTS["verdicts"][1]  # amended after run 1: its post hoc form is a row of its own
    amended = {**h2, "statement": "EV rises by 5% & more", "after_run": 1, "reason": "noisy", "verdict": "refuted"}
    doc = {**VERDICTS, "verdicts": [VERDICTS["verdicts"][0], {**h2, "amended": amended}, *VERDICTS["verdicts"][2:]]}
    result = write_results_tex(latex, SEEDED, SPECS, {"run_1": "orthogonal & 50% wider"}, doc)
    assert "(post hoc)" in result.text
    cited = " ".join(f"\\{m.name}{{}}" for m in result.macros)
    (latex / "template.tex").write_text(
        "\\documentclass{article}\\usepackage{trustedpaper}\\input{results.tex}\\begin{document}\n"
        f"{cited}\n\n\\ResultsTable\\HypothesesTable See \\cref{{tab:results,tab:hypotheses}}.\\end{{document}}\n")
    compiled = compile_paper(latex, timeout_s=120, chktex=False)
    assert compiled.status == "ok", compiled.feedback()
    empty = write_results_tex(latex, SEEDED, SPECS, hypotheses={"verdicts": [], "problem": "none given #1 ~ ok"})
    (latex / "template.tex").write_text(
        "\\documentclass{article}\\usepackage{trustedpaper}\\input{results.tex}\\begin{document}\n"
        f"\\HypothesesTable \\HypothesesTabular \\NumHypotheses{{}} {len(empty.macros)}\\end{{document}}\n")
    assert compile_paper(latex, timeout_s=120, chktex=False).status == "ok"


def test_the_caption_says_when_nothing_differs_or_nothing_has_an_interval() -> None:
    same = {"run_0": _seeded({"l0": [30.0, 31.0, 29.0]}), "run_1": _seeded({"l0": [30.5, 29.5, 30.2]})}
    l0 = [MetricSpec("l0", "L0", "lower", True, ".1f")]
    assert "No run is detectably better or worse than the baseline" in build_results_tex(same, l0).text
    one_seed_baseline = {"run_0": {"metrics": {"l0": 30.0}}, "run_1": _seeded({"l0": [30.5, 29.5, 30.2]})}
    text = build_results_tex(one_seed_baseline, l0).text
    assert "No difference to the baseline has an interval (one side has a single seed)." in text
    assert "(the baseline: 1 seed)" in text and "detectably" not in text


def test_a_seed_is_printed_as_it_is_and_a_count_with_separators() -> None:
    """`format = "id"` (a seed, a year): no thousands separator; `int`: with one."""
    from agent.template import SetupFact

    info = {"metrics": {"l0": 1.0}, "setup": {"eval_seed": 2020, "n_train": 8000}}
    got = _defined({"run_0": info}, setup=(SetupFact("SetupEvalSeed", ("setup.eval_seed",), "id"),
                                           SetupFact("SetupTrainPoints", ("setup.n_train",), "int")))
    assert got["SetupEvalSeed"] == "2020" and got["SetupTrainPoints"] == "8{,}000"
