r"""What the model's LaTeX may use: the commands and environments a paper needs, nothing else.

TeX is a programming language, and the checker reads the source: a paper that changes a
category code, defines or redefines a macro (globally from inside a group, or through
`\csname`), computes a number (`\numexpr`, `\the`), reads or writes a file, or hides text
in verbatim can make the PDF say what the source does not. So the paper's text may use only
the commands below (sectioning, citations, references, emphasis, lists, math, figures and
tables), the results macros of `results.tex`, and the environments below; `\includegraphics`
only of the figures the project's renderer drew from the results (`harness.figures`, as the
run's `plot.py` declared them; a figure plot.py drew itself is not one). Everything else is refused before compiling,
naming the command and its line, and fed back to the model like a compile error.

Lines identical to a line of the template's skeleton (`templates/*/latex/template.tex`, which
the model cannot edit) are the skeleton's own: its preamble (`\usepackage{trustedpaper}`,
`\input{results.tex}`) is trusted as it stands, and a preamble line the model adds is read like
any other. Comments are TeX's (a `%` not escaped: with category codes left alone, that is what
TeX ignores too).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import PurePosixPath

from agent.paper.read.prose import strip_comments

TEXT = frozenset("""
    section subsection subsubsection paragraph subparagraph appendix
    title author date and thanks maketitle
    label ref eqref cref Cref autoref pageref nameref
    cite citep citet citealp citealt citeauthor citeyear citetext
    textbf textit textsl textsc textsf texttt textrm textup textmd textnormal emph underline
    footnote item caption centering raggedright raggedleft noindent par newline linebreak
    tiny scriptsize footnotesize small normalsize large Large LARGE huge Huge
    includegraphics linewidth textwidth columnwidth hline toprule midrule bottomrule cmidrule
    addlinespace multicolumn multirow vspace hspace smallskip medskip bigskip quad qquad
    ldots dots textendash textemdash textasciitilde textbackslash S P dag ddag copyright
    bibliography bibliographystyle begin end xspace
""".split())
"""Prose, structure, floats and tables."""

MATH = frozenset("""
    alpha beta gamma delta epsilon varepsilon zeta eta theta vartheta iota kappa lambda mu nu
    xi pi varpi rho varrho sigma varsigma tau upsilon phi varphi chi psi omega
    Gamma Delta Theta Lambda Xi Pi Sigma Upsilon Phi Psi Omega
    frac dfrac tfrac sqrt binom sum prod int oint lim limsup liminf sup inf max min arg det
    log ln exp sin cos tan sinh cosh tanh sec Pr dim ker deg gcd operatorname limits nolimits
    mathbb mathcal mathrm mathbf mathit mathsf mathtt mathfrak boldsymbol text textnormal
    hat widehat tilde widetilde bar overline underline vec dot ddot check breve acute grave
    overbrace underbrace left right middle big Big bigg Bigg bigl bigr Bigl Bigr biggl biggr
    cdot cdots ldots vdots ddots dots times div pm mp ast star circ bullet odot otimes oplus
    leq le geq ge neq ne approx sim simeq cong equiv propto ll gg prec succ preceq succeq
    in notin ni subset subseteq supset supseteq cup cap bigcup bigcap setminus emptyset
    varnothing infty partial nabla forall exists nexists neg lnot land lor wedge vee
    to rightarrow leftarrow Rightarrow Leftarrow leftrightarrow Leftrightarrow mapsto
    longrightarrow longmapsto uparrow downarrow implies iff perp parallel mid nmid top bot
    ell hbar imath jmath Re Im aleph prime langle rangle lvert rvert lVert rVert lfloor
    rfloor lceil rceil vert Vert colon quad qquad mathop underset overset stackrel
    tfrac displaystyle textstyle scriptstyle
""".split())
"""Math mode."""

SYMBOLS = frozenset([",", ";", ":", "!", " ", "%", "_", "&", "#", "$", "{", "}", "|", "\\", "-",
                     "/", "'", "`", '"', "^", "~", "(", ")", "[", "]"])
r"""Control symbols: spacing, escaped specials, accents, `\\`, `\(`/`\)` and `\[`/`\]` math."""

ENVIRONMENTS = frozenset("""
    document abstract figure figure* table table* tabular tabular* center itemize enumerate
    description equation equation* align align* gather gather* multline multline* split
    cases matrix pmatrix bmatrix subfigure minipage quote
""".split())


def refused(tex: str, skeleton: str = "", macros: Iterable[str] = (),
            figures: Iterable[str] | None = None) -> list[tuple[int, str]]:
    """(line, what is wrong and what to do) for each use in `tex` outside the allowlist.
    `skeleton`: the template's own .tex (its lines are trusted as they stand); `macros`: the
    names results.tex defines; `figures`: the file names the renderer drew (None: not checked)."""
    trusted = {line.strip() for line in skeleton.splitlines() if line.strip()}
    allowed = TEXT | MATH | set(macros)
    shown = {_stem(f) for f in figures} if figures is not None else None
    found: list[tuple[int, str]] = []
    for number, line in enumerate(strip_comments(tex).splitlines(), 1):
        if line.strip() in trusted:
            continue
        if "^^" in line:
            found.append((number, "'^^' (a character code, which can spell any command): write the "
                                  "character itself"))
        for m in re.finditer(r"\\([A-Za-z@]+\*?|.)", line):
            name = m.group(1).rstrip("*")
            if name in allowed or (len(name) == 1 and name in SYMBOLS):
                continue
            found.append((number, f"\\{name} is not allowed in the paper: only sectioning, citations, "
                                  "references, emphasis, lists, math, figures, tables and the results "
                                  "macros are (no definitions, category codes, primitives, file access "
                                  "or verbatim); write it without \\" + name))
        for m in re.finditer(r"\\(begin|end)\s*\{([^}]*)\}", line):
            if m.group(2).strip() not in ENVIRONMENTS:
                found.append((number, f"the environment {{{m.group(2).strip()}}} is not allowed in the "
                                      "paper: use figure, table, tabular, equation, align, itemize or "
                                      "enumerate"))
        if shown is None:
            continue
        for m in re.finditer(r"\\includegraphics\s*(?:\[[^\]]*\])?\s*\{([^}]*)\}", line):
            if _stem(m.group(1)) not in shown:
                made = ", ".join(sorted(shown)) or "none"
                found.append((number, f"\\includegraphics{{{m.group(1).strip()}}} is not a figure the "
                                      f"renderer drew from the results (the paper's figures: {made}): "
                                      "include only those"))
    return found


def defined_in(tex: str) -> set[str]:
    """The macro names a trusted file (results.tex) defines."""
    return set(re.findall(r"\\(?:newcommand|renewcommand|providecommand)\*?\s*\{?\\([A-Za-z]+)", tex))


def _stem(name: str) -> str:
    """`figures/loss.png`, `loss.png` and `loss` name one figure."""
    path = PurePosixPath(name.strip())
    return (path.stem if path.suffix else path.name).lower()
