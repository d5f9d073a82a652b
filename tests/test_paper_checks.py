"""Pre-compile checks: citations, figures and where they sit, duplicates, placeholders."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from agent.paper.tex.checks import bib_entries, bib_keys, check_file, check_tex

REPO = Path(__file__).resolve().parents[1]
TEMPLATE_LATEX = REPO / "templates" / "sae_variants" / "latex"
FIXTURES = Path(__file__).parent / "fixtures" / "paper"


@pytest.fixture()
def latex_dir(tmp_path: Path) -> Path:
    latex = tmp_path / "latex"
    latex.mkdir()
    shutil.copy(TEMPLATE_LATEX / "references.bib", latex)
    (latex / "results.tex").write_text("\\newcommand{\\RunOneLZero}{32.0}\n\\label{tab:results}\n")
    (latex / "figures").mkdir()  # where the writeup stage copies plot.py's figures
    (latex / "figures" / "ev_vs_l0.png").write_bytes(b"\x89PNG")
    return latex


def _doc(body: str) -> str:
    return ("\\documentclass{article}\n\\usepackage{trustedpaper}\n\\input{results.tex}\n\\begin{document}\n"
            f"{body}\n\\bibliographystyle{{plainnat}}\n\\bibliography{{references}}\n\\end{{document}}\n")


def _kinds(tex: str, latex_dir: Path, macros=None) -> list[str]:
    return [p.kind for p in check_tex(tex, latex_dir, macros)]


def test_a_clean_paper_has_no_problems(latex_dir: Path) -> None:
    tex = _doc("\\section{Method}\nAs \\citet{gao2024scaling} and \\citep[see][]{cunningham2024sparse,"
               "bricken2023monosemanticity} show, \\RunOneLZero{} \\cref{tab:results}.\n\\section{Results}\n"
               "\\begin{figure}[t]\\includegraphics[width=\\linewidth]{ev_vs_l0}\\caption{EV.}\\label{fig:ev}"
               "\\end{figure}\nSee \\cref{fig:ev}.")
    assert check_tex(tex, latex_dir, {"RunOneLZero"}) == []


def test_a_citation_key_not_in_the_bib_is_reported_with_its_line(latex_dir: Path) -> None:
    problems = check_tex(_doc("\\section{Introduction}\nSee \\cite{gao2024scaling, smith2099made}."), latex_dir)
    assert [(p.kind, p.line) for p in problems] == [("missing_citation", 6)]
    assert "smith2099made" in problems[0].message


def test_a_missing_bib_file_is_reported(latex_dir: Path) -> None:
    (latex_dir / "references.bib").unlink()
    assert _kinds(_doc("\\section{Introduction}\n\\citep{gao2024scaling}"), latex_dir) == ["missing_bib"]


def test_a_missing_figure_file_is_reported(latex_dir: Path) -> None:
    tex = _doc("\\section{Results}\n\\begin{figure}\\includegraphics{val_loss_enwik8.png}\\end{figure}")
    assert _kinds(tex, latex_dir) == ["missing_figure"]


def test_a_figure_outside_results_is_reported(latex_dir: Path) -> None:
    tex = _doc("\\section{Method}\n\\begin{figure}\\includegraphics{ev_vs_l0.png}\\end{figure}\n\\section{Results}\nR")
    problems = check_tex(tex, latex_dir)
    assert [p.kind for p in problems] == ["figure_outside_results"]
    assert "Method" in problems[0].message


def test_a_figure_in_an_appendix_is_fine(latex_dir: Path) -> None:
    tex = _doc("\\section{Results}\nR\n\\appendix\n\\section{Extra}\n\\begin{figure}\\includegraphics{ev_vs_l0.png}\\end{figure}")
    assert check_tex(tex, latex_dir) == []


def test_duplicate_sections_labels_and_end_document_are_reported(latex_dir: Path) -> None:
    tex = _doc("\\section{Results}\\label{sec:r}\n\\section{Results}\\label{sec:r}") + "\\end{document}\n"
    kinds = set(_kinds(tex, latex_dir))
    assert {"duplicate_command", "duplicate_label", "duplicate_section"} <= kinds


@pytest.mark.parametrize("text", ["\\writeupstub{Results}", "PLACEHOLDER", "TODO: numbers", "Lorem ipsum dolor",
                                  "improves by XX\\%", "[citation needed]", "RESULTS HERE",
                                  "PLEASE FILL IN CAPTION HERE", "[insert figure]", "see Table ??"])
def test_placeholder_text_is_reported(latex_dir: Path, text: str) -> None:
    assert _kinds(_doc(f"\\section{{Results}}\n{text}"), latex_dir) == ["placeholder"]


def test_placeholders_in_comments_are_not_reported(latex_dir: Path) -> None:
    assert _kinds(_doc("\\section{Results}\n% TODO maybe later, XX\\% PLACEHOLDER\nDone."), latex_dir) == []


def test_the_untouched_skeleton_reports_every_stub(latex_dir: Path) -> None:
    shutil.copy(TEMPLATE_LATEX / "template.tex", latex_dir)
    problems = check_file(latex_dir / "template.tex")
    stubs = [p.message.split("'")[1] for p in problems if p.kind == "placeholder"]
    assert stubs == ["Title", "Abstract", "Introduction", "Related Work", "Background", "Method",
                     "Experimental Setup", "Results", "Conclusion"]
    assert all(p.kind == "placeholder" for p in problems)


def test_an_unclosed_or_misclosed_environment_is_reported(latex_dir: Path) -> None:
    assert _kinds(_doc("\\section{Results}\n\\begin{itemize}\\item a\n\\end{enumerate}"), latex_dir) == ["environment"]
    assert _kinds(_doc("\\section{Results}\n\\begin{table}x"), latex_dir) == ["environment"]


def test_a_reference_to_a_missing_label_is_reported(latex_dir: Path) -> None:
    assert _kinds(_doc("\\section{Results}\nSee \\cref{fig:nothing}."), latex_dir) == ["undefined_reference"]


def test_an_unknown_results_macro_is_reported(latex_dir: Path) -> None:
    tex = _doc("\\section{Results}\n\\RunOneLZero{} and \\RunNineLZero{}.")
    assert _kinds(tex, latex_dir, {"RunOneLZero"}) == ["unknown_macro"]


def test_a_missing_results_tex_is_reported(latex_dir: Path) -> None:
    (latex_dir / "results.tex").unlink()
    problems = check_tex(_doc("\\section{Results}\nR"), latex_dir)
    assert [p.kind for p in problems] == ["missing_input"] and "generated" in problems[0].message


def test_the_bibliography_parses_into_unique_entries_with_titles_and_years() -> None:
    text = (TEMPLATE_LATEX / "references.bib").read_text()
    entries = bib_entries(text)
    keys = [e.key for e in entries]
    assert len(keys) == len(set(keys)) == len(bib_keys(text))
    assert all(e.title and e.year.isdigit() and e.authors for e in entries)
    for key in ("bricken2023monosemanticity", "cunningham2024sparse", "gao2024scaling", "rajamanoharan2024gated",
                "rajamanoharan2024jumprelu", "templeton2024scaling", "elhage2022superposition",
                "olshausen1996emergence", "marks2024sparse", "lieberum2024gemmascope", "biderman2023pythia",
                "vaswani2017attention", "kingma2015adam", "bansal2018orthogonality"):
        assert key in keys


def test_the_fixture_paper_passes_the_checks(latex_dir: Path) -> None:
    shutil.copy(FIXTURES / "paper_planted.tex", latex_dir / "template.tex")
    (latex_dir / "results.tex").write_text("\\label{tab:results}\n")
    assert check_file(latex_dir / "template.tex") == []


def test_the_sae_template_builds_on_the_shared_skeleton() -> None:
    template = (TEMPLATE_LATEX / "template.tex").read_text()
    skeleton = (REPO / "latex" / "skeleton.tex").read_text()
    sections = re.compile(r"\\section\{([^}]*)\}|\\writeupstub\{([^}]*)\}")
    assert sections.findall(template) == sections.findall(skeleton)
    for part in ("\\usepackage{trustedpaper}", "\\input{results.tex}", "\\bibliography{references}",
                 "\\begin{abstract}"):
        assert part in template
