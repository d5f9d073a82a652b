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
references. The grounding rules (`agent.paper.grounding`) read only this.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

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

Qualifier = Literal["exact", "approx", "at_least", "at_most"]
Change = Literal["up", "down", "none"]
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


def _context() -> Any:
    db = get_default_latex_context_db()
    specs = [macrospec.MacroSpec(name, spec) for name, spec in {**_SKIPPED, **_READ_ARGS}.items()]
    specs += [macrospec.MacroSpec("newcommand", "*{[[{"), macrospec.MacroSpec("renewcommand", "*{[[{"),
              macrospec.MacroSpec("providecommand", "*{[[{")]
    db.add_context_category("trusted-scientist", prepend=True, macros=specs)
    return db


_DB = _context()


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
                        self._copy(re.sub(r"\d", " ", header[c][0]) + " ", [*header[c][1], node.pos])
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
            inner = LatexWalker(self.private[name], latex_context=_DB, tolerant_parsing=True)
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
    walker = LatexWalker(tex, latex_context=_DB, tolerant_parsing=True)
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


# --- mentions -------------------------------------------------------------------------------

_WORD_UNITS = {w: i for i, w in enumerate("zero one two three four five six seven eight nine ten "
                                          "eleven twelve thirteen fourteen fifteen sixteen "
                                          "seventeen eighteen nineteen".split())}
_WORD_TENS = {w: 10 * i for i, w in enumerate("_ _ twenty thirty forty fifty sixty seventy eighty "
                                              "ninety".split()) if w != "_"}
_WORD_NUMBER = re.compile(
    r"\b(?:(" + "|".join(_WORD_TENS) + r")(?:[-\s](" + "|".join(list(_WORD_UNITS)[1:10]) + r"))?|("
    + "|".join(_WORD_UNITS) + r"))(?:\s+(hundred|thousand|million|billion))?\b", re.I)
_NUMBER = re.compile(
    r"(?P<sign>(?<![\w.)\]])[-−–](?=\d))?"
    r"(?P<int>\d{1,3}(?:(?:\{,\}|,)\d{3})+|\d+)(?P<frac>\.\d+)?"
    r"(?:\s*(?:×|·|\\times)\s*10\s*\^\s*\{?\s*(?P<exp>[-−]?\d+)(?:\s*\})?|[eE](?P<eexp>[-+]?\d+)(?![\w]))?")
_POWER = re.compile(r"(?<![\d.])10\s*\^\s*\{?\s*(?P<exp>[-−]?\d+)(?:\s*\})?")
_STRUCTURE = re.compile(r"\b(?:section|sec\.|§|figures?|figs?\.|tables?|tab\.|equations?|eqs?\.|"
                        r"appendix|algorithm|alg\.|lines?|chapter|page|p\.|footnote|item|part|"
                        r"stage|phase|contribution|question|hypothesis|point|step|version|v)\s*\(?$",
                        re.I)
_RUN_REF = re.compile(r"\b[Rr]uns?(?:\s|_|\\_)*(\d+)(?![.,]\d)((?:\s*(?:,|and|&|--|-|–|—|to|through|or)\s*"
                      r"(?:[Rr]uns?(?:\s|_)*)?\d+(?![.,]?\d|\s*%))*)")
_APPROX = re.compile(r"(?:about|around|approximately|approx\.?|roughly|nearly|almost|circa|~|≈|"
                     r"some)\s*$", re.I)
_AT_LEAST = re.compile(r"(?:above|over|more than|greater than|higher than|at least|exceeds?|"
                       r"exceeding|beyond|>|≥)\s*=?\s*$", re.I)
_AT_MOST = re.compile(r"(?:below|under|less than|fewer than|lower than|at most|up to|within|<|≤)"
                      r"\s*=?\s*$", re.I)
_UP = re.compile(r"increas|higher|\brise|\brose|\brais|grow|grew|\bgain|\bmore\b|larger|\bup\b|"
                 r"boost|improv", re.I)
_DOWN = re.compile(r"decreas|lower|\bdrop|\bfell|\bfall|reduc|declin|\bless\b|smaller|\bdown\b|"
                   r"\bcut\b|shrink|fewer", re.I)
_MULT = {"thousand": 1e3, "k": 1e3, "million": 1e6, "m": 1e6, "billion": 1e9, "b": 1e9}
_SETTING = re.compile(r"(?:([A-Za-z][\w\s\-]{0,30}?|[A-Za-z]+)\s*(?:=|:=)\s*|"
                      r"\b(of|at|to|with|is|was|are|were|equals)\s+)$")


