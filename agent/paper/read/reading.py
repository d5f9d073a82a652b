"""The paper as a reader sees it: one pass of a LaTeX parser into sentences of typed mentions.

`read(tex, results_macros)` walks `pylatexenc`'s parse of a section and writes the text a reader
would read, remembering for every character where it came from in the source: comments,
labels, references, citations, file names and command options are not read; math, display
math included, is read (indices are not); a macro of `results.tex` is read as an opaque
placeholder that remembers the macro (its run and metric); a macro the paper defines itself
(`\\newcommand`, `\\renewcommand`, `\\def`) is read as its body where it is used, and the
definition is reported. The text is then cut into sentences (table cells and caption each
one), and each sentence into number mentions with how they are written (sign, decimals,
percent, factor, unit, the other end of a range, qualifier, direction words) and run
references. The grounding rules (`agent.paper.ground.grounding`) read only this.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from pylatexenc import macrospec
from pylatexenc.latexwalker import (
    LatexCharsNode,
    LatexCommentNode,
    LatexEnvironmentNode,
    LatexGroupNode,
    LatexMacroNode,
    LatexMathNode,
    LatexSpecialsNode,
    LatexWalker,
    get_default_latex_context_db,
)

from agent.paper.read.mentions import Mention, mentions
from agent.paper.read.texnum import RunRef, run_refs_in

PLACEHOLDER = "\uE000"
"""Stands for one results.tex macro in the read text (a private-use character)."""

# Commands whose arguments nobody reads as prose (their own argument specs, so the parser
# attaches the arguments to them): references, citations, files, lengths, colours.
_SKIPPED = {
    "label": "{", "ref": "*{", "eqref": "{", "autoref": "*{", "cref": "*{", "Cref": "*{",
    "pageref": "*{", "nameref": "{", "cite": "*[[{", "citep": "*[[{", "citet": "*[[{",
    "citealt": "*[[{", "citealp": "*[[{", "citeauthor": "*[[{", "citeyear": "*[[{",
    "citeyearpar": "*[[{", "citenum": "{", "nocite": "{", "url": "{", "input": "{",
    "include": "{", "includegraphics": "*[[{", "bibliography": "{", "bibliographystyle": "{",
    "usepackage": "[{", "documentclass": "[{", "graphicspath": "{", "vspace": "*{",
    "hspace": "*{", "setlength": "{{", "addtolength": "{{", "setcounter": "{{",
    "definecolor": "{{{", "color": "{", "rule": "[{{", "resizebox": "*{{", "scalebox": "{",
    "cmidrule": "[{", "cline": "{", "hypersetup": "{", "fontsize": "{{", "bibitem": "[{",
    "newenvironment": "{[[{{", "pagestyle": "{", "thispagestyle": "{", "hyperref": "[",
}
_READ_ARGS = {"caption": "[{", "multicolumn": "{{{", "multirow": "{{{", "href": "{{",
              "textcolor": "{{", "footnote": "[{", "section": "*[{", "subsection": "*[{",
              "subsubsection": "*[{", "paragraph": "*[{", "title": "[{"}
# A header's numbers are read once, in its own row; digits of a name (`L0`, `L2 ratio`) stay.
_HEADER_NUMBER = re.compile(r"(?<![A-Za-z_\d])\d[\d.,]*")
_DEFINING = {"newcommand", "renewcommand", "providecommand", "def"}
_TABLES = {"tabular", "tabularx", "tabulary", "longtable", "array"}
_BREAKS = {"\\", "newline", "par", "item", "caption", "section", "subsection", "subsubsection",
           "paragraph", "hline", "midrule", "toprule", "bottomrule", "linebreak"}
_SYMBOLS = {"%": "%", "times": "×", "cdot": "·", "approx": "≈", "sim": "~", "simeq": "≈",
            "le": "≤", "leq": "≤", "leqslant": "≤", "ge": "≥", "geq": "≥", "geqslant": "≥",
            "lt": "<", "gt": ">", "pm": "±", "_": "_", "&": "&", "#": "#", "$": "$", ",": " ",
            ";": " ", ":": " ", "!": "", " ": " ", "quad": " ", "qquad": " ", "textasciitilde": "~",
            "textendash": "–", "textemdash": "—", "ldots": "…", "dots": "…", "minus": "−",
            "textpercent": "%", "infty": "∞", "to": "→", "rightarrow": "→"}
_GREEK = set("alpha beta gamma delta epsilon varepsilon zeta eta theta vartheta iota kappa lambda mu "
             "nu xi pi rho sigma tau upsilon phi varphi chi psi omega Gamma Delta Theta Lambda Xi "
             "Pi Sigma Phi Psi Omega ell".split())


@cache
def _context() -> Any:
    """pylatexenc's macro database with this module's argument specs (built on first use)."""
    db = get_default_latex_context_db()
    specs = [macrospec.MacroSpec(name, spec) for name, spec in {**_SKIPPED, **_READ_ARGS}.items()]
    specs += [macrospec.MacroSpec("newcommand", "*{[[{"), macrospec.MacroSpec("renewcommand", "*{[[{"),
              macrospec.MacroSpec("providecommand", "*{[[{")]
    db.add_context_category("trusted-scientist", prepend=True, macros=specs)
    return db




@dataclass(frozen=True)
class Definition:
    """A macro the paper defines itself."""

    name: str
    body: str
    """The body's source text."""
    pos: int
    redefines_result: bool
    """It redefines a macro of results.tex."""


