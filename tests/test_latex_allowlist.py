r"""The LaTeX allowlist: every way found to make TeX typeset what the checker does not read is
refused before compiling, naming the command and its line; honest papers pass untouched."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.paper.tex import allowlist, checks
from tests.conftest import REPO
from tests.e2e_helpers import PARTS, TOY_TEMPLATES

SKELETON = (TOY_TEMPLATES / "toy_template" / "latex" / "template.tex").read_text(encoding="utf-8")
SAE_SKELETON = (REPO / "templates" / "sae_variants" / "latex" / "template.tex").read_text(encoding="utf-8")
MACROS = {"RunOneExplainedVariance", "BaselineExplainedVariance", "ResultsTable", "RunOneFinalLoss",
          "BaselineFinalLoss", "HypothesesTable", "NumHypotheses"}


def _paper(body: str, skeleton: str = SKELETON) -> str:
    """The skeleton with its Results stub replaced by `body`."""
    assert "\\writeupstub{Results}" in skeleton
    return skeleton.replace("\\writeupstub{Results}", body)


def _refused(body: str, figures: list[str] | None = None) -> list[tuple[int, str]]:
    return allowlist.refused(_paper(body), SKELETON, MACROS, figures)


# Each laundering route of the issue (and a few more): what it tries, the command named.
ATTACKS = {
    "catcode: a 'comment' that TeX runs": ("\\catcode`\\%=9 % \\renewcommand{\\RunOneExplainedVariance}{0.990}",
                                           "\\catcode"),
    "a definition in a group, made global": ("{\\gdef\\RunOneExplainedVariance{0.990}}", "\\gdef"),
    "global prefix": ("{\\global\\let\\RunOneExplainedVariance\\relax}", "\\global"),
    "a redefinition of a results macro": ("\\renewcommand{\\RunOneExplainedVariance}{0.990}", "\\renewcommand"),
    "a new macro": ("\\newcommand{\\ev}{0.99}\\ev", "\\newcommand"),
    "a name built at expansion time": ("\\csname RunOneExplainedVariance\\endcsname", "\\csname"),
    "expansion order": ("\\expandafter\\def\\csname x\\endcsname{1}", "\\expandafter"),
    "arithmetic that makes a number": ("EV \\the\\numexpr 99*10\\relax", "\\numexpr"),
    "a count register": ("\\count255=990 \\number\\count255", "\\count"),
    "an active character": ("\\catcode`\\~=13 \\def~{0.990}", "\\catcode"),
    "verbatim text": ("\\verb|0.990|", "\\verb"),
    "a verbatim environment": ("\\begin{verbatim}\nexplained variance 0.990\n\\end{verbatim}", "{verbatim}"),
    "URL text": ("\\url{explained-variance-0.990}", "\\url"),
    "a character code that spells a command": ("^^5cdef^^5cx{0.990}", "'^^'"),
    "reading a file": ("\\input{notes.txt}", "\\input"),
    "reading with openin": ("\\newread\\r \\openin\\r=results.tex", "\\newread"),
    "writing a file": ("\\immediate\\write18{touch /tmp/x}", "\\immediate"),
    "internal macros": ("\\makeatletter\\@namedef{x}{1}", "\\makeatletter"),
    "scantokens": ("\\scantokens{0.990}", "\\scantokens"),
    "a case change that builds a name": ("\\lowercase{\\DEF}", "\\lowercase"),
    "a package loaded in the body": ("\\usepackage{fancyvrb}", "\\usepackage"),
    "a file written by an environment": ("\\begin{filecontents}{x.tex}\n0.990\n\\end{filecontents}", "{filecontents}"),
}


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_each_laundering_route_is_refused_naming_the_command_and_its_line(attack: str) -> None:
    body, named = ATTACKS[attack]
    found = _refused(f"The results follow.\n{body}\nThat is all.")
    assert found, attack
    line = _paper(f"The results follow.\n{body}").splitlines().index(body.splitlines()[0]) + 1
    assert any(number == line and named in message for number, message in found), (attack, found)


def test_a_figure_pdflatex_wrote_itself_or_any_other_file_is_refused() -> None:
    include = "\\begin{figure}\\centering\\includegraphics[width=\\linewidth]{%s}\\end{figure}"
    figures = ["loss.png"]
    for name in ("template.pdf", "figures/template", "../paper.pdf", "notes.png"):
        found = _refused(include % name, figures)
        assert any("is not a figure the renderer drew" in m and "loss" in m for _, m in found), name
    for name in ("loss.png", "loss", "figures/loss.png"):
        assert _refused(include % name, figures) == [], name


def test_the_honest_toy_paper_and_a_paper_with_math_tables_and_lists_pass() -> None:
    tex = SKELETON
    for pairs in PARTS.values():
        for old, new in pairs:
            tex = tex.replace(old, new)
    assert allowlist.refused(tex, SKELETON, MACROS, ["loss.png"]) == []
    body = r"""
We minimise $\mathcal{L}(x) = \frac{1}{2}\lVert x - \hat{x}\rVert_2^2 + \lambda \sum_i |f_i|$
(\cref{eq:loss}), as in~\citet{polyak1964some} and~\citep[p.~3]{polyak1964some}.
\begin{equation}\label{eq:loss}
  \mathbb{E}\left[\,\|x\|\,\right] \leq \sqrt{d}\cdot\max_{i} \sigma_i \quad \forall d \in \mathbb{N}
\end{equation}
\begin{itemize}
  \item \textbf{Run 1} reached \RunOneExplainedVariance{} against \BaselineExplainedVariance\ (\emph{baseline}).
  \item 50\% of the runs; a \_ and an \& survive.
\end{itemize}
\begin{table}[t]\centering\small
\begin{tabular}{lcc}\toprule
Run & EV & $L_0$ \\ \midrule
1 & \RunOneExplainedVariance & -- \\ \bottomrule
\end{tabular}
\caption{Runs.}\label{tab:runs}
\end{table}
\ResultsTable \HypothesesTable{} of \NumHypotheses{} hypotheses.
\paragraph{Limits.} One seed. % a comment may say anything: \catcode \def \input
"""
    assert _refused(body) == []


def test_the_skeletons_own_preamble_is_trusted_and_a_line_added_to_it_is_not() -> None:
    tex = _paper("Honest text.", SAE_SKELETON)
    assert allowlist.refused(tex, SAE_SKELETON, MACROS) == []
    added = tex.replace("\\usepackage{trustedpaper}\n", "\\usepackage{trustedpaper}\n\\def\\x{1}\n")
    assert [m for _, m in allowlist.refused(added, SAE_SKELETON, MACROS)][0].startswith("\\def is not allowed")


def test_check_tex_refuses_with_every_macro_results_tex_defines(tmp_path: Path) -> None:
    (tmp_path / "results.tex").write_text("\\newcommand{\\RunTwoLZero}{12\\xspace}\n"
                                          "\\providecommand{\\SetupModel}{tiny\\xspace}\n")
    (tmp_path / "references.bib").write_text("")
    problems = checks.check_tex(_paper("\\RunTwoLZero{} on \\SetupModel. \\def\\x{1}"), tmp_path,
                                skeleton=SKELETON, figures=[])
    refused = [p for p in problems if p.kind == "refused_command"]
    assert [p.message.split()[0] for p in refused] == ["\\def", "\\x"]  # the macros are known
    # Without the skeleton (a paper checked outside the writeup), nothing is refused.
    assert all(p.kind != "refused_command" for p in checks.check_tex(_paper("\\def\\x{1}"), tmp_path))
