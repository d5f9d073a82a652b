"""The compiled paper is checked as its reader sees it: a number TeX typeset that neither the
source nor results.tex holds is a finding, whatever made TeX print it; honest papers pass."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from agent import pdftools
from agent.paper.build import compile as compile_mod
from agent.paper.ground import typeset

RESULTS = "\\newcommand{\\RunOneExplainedVariance}{0.780\\xspace}\n\\newcommand{\\NumSeeds}{3\\xspace}\n"
PAPER = r"""\documentclass{article}
\usepackage{xspace}
\input{results.tex}
\begin{document}
\section{Results}
Run 1 reaches an explained variance of \RunOneExplainedVariance{} over \NumSeeds seeds
(Section~\ref{sec:x}); the model has 128 dimensions and $2^{10}$ latents.%s
\section{More}\label{sec:x}
\begin{equation} x = 1 \end{equation}
\end{document}
"""
# What the source-level checker reads as a comment, TeX runs: the percent sign is made a
# character to ignore, so the rest of the line typesets a number no source line says.
LAUNDER = "\n\\catcode`\\%=9 % The true value is 0.990.\n"


def _compiled(tmp_path: Path, extra: str) -> tuple[str, str]:
    if shutil.which("pdflatex") is None or shutil.which("pdftotext") is None:
        pytest.skip("TeX Live or poppler-utils missing")
    (tmp_path / "results.tex").write_text(RESULTS)
    tex = PAPER.replace("%s", extra)
    (tmp_path / "template.tex").write_text(tex)
    result = compile_mod.compile_paper(tmp_path, timeout_s=120, chktex=False)
    assert result.ok, result.feedback()
    shown = pdftools.text(result.pdf_path)  # type: ignore[arg-type]
    assert not shown.problem
    return shown.text, tex


def test_a_number_only_tex_made_is_found_with_the_source_line_before_it(tmp_path: Path) -> None:
    text, tex = _compiled(tmp_path, LAUNDER)
    assert "0.990" in text  # TeX printed it
    found = typeset.untraced(text, tex, [RESULTS])
    assert [f.text for f in found] == ["0.990"]
    assert found[0].kind == "typeset" and found[0].section == "Results"
    assert tex.splitlines()[found[0].line - 1].startswith("\\catcode")  # "The true value is" is there
    assert "neither the paper's source nor results.tex" in found[0].describe()


def test_the_honest_twin_macros_numbering_and_glued_superscripts_pass(tmp_path: Path) -> None:
    text, tex = _compiled(tmp_path, "")
    assert "0.780" in text and "210" in text.replace(" ", "")  # 2^{10} reads as 210
    assert typeset.untraced(text, tex, [RESULTS]) == []


def test_the_toy_papers_numbers_are_traced_and_an_invented_one_is_not() -> None:
    from tests.e2e_helpers import PARTS, TOY_TEMPLATES

    skeleton = (TOY_TEMPLATES / "toy_template" / "latex" / "template.tex").read_text()
    tex = skeleton
    for pairs in PARTS.values():
        for old, new in pairs:
            tex = tex.replace(old, new)
    # the text of that paper as pdftotext gives it, with numbers only the macros hold
    shown = "Momentum on a Quadratic Bowl\nWith momentum the final loss is 0.0123 against 1.25 for the baseline.\n1 Introduction\n\f2"
    results = "\\newcommand{\\RunOneFinalLoss}{0.0123\\xspace}\\newcommand{\\BaselineFinalLoss}{1.25\\xspace}"
    assert typeset.untraced(shown, tex, [results]) == []
    assert [f.text for f in typeset.untraced(shown + " and 0.0007", tex, [results])] == ["0.0007"]