@dataclass
class Reading:
    """The read text of a LaTeX source, with a map back to the source."""

    text: str
    origin: list[int]
    """Source offset of every character of `text`."""
    macros: dict[int, str] = field(default_factory=dict)
    """Offset in `text` of each placeholder -> the results.tex macro it stands for."""
    definitions: list[Definition] = field(default_factory=list)
    math: list[bool] = field(default_factory=list)
    """Whether each character of `text` was read in math mode."""

    def source_pos(self, i: int) -> int:
        return self.origin[min(i, len(self.origin) - 1)] if self.origin else 0


class _Reader:
    def __init__(self, tex: str, results: frozenset[str], private: dict[str, str]):
        self.tex, self.results, self.private = tex, results, private
        self.parts: list[str] = []
        self.origin: list[int] = []
        self.macros: dict[int, str] = {}
        self.definitions: list[Definition] = []
        self.depth = 0
        self.math: list[bool] = []
        self.in_math = 0
        self._pending = ""
        """The results macro the placeholder being emitted stands for."""

    def emit(self, text: str, pos: int, verbatim: bool = False) -> None:
        start = len(self.origin)
        self.parts.append(text)
        self.origin.extend(range(pos, pos + len(text)) if verbatim else [pos] * len(text))
        self.math.extend([self.in_math > 0] * len(text))
        if text == PLACEHOLDER:
            self.macros[start] = self._pending

    def walk(self, nodes: Iterable[Any], math: bool = False) -> None:
        skip_next = False
        for node in nodes:
            if node is None:
                continue
            if skip_next:  # the index after `_` or the exponent after `^` in math
                skip_next = False
                if isinstance(node, LatexGroupNode) or (isinstance(node, LatexMacroNode)):
                    continue
            if isinstance(node, LatexCommentNode):
                continue
            if isinstance(node, LatexCharsNode):
                skip_next = self.chars(node, math)
            elif isinstance(node, LatexGroupNode):
                self.walk(node.nodelist, math)
            elif isinstance(node, LatexMathNode):
                self.emit(" ", node.pos)
                self.in_math += 1
                self.walk(node.nodelist, True)
                self.in_math -= 1
                self.emit(" ", node.pos + node.len - 1)
            elif isinstance(node, LatexEnvironmentNode) and node.environmentname.rstrip("*") in _TABLES:
                self.table(node)
            elif isinstance(node, LatexEnvironmentNode):
                self.emit("\n", node.pos)
                display = node.environmentname.rstrip("*") in (
                    "equation", "align", "gather", "multline", "eqnarray", "displaymath", "flalign",
                    "math")
                self.in_math += display
                self.walk(node.nodelist, math or display)
                self.in_math -= display
                self.emit("\n", node.pos + node.len - 1)
            elif isinstance(node, LatexSpecialsNode):
                chars = node.specials_chars
                self.emit("\n" if chars == "&" else " " if chars == "~" else chars, node.pos)
            elif isinstance(node, LatexMacroNode):
                self.macro(node, math)

    def _cell(self, nodes: list[Any]) -> tuple[str, list[int]]:
        sub = _Reader(self.tex, self.results, self.private)
        sub.walk(nodes)
        text = "".join(sub.parts).replace("\n", " ")
        self.macros.update({len(self.origin) + k: v for k, v in sub.macros.items()})
        return text, sub.origin

    def table(self, node: Any) -> None:
        """A tabular as a reader reads it: each cell with its row's label (the first cell, a run)
        and its column's header (a metric), one sentence per cell."""
        rows: list[list[list[Any]]] = [[[]]]
        for n in node.nodelist:
            if isinstance(n, LatexSpecialsNode) and n.specials_chars == "&":
                rows[-1].append([])
            elif isinstance(n, LatexMacroNode) and n.macroname in ("\\", "tabularnewline"):
                rows.append([[]])
            else:
                rows[-1][-1].append(n)
        cells = [[self._cell(c) for c in row] for row in rows]
        cells = [row for row in cells if any(text.strip() for text, _ in row)]
        if not cells:
            return
        header = cells[0]
        for r, row in enumerate(cells):
            for c, (text, origin) in enumerate(row):
                self.emit("\n", node.pos)
                if r > 0 and c > 0:  # the row's label and the column's header, then the cell
                    label, label_origin = row[0]
                    self._copy(label + " ", [*label_origin, node.pos])
                    if c < len(header):  # the header's own numbers are read once, in its row
                        self._copy(_HEADER_NUMBER.sub(lambda n: " " * len(n.group(0)), header[c][0]) + " ",
                                   [*header[c][1], node.pos])
                self._copy(text, origin)
        self.emit("\n", node.pos + node.len - 1)

    def _copy(self, text: str, origin: list[int]) -> None:
        start = len(self.origin)
        self.parts.append(text)
        self.origin.extend((origin + [origin[-1] if origin else 0] * len(text))[:len(text)])
        self.math.extend([False] * len(text))
        for i, ch in enumerate(text):
            if ch == PLACEHOLDER and start + i not in self.macros:
                self.macros[start + i] = ""

    def chars(self, node: Any, math: bool) -> bool:
        text: str = node.chars
        if math:  # indices (x_2, W_{ij}) and powers (x^2) are notation, 10^{-4} is a number
            text = re.sub(r"_[A-Za-z0-9]", lambda m: " " * len(m.group(0)), text)
            text = re.sub(r"(?<!10)\^[A-Za-z0-9]", lambda m: " " * len(m.group(0)), text)
        # a line break in the source is a space; a blank line ends a paragraph
        text = re.sub(r"\n[ \t]*\n\s*|\n", lambda m: ("\n" if m.group(0).count("\n") > 1 else " ")
                      + " " * (len(m.group(0)) - 1), text)
        self.emit(text, node.pos, verbatim=True)
        return math and (text.endswith("_") or (text.endswith("^") and not text.endswith("10^")))

    def macro(self, node: Any, math: bool) -> None:
        name = node.macroname
        args = [a for a in (node.nodeargd.argnlist if node.nodeargd else []) if a is not None]
        if name in _DEFINING:
            self.define(node, args)
            return
        if name in _SKIPPED:
            return
        if name in self.results:
            self._pending = name
            self.emit(PLACEHOLDER, node.pos)
            return
        if name in self.private and self.depth < 5:
            self.depth += 1
            inner = LatexWalker(self.private[name], latex_context=_context(), tolerant_parsing=True)
            nodes, _, _ = inner.get_latex_nodes()
            before = len(self.origin)
            self.walk(nodes, math)
            self.origin[before:] = [node.pos] * (len(self.origin) - before)
            self.depth -= 1
            return
        if name in ("frac", "dfrac", "tfrac") and len(args) == 2:  # read as (a)/(b): a formula
            self.emit("(", node.pos)
            self.walk([args[0]], math)
            self.emit(")/(", node.pos)
            self.walk([args[1]], math)
            self.emit(")", node.pos)
            return
        if name in _BREAKS:
            self.emit("\n", node.pos)
        if name in _SYMBOLS:
            self.emit(_SYMBOLS[name], node.pos)
        elif name in _GREEK:
            self.emit(f" {name} ", node.pos)
        elif not args:
            self.emit(" ", node.pos)
        for arg in args:
            if isinstance(arg, LatexGroupNode):  # options ([width=...]) are not read
                if self.tex[arg.pos:arg.pos + 1] == "[":
                    continue
                self.walk(arg.nodelist, math)
        if name in _BREAKS and name != "\\":
            self.emit("\n", node.pos + node.len - 1)

    def define(self, node: Any, args: list[Any]) -> None:
        groups = [a for a in args if isinstance(a, LatexGroupNode)]
        if len(groups) < 2:
            return
        target = re.sub(r"[\s{}\\]", "", self.tex[groups[0].pos:groups[0].pos + groups[0].len])
        body_node = groups[-1]
        body = self.tex[body_node.pos + 1:body_node.pos + body_node.len - 1]
        self.definitions.append(Definition(target, body, node.pos, target in self.results))


