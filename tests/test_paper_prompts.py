"""The writeup prompts render under StrictUndefined, and their headers list exactly their variables."""

from __future__ import annotations

import re
from pathlib import Path

import jinja2
import jinja2.meta
import pytest

from agent.paper.build.sections import DRAFT_ORDER, stubs

PROMPTS = Path(__file__).resolve().parents[1] / "agent" / "prompts"
RUNS = [{"name": "run_0", "description": "baseline: the unmodified template"},
        {"name": "run_1", "description": "TopK with k = 32"}]
COMPARISONS = ["run_1 vs run_0, L0: -5.333 [95% CI -7.144, -3.523]: better (n = 3 vs 3; \\RunOneLZeroDelta, "
               "\\RunOneLZeroDeltaCI, \\RunOneLZeroVerdict)"]
HYPOTHESES = ['H1: "TopK lowers L0" -- L0 of run 1 vs. baseline, expected decrease by at least 2.0: SUPPORTED, '
              "diff -5.33 [95% CI -7.1, -3.5]; the interval lies below 0 (\\HypothesisOneVerdict)"]
SAMPLES = {
    "writeup_section": dict(section="Results", stubs=["\\writeupstub{Results}"], table_macro="ResultsTable",
                            tex="\\section{Results}"),
    "writeup_context": dict(
        idea_title="TopK SAEs", idea="Replace L1 with TopK.",
        runs=RUNS, macros="\\RunOneLZero = 32.0 | Low 30.1  (run_1, l0)",
        seed_note="Every run (the baseline included) was trained with 3 seeds (0, 1, 2), all of which succeeded.",
        comparisons=COMPARISONS, hypotheses=HYPOTHESES,
        references=["gao2024scaling: Gao et al. (2024), Scaling and Evaluating Sparse Autoencoders"],
        figures=[{"name": "ev_vs_l0.png", "description": "explained variance against L0"}],
        gate_failures=["run_1: 15.2% of latents are dead (warn)"], notes="Run 1: TopK."),
    "writeup_refine": dict(section="Results",
                           problems=["line 80: \\cite key 'x' is not in references.bib"]),
    "writeup_grounding_fix": dict(findings=['[Results, line 80] number: "15\\%" -- matches no value'],
                                  macros="\\RunOneMse = 0.0275", runs=RUNS, comparisons=COMPARISONS,
                                  hypotheses=HYPOTHESES, attempt=1, max_attempts=3),
    "writeup_latex_fix": dict(status="failed", errors=["line 12: ! Undefined control sequence.\n    l.12 \\RunNine"],
                              warnings=["Citation `x' on page 1 undefined"], chktex=["3:5: [9] `}' expected"],
                              problems=["line 4: figure file 'a.png' does not exist"], tex="\\section{Method}",
                              attempt=2, max_attempts=3),
    "writeup_system": dict(template_name="sae_variants", template_description="SAEs on a residual stream."),
}


def _env() -> jinja2.Environment:
    # The same settings as agent.prompting: a missing variable is an error, not an empty string.
    return jinja2.Environment(loader=jinja2.FileSystemLoader(PROMPTS), undefined=jinja2.StrictUndefined,
                              trim_blocks=True, lstrip_blocks=True, autoescape=False)


def _documented(name: str) -> set[str]:
    header = re.match(r"\{#(.*?)#\}", (PROMPTS / f"{name}.j2").read_text(), re.S)
    assert header, f"{name}.j2 has no header comment"
    block = header.group(1).split("Variables:", 1)[1]
    return set(re.findall(r"^\s{2}(\w+)\s", block, re.M))


def test_every_writeup_prompt_has_a_sample() -> None:
    assert {p.stem for p in PROMPTS.glob("writeup_*.j2")} == set(SAMPLES)


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_prompt_renders_with_its_documented_variables(name: str) -> None:
    assert _documented(name) == set(SAMPLES[name])
    text = _env().get_template(f"{name}.j2").render(**SAMPLES[name])
    assert "{{" not in text and "{%" not in text and len(text) > 200


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_prompt_header_lists_exactly_what_the_template_uses(name: str) -> None:
    source = (PROMPTS / f"{name}.j2").read_text()
    used = jinja2.meta.find_undeclared_variables(_env().parse(source))
    assert used == _documented(name)


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_a_missing_variable_is_an_error(name: str) -> None:
    variables = dict(SAMPLES[name])
    variables.pop(sorted(variables)[0])
    with pytest.raises(jinja2.UndefinedError):
        _env().get_template(f"{name}.j2").render(**variables)


@pytest.mark.parametrize("section", DRAFT_ORDER)
def test_every_section_has_tips_and_names_its_stubs(section: str) -> None:
    variables = {**SAMPLES["writeup_section"], "section": section, "stubs": list(stubs(section))}
    text = _env().get_template("writeup_section.j2").render(**variables)
    assert "Tips for this part:\n- " in text
    assert all(stub in text for stub in stubs(section))


def test_the_section_prompt_insists_on_macros_the_baseline_and_figure_placement() -> None:
    # the rules and the material sit in the system message every writeup call shares
    text = _env().get_template("writeup_context.j2").render(**SAMPLES["writeup_context"])
    section = _env().get_template("writeup_section.j2").render(**SAMPLES["writeup_section"])
    assert "Follow the rules above" in section and "\\section{Results}" in section
    assert "\\ResultsTable" in section and "\\writeupstub{Results} and nothing else" in section
    assert "ONLY through the macros of `results.tex`" in text
    assert "The baseline is run_0" in text
    assert "Figures and tables belong only in the Results section" in text
    assert "\\RunOneLZero = 32.0 | Low 30.1" in text and "gao2024scaling" in text and "ev_vs_l0.png" in text
    assert "Run 1: TopK." in text
    assert "15.2% of latents are dead" in text


def test_the_method_tips_keep_figures_out_of_the_method() -> None:
    variables = {**SAMPLES["writeup_section"], "section": "Method", "stubs": ["\\writeupstub{Method}"]}
    text = _env().get_template("writeup_section.j2").render(**variables)
    assert "results, figures and tables belong in Results" in text


def test_the_latex_fix_prompt_lists_errors_warnings_and_chktex() -> None:
    text = _env().get_template("writeup_latex_fix.j2").render(**SAMPLES["writeup_latex_fix"])
    for part in ("Undefined control sequence", "Citation `x'", "[9]", "a.png", "attempt 2 of 3"):
        assert part in text


def test_the_grounding_fix_prompt_lists_findings_and_macros() -> None:
    text = _env().get_template("writeup_grounding_fix.j2").render(**SAMPLES["writeup_grounding_fix"])
    assert '1. [Results, line 80] number: "15\\%"' in text and "\\RunOneMse = 0.0275" in text
