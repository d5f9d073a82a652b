"""The writeup's material says each fact once: the macros of results.tex hold every result
(a `DeltaCI` that spells out `DeltaLow` and `DeltaHigh` is listed by name), and notes.txt is
shown without the orchestrator's metric lines, which repeat those macros."""

from __future__ import annotations

from agent.paper.build.macros import Macro
from agent.stages.writeup_prompts import macro_listing, notes_for_writeup


def _run(name: str, ci: str) -> list[Macro]:
    return [Macro(name, "0.779", "run_1", "explained_variance", "value", 0.779),
            Macro(name + "Delta", "$-$0.092", "run_1", "explained_variance", "delta", -0.092, "run_0"),
            Macro(name + "DeltaLow", "$-$0.096", "run_1", "explained_variance", "delta_low", -0.096, "run_0"),
            Macro(name + "DeltaHigh", "$-$0.088", "run_1", "explained_variance", "delta_high", -0.088, "run_0"),
            Macro(name + "Verdict", "worse", "run_1", "explained_variance", "verdict", None, "run_0"),
            Macro(name + "DeltaCI", ci, "run_1", "explained_variance", "delta_ci", None, "run_0")]


def test_a_delta_interval_that_spells_out_its_bounds_is_listed_by_name_alone() -> None:
    listing = macro_listing(_run("RunOneExplainedVariance", "95\\% CI [$-$0.096, $-$0.088]"))
    assert listing == ("\\RunOneExplainedVariance = 0.779 | Delta $-$0.092 | DeltaLow $-$0.096 | DeltaHigh $-$0.088"
                       " | Verdict worse | DeltaCI  (run_1, explained_variance)")
    # the twin: any other text is listed with its value
    other = macro_listing(_run("RunOneExplainedVariance", "95\\% CI [$-$0.097, $-$0.088]"))
    assert other.endswith("| DeltaCI 95\\% CI [$-$0.097, $-$0.088]  (run_1, explained_variance)")


RECORDED = """## Run 1
Recorded by the orchestrator from run_1/final_info.json (code commit ec8fbad58f).
What was tried: strict orthogonality (alpha = 0)
Config changed since the baseline: alpha = 0.0 (new)
Metrics are means over 3 seeds ± the half-width of the 95% interval of the mean; differences use Welch's interval; verdicts are computed.
- Explained variance: 0.779 ± 0.005 (seeds 0.780, 0.781, 0.777); against the baseline -0.092 [95% CI -0.096, -0.088]: worse
- L0 (active latents per token): 30.6 ± 3.5 (seeds 29.0, 31.2, 31.6); against the baseline -10.0 [95% CI -13.3, -6.7]: better
Gates: all pass
"""
ANALYSIS = """
## Analysis of run 1
- Explained variance: below the baseline's, so the separation costs reconstruction.
"""


def test_the_notes_are_shown_without_the_orchestrators_metric_lines_and_with_everything_else() -> None:
    notes = "# Notes\n\n" + RECORDED + ANALYSIS
    shown = notes_for_writeup(notes, [RECORDED], ["Explained variance", "L0 (active latents per token)"])
    assert "0.779 ± 0.005" not in shown and "seeds 29.0" not in shown and "Metrics are means" not in shown
    assert "Metrics: in the macros of results.tex" in shown
    for kept in ("What was tried: strict orthogonality", "Config changed since the baseline: alpha = 0.0",
                 "Gates: all pass", ANALYSIS):  # the model's own lines stay, even one that looks alike
        assert kept in shown
    assert notes_for_writeup(notes, [], ["Explained variance"]) == notes  # only the orchestrator's sections