def definitions(tex: str) -> dict[str, str]:
    """`\\newcommand{\\x}{body}`, `\\renewcommand`, `\\def\\x{body}`: name -> body source."""
    found = {}
    for m in re.finditer(r"\\(?:re)?newcommand\*?\s*\{?\s*\\([A-Za-z]+)\s*\}?\s*(?:\[\d\])?\s*\{", tex):
        depth, j = 1, m.end()
        while j < len(tex) and depth:
            depth += {"{": 1, "}": -1}.get(tex[j], 0) if tex[j - 1] != "\\" else 0
            j += 1
        found[m.group(1)] = tex[m.end():j - 1]
    for m in re.finditer(r"\\def\s*\\([A-Za-z]+)\s*\{([^{}]*)\}", tex):
        found[m.group(1)] = m.group(2)
    return found


def read(tex: str, results_macros: Iterable[str] = (), private: Mapping[str, str] | None = None) -> Reading:
    """The reader's text of `tex` (any part of a paper), every character traced to the source.
    `private`: macros the paper defines elsewhere (its preamble), name -> body."""
    private = {**(private or {}), **definitions(tex)}
    results = frozenset(results_macros)
    reader = _Reader(tex, results, {k: v for k, v in private.items()})
    walker = LatexWalker(tex, latex_context=_context(), tolerant_parsing=True)
    nodes, _, _ = walker.get_latex_nodes()
    reader.walk(nodes)
    for m in re.finditer(r"\\def\s*\\([A-Za-z]+)\s*\{([^{}]*)\}", tex):
        reader.definitions.append(Definition(m.group(1), m.group(2), m.start(), m.group(1) in results))
    text = "".join(reader.parts)
    return Reading(text, reader.origin, reader.macros, reader.definitions, reader.math)