@dataclass(frozen=True)
class Mention:
    """A number a reader of the paper sees."""

    text: str
    """As read (`-0.79`, `91.3%`, `3 × 10^-4`, `ninety`)."""
    value: float
    """Signed, with any multiplier applied (`10 million` -> 1e7); a percent stays 91.3."""
    half: float
    """Half a unit of its last written digit, in the units of `value`: the tolerance."""
    percent: bool
    points: bool
    ratio: bool
    integer: bool
    sig: int
    """Significant digits written."""
    qualifier: Qualifier
    change: Change
    unit: str
    """A time unit written after it (`s`, `min`, `h`, `ms`), else empty."""
    start: int
    """Offsets in the read text."""
    end: int
    range_with: int | None = None
    """Index (in the sentence's mentions) of the other end of a range (`1.44-1.63`)."""
    setting: str = ""
    """The name it is set to, when written as a setting (`lambda = 0.5`, `lr of 3e-4`)."""
    formula: bool = False
    """A term of a formula in math (`1 - \\sum ...`, `\\frac{1}{2}`): notation, not a claim."""

    @property
    def magnitude(self) -> float:
        return abs(self.value)


@dataclass(frozen=True)
class RunRef:
    text: str
    indices: tuple[int, ...]
    start: int
    end: int


@dataclass
class Sentence:
    start: int
    end: int
    text: str
    mentions: list[Mention]
    runs: list[RunRef]
    macros: list[tuple[int, str]]
    """(offset, results.tex macro) cited in the sentence."""


def run_refs(text: str, offset: int = 0) -> list[RunRef]:
    refs = []
    for m in _RUN_REF.finditer(text):
        indices = [int(m.group(1))]
        for sep, num in re.findall(r"(,|and|&|--|-|–|—|to|through|or)\s*(?:[Rr]uns?(?:\s|_)*)?(\d+)",
                                   m.group(2) or ""):
            n = int(num)
            if sep in ("--", "-", "–", "—", "to", "through") and indices[-1] < n < indices[-1] + 50:
                indices.extend(range(indices[-1] + 1, n + 1))
            else:
                indices.append(n)
        refs.append(RunRef(m.group(0), tuple(indices), offset + m.start(), offset + m.end()))
    return refs


def _sig(digits: str) -> int:
    return max(1, len(digits.replace(".", "").lstrip("0")))


def _qualifier(before: str) -> Qualifier:
    tail = before[-24:].rstrip(" ($")
    if _AT_LEAST.search(tail):
        return "at_least"
    if _AT_MOST.search(tail):
        return "at_most"
    return "approx" if _APPROX.search(tail) else "exact"


def _change(context: str) -> Change:
    up, down = bool(_UP.search(context)), bool(_DOWN.search(context))
    return "up" if up and not down else "down" if down and not up else "none"


def _clause(text: str, pos: int) -> tuple[int, int]:
    seps = [m.start() for m in re.finditer(r",(?!\d{3})|[;:()]", text)]
    return (max([s + 1 for s in seps if s < pos], default=0),
            min([s for s in seps if s >= pos], default=len(text)))


