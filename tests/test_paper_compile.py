"""Compiling: the skeleton builds with pdflatex + bibtex; errors come back as values."""

from __future__ import annotations

import json
import shutil
import struct
import zlib
from pathlib import Path

import pytest

from agent.paper.build import compile as compile_mod
from agent.paper.build.compile import bibtex_problems, compile_paper, log_errors, log_warnings
from agent.paper.build.results_tex import write_results_tex

REPO = Path(__file__).resolve().parents[1]
TEMPLATE_LATEX = REPO / "templates" / "sae_variants" / "latex"
FIXTURES = Path(__file__).parent / "fixtures" / "paper"
needs_tex = pytest.mark.skipif(shutil.which("pdflatex") is None or shutil.which("bibtex") is None,
                               reason="pdflatex/bibtex not installed")


def _png(path: Path) -> None:
    """A valid 1x1 white PNG, so the test needs no plotting library."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(b"\x00\xff\xff\xff")) + chunk(b"IEND", b""))


@pytest.fixture()
def run_dir(tmp_path: Path) -> Path:
    """A run directory as the writeup stage sees it: latex/ from the template, results.tex, a figure."""
    shutil.copytree(TEMPLATE_LATEX, tmp_path / "latex")
    data = json.loads((FIXTURES / "sae_runs.json").read_text())
    write_results_tex(tmp_path / "latex", data["runs"], data["metrics"], data["descriptions"])
    _png(tmp_path / "ev_vs_l0.png")
    compile_mod.copy_figures(tmp_path / "latex", tmp_path, ["ev_vs_l0.png"])  # as the writeup stage does
    return tmp_path


@pytest.mark.slow
@needs_tex
def test_the_filled_in_skeleton_compiles_with_citations_and_the_results_table(run_dir: Path) -> None:
    shutil.copy(FIXTURES / "paper_planted.tex", run_dir / "latex" / "template.tex")
    result = compile_paper(run_dir / "latex", timeout_s=120, pdf_out=run_dir / "paper.pdf")
    assert result.status == "ok", result.feedback()
    assert result.pdf_path == run_dir / "paper.pdf" and result.pdf_path.stat().st_size > 10_000
    assert result.errors == () and result.bibtex_errors == () and result.warnings == ()
    assert (run_dir / "latex" / "trustedpaper.sty").is_file()  # the run directory rebuilds on its own
    bbl = (run_dir / "latex" / "template.bbl").read_text()
    assert "Scaling and evaluating sparse autoencoders" in bbl


@needs_tex
def test_the_untouched_skeleton_compiles_too(run_dir: Path) -> None:
    result = compile_paper(run_dir / "latex", timeout_s=120, chktex=False)
    assert result.status == "ok", result.feedback()


@needs_tex
def test_every_bibliography_entry_typesets_without_bibtex_errors(run_dir: Path) -> None:
    (run_dir / "latex" / "all.tex").write_text(
        "\\documentclass{article}\\usepackage{trustedpaper}\\begin{document}\\nocite{*}"
        "\\bibliographystyle{plainnat}\\bibliography{references}\\end{document}\n")
    result = compile_paper(run_dir / "latex", timeout_s=120, main="all.tex", chktex=False)
    assert result.status == "ok", result.feedback()
    assert result.bibtex_errors == ()


@needs_tex
def test_an_undefined_macro_comes_back_as_an_error_with_its_line(run_dir: Path) -> None:
    tex = (FIXTURES / "paper_planted.tex").read_text().replace(
        "\\section{Method}", "\\section{Method}\nWe reach \\RunNineLZero{} here.")
    (run_dir / "latex" / "template.tex").write_text(tex)
    result = compile_paper(run_dir / "latex", timeout_s=120)
    assert result.status == "failed" and result.pdf_path is None
    error = result.errors[0]
    assert error.message == "! Undefined control sequence."
    assert tex.splitlines()[error.line - 1].startswith("We reach \\RunNineLZero")
    assert "\\RunNineLZero" in error.context
    assert "Undefined control sequence" in result.feedback()


@needs_tex
def test_a_missing_citation_is_a_warning_and_a_missing_entry_a_bibtex_problem(run_dir: Path) -> None:
    tex = (FIXTURES / "paper_planted.tex").read_text().replace("\\citep{kingma2015adam}", "\\citep{nobody2031}")
    (run_dir / "latex" / "template.tex").write_text(tex)
    result = compile_paper(run_dir / "latex", timeout_s=120)
    assert result.status == "ok"
    assert any("nobody2031" in w for w in result.warnings)
    assert any("nobody2031" in b for b in result.bibtex_errors)


@needs_tex
def test_chktex_warnings_come_back_without_the_noise(run_dir: Path) -> None:
    if shutil.which("chktex") is None:
        pytest.skip("chktex not installed")
    tex = (FIXTURES / "paper_planted.tex").read_text().replace(
        "\\section{Method}", "\\section{Method}\nA \\textbf{bold) claim.")
    (run_dir / "latex" / "template.tex").write_text(tex)
    result = compile_paper(run_dir / "latex", timeout_s=120)
    assert any("[9]" in w for w in result.chktex)
    assert not any(f"[{n}]" in w for w in result.chktex for n in compile_mod.CHKTEX_NOISE)


def test_without_pdflatex_the_compile_is_skipped_with_a_reason(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(compile_mod.shutil, "which", lambda name: None)
    result = compile_paper(tmp_path)
    assert result.status == "skipped" and not result.ok and result.pdf_path is None
    assert "pdflatex is not on PATH" in result.message


def test_log_errors_keep_the_bang_line_and_the_source_context() -> None:
    log = ("(./template.tex\n! LaTeX Error: File `fig.png' not found.\n\nSee the LaTeX manual.\n"
           "l.42 \\includegraphics{fig.png}\n                              \n! Emergency stop.\n")
    (error,) = log_errors(log)
    assert error.message == "! LaTeX Error: File `fig.png' not found."
    assert error.line == 42 and error.context.startswith("l.42 \\includegraphics{fig.png}")


def test_log_warnings_list_undefined_citations_once() -> None:
    log = ("LaTeX Warning: Citation `a2020' on page 1 undefined on input line 5.\n"
           "LaTeX Warning: Citation `a2020' on page 1 undefined on input line 5.\n"
           "LaTeX Warning: Reference `fig:x' on page 2 undefined on input line 9.\n")
    assert log_warnings(log) == ["Citation `a2020' on page 1 undefined on input line 5",
                                 "Reference `fig:x' on page 2 undefined on input line 9"]


def test_bibtex_problems_name_the_entry_and_line() -> None:
    blg = ('Warning--I didn\'t find a database entry for "nobody2031"\n'
           "I was expecting a `,' or a `}'---line 12 of file references.bib\n : title = {x\n")
    problems = bibtex_problems(blg)
    assert problems[0] == 'bibtex: Warning--I didn\'t find a database entry for "nobody2031"'
    assert "line 12 of file references.bib" in problems[1]