# --- sentences ------------------------------------------------------------------------------

_ABBREV = {"e.g", "i.e", "fig", "eq", "sec", "vs", "al", "etc", "cf", "approx", "resp", "tab",
           "no", "figs", "eqs", "ca"}


def sentences(text: str) -> list[tuple[int, int]]:
    """(start, end) of each sentence of the read text: full stops before a capital, a
    placeholder or math; line breaks (table cells, rows, items, captions, headings)."""
    cuts = [0]
    for m in re.finditer(r"(?<=[.!?])\s+(?=[A-Z(\"'$\d" + PLACEHOLDER + r"\\])|\n", text):
        if text[m.start() - 1:m.start()] == ".":
            word = re.findall(r"[\w.]+$", text[max(0, m.start() - 8):m.start()].rstrip(". "))
            if word and word[-1].lower().rstrip(".") in _ABBREV:
                continue
        cuts.append(m.end())
    cuts.append(len(text))
    return [(a, b) for a, b in zip(cuts, cuts[1:], strict=False) if text[a:b].strip()]


@dataclass
class Sentence:
    start: int
    end: int
    text: str
    mentions: list[Mention]
    runs: list[RunRef]
    macros: list[tuple[int, str]]
    """(offset, results.tex macro) cited in the sentence."""


def sentences_of(reading: Reading) -> list[Sentence]:
    """Every sentence of the read text, with its mentions, run references and cited macros."""
    out = []
    for a, b in sentences(reading.text):
        text = reading.text[a:b]
        cited = [(i, name) for i, name in reading.macros.items() if a <= i < b]
        found = [_as_formula(mt, reading) for mt in mentions(text, a)]
        out.append(Sentence(a, b, text, found, run_refs_in(text, a), sorted(cited)))
    return out


_OPERATOR = "-+*/·×^−"


def _as_formula(m: Mention, reading: Reading) -> Mention:
    """Marks a number read in math next to an arithmetic operator (or a bracket of one)."""
    if not (reading.math and reading.math[min(m.start, len(reading.math) - 1)]):
        return m
    before = reading.text[max(0, m.start - 3):m.start].rstrip(" ()")
    after = reading.text[m.end:m.end + 3].lstrip(" ()")
    if (before and before[-1] in _OPERATOR) or (after and after[0] in _OPERATOR and m.range_with is None):
        return Mention(**{**m.__dict__, "formula": True})
    return m