def mentions(text: str, offset: int = 0) -> list[Mention]:
    """The number mentions of one sentence of read text (run references left out)."""
    taken = [(r.start - offset, r.end - offset) for r in run_refs(text, offset)]
    raw: list[tuple[int, int, float, float, bool, int, str]] = []  # start, end, value, half, integer, sig, text
    for m in _POWER.finditer(text):
        power = int(m.group("exp").replace("−", "-"))
        raw.append((m.start(), m.end(), 10.0 ** power, 0.5 * 10.0 ** power, False, 1, m.group(0)))
    for m in _NUMBER.finditer(text):
        if any(a <= m.start("int") < b for a, b in taken):
            continue
        digits = m.group("int").replace("{,}", "").replace(",", "")
        frac = m.group("frac") or ""
        decimals = len(frac) - 1 if frac else 0
        value, half = float(digits + frac), 0.5 * 10.0 ** -decimals
        exp = m.group("exp") or m.group("eexp")
        if exp:
            scale = 10.0 ** int(exp.replace("−", "-"))
            value, half = value * scale, half * scale
        if m.group("sign"):
            value = -value
        raw.append((m.start(), m.end(), value, half, not frac and not exp, _sig(digits + frac), m.group(0)))
    for m in _WORD_NUMBER.finditer(text):
        tens, unit, small, mult = m.group(1), m.group(2), m.group(3), m.group(4)
        value = float(_WORD_TENS[tens.lower()] + (_WORD_UNITS[unit.lower()] if unit else 0)) if tens \
            else float(_WORD_UNITS[small.lower()])
        if mult:
            value *= {"hundred": 100, "thousand": 1e3, "million": 1e6, "billion": 1e9}[mult.lower()]
        raw.append((m.start(), m.end(), value, 0.5, True, len(str(int(value)).rstrip("0")) or 1,
                    m.group(0)))
    kept: list[tuple[int, int, float, float, bool, int, str]] = []
    for item in sorted(raw, key=lambda r: (r[0], -(r[1] - r[0]))):  # longest first at a start
        if not kept or item[0] >= kept[-1][1]:
            kept.append(item)
    found: list[Mention] = []
    for start, end, value, half, integer, sig, written in kept:
        before, after = text[max(0, start - 30):start], text[end:end + 30]
        if _STRUCTURE.search(before.rstrip(" ~")):
            continue  # Figure 3, Section 2, line 5, step 4
        if re.search(r"[A-Za-z_]$|[A-Za-z][-/]$|\d[/]$", before) and not re.search(r"[=:]\s*$", before):
            continue  # part of a name: gemma-2-2b, W_2, pythia-70m, x/2
        if re.match(r"(?:st|nd|rd|th|D)\b|[./]\d|[A-Za-z]*_", after):
            continue  # ordinals, 2D, versions (2.2.1), dates
        percent = bool(re.match(r"\s*(?:%|percent\b|per cent\b)", after))
        points = bool(re.match(r"\s*%?\s*(?:percentage\s+)?(?:points?|pp)\b", after))
        ratio = bool(re.match(r"\s*(?:x|×|times|-?fold)(?![A-Za-z])", after)
                     or re.search(r"factor of\s*$", before))
        mult = re.match(r"\s*(thousand|million|billion|[kKMB])(?![A-Za-z])", after)
        unit = re.match(r"\s*(ms|milliseconds?|s|sec|seconds?|min|minutes?|h|hrs?|hours?)\b", after)
        if not (mult or ratio or percent or unit) and re.match(r"[A-Za-z]", after) and \
                not _WORD_NUMBER.fullmatch(written):
            continue  # glued to a unit or a name: 16GB, 3rd, 2b
        scale = _MULT[mult.group(1).lower()] if mult else 1.0
        left, right = _clause(text, start)
        setting = _SETTING.search(before)
        name = ""
        if re.match(r"\s*(?:[-+*/·×^]|\\frac)", after):
            setting = None  # `EV = 1 - ...`: a term of a formula, not a value set
        noun = re.search(r"\b(layer|block|seed|epochs?|heads?|width|top-k|k)\s*$", before, re.I)
        if noun:  # `layer 19`, `seed 42`: a setting named right before it
            name = noun.group(1)
        elif setting and setting.group(1):  # `lambda = 0.5`: the symbol before `=`
            symbol = setting.group(1).replace("_", " ").split()
            name = symbol[-1] if symbol else ""
        elif setting:  # `a learning rate of 3e-4`: the words before `of`
            words = re.findall(r"[A-Za-z][\w\-]*", before[:setting.start()])
            name = " ".join(words[-2:])
        found.append(Mention(
            text=written + ("%" if percent and "%" in after[:3] else ""),
            value=value * scale, half=half * scale, percent=percent or points, points=points,
            ratio=ratio, integer=integer, sig=sig, qualifier=_qualifier(before),
            change=_change(text[max(left, start - 40):min(right, end + 25)]),
            unit=unit.group(1) if unit else "", start=offset + start, end=offset + end, setting=name))
    return _ranges(text, offset, found)


def _ranges(text: str, offset: int, found: list[Mention]) -> list[Mention]:
    """Link the two ends of `1.44-1.63`, `1.44--1.63`, `from 1.44 to 1.63`, `between a and b`:
    each end is a mention of its own (a range written as `a-b` is not a negative `-b`)."""
    out = list(found)
    for i in range(len(out) - 1):
        a, b = out[i], out[i + 1]
        gap = text[a.end - offset:b.start - offset]
        before = text[:a.start - offset][-20:]
        dash = b.value < 0 and text[b.start - offset] in "-−–" and re.fullmatch(r"[-–—]?", gap)
        if dash or re.fullmatch(r"\s*(?:--|–|—|-)\s*", gap) or (
                gap.strip() == "to" and re.search(r"from\s*$", before)) or (
                gap.strip() == "and" and re.search(r"between\s*$", before)):
            if dash:
                b = Mention(**{**b.__dict__, "value": -b.value, "text": b.text.lstrip("-−–")})
            out[i] = Mention(**{**a.__dict__, "range_with": i + 1})
            out[i + 1] = Mention(**{**b.__dict__, "range_with": i})
    return out


def sentences_of(reading: Reading) -> list[Sentence]:
    """Every sentence of the read text, with its mentions, run references and cited macros."""
    out = []
    for a, b in sentences(reading.text):
        text = reading.text[a:b]
        cited = [(i, name) for i, name in reading.macros.items() if a <= i < b]
        found = [_as_formula(mt, reading) for mt in mentions(text, a)]
        out.append(Sentence(a, b, text, found, run_refs(text, a), sorted(cited)))
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


def line_of(tex: str, reading: Reading, pos: int) -> int:
    return tex.count("\n", 0, reading.source_pos(pos)) + 1
