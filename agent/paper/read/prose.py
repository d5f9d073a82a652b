"""LaTeX read as prose: what a reader sees, where sections, sentences and clauses start.

`prose_view` blanks everything that is not prose: comments, labels, references, citations,
file names, lengths, display math, command options. Blanked text becomes spaces of the same
length (newlines kept), so a position in the view is a position in the source.
"""

from __future__ import annotations

import re

# Commands whose brace arguments are never prose: name -> how many brace groups to blank.
_NO_PROSE = {
    **dict.fromkeys("label ref eqref autoref cref Cref pageref nameref url input include "
                    "bibliography bibliographystyle usepackage documentclass graphicspath "
                    "includegraphics color textcolor cline cmidrule hypersetup vspace hspace "
                    "scalebox nocite cite citet citep citealt citealp citeauthor citeyear "
                    "citeyearpar citenum href end".split(), 1),
    **dict.fromkeys("resizebox multicolumn multirow setlength addtolength newcommand "
                    "renewcommand providecommand rule setcounter fontsize".split(), 2),
    **dict.fromkeys("definecolor newenvironment".split(), 3),
}
_BOXED_ENVS = {"figure", "table", "tabular", "tabularx", "array", "minipage", "subfigure",
               "subtable", "wrapfigure", "wraptable", "tabular*", "figure*", "table*"}
_DISPLAY = re.compile(r"\\begin\{(equation|align|gather|multline|eqnarray|displaymath|flalign)(\*?)\}"
                      r".*?\\end\{\1\2\}|(?<!\\)\\\[.*?\\\]|\$\$.*?\$\$", re.S)
_ABBREV = ("e.g", "i.e", "fig", "eq", "sec", "vs", "al", "etc", "cf", "approx", "resp", "tab", "no", "figs", "eqs")


def blank(text: str) -> str:
    return re.sub(r"[^\n]", " ", text)


def blank_spans(text: str, spans: list[tuple[int, int]]) -> str:
    chars = list(text)
    for a, b in spans:
        chars[a:b] = blank(text[a:b])
    return "".join(chars)


def strip_comments(tex: str) -> str:
    """Comments blanked; offsets unchanged."""
    return re.sub(r"(?<!\\)%.*", lambda m: blank(m.group(0)), tex)


def group_end(text: str, i: int, open_: str = "{", close: str = "}") -> int:
    """Index after the group opening at `text[i]` (or `i` when no group opens there)."""
    if i >= len(text) or text[i] != open_:
        return i
    depth = 0
    for j in range(i, len(text)):
        if text[j] == open_ and text[j - 1] != "\\":
            depth += 1
        elif text[j] == close and text[j - 1] != "\\":
            depth -= 1
            if depth == 0:
                return j + 1
    return len(text)


def _skip_space(text: str, i: int) -> int:
    while i < len(text) and text[i] in " \t":
        i += 1
    return i


def _command_spans(text: str) -> list[tuple[int, int]]:
    spans = []
    for m in re.finditer(r"\\([A-Za-z]+)(\*?)", text):
        name, j = m.group(1), m.end()
        groups = _NO_PROSE.get(name, 0)
        if name == "begin":
            j = group_end(text, j)
            env = text[m.end() + 1:j - 1]
            groups = 4 if env in _BOXED_ENVS else 0
        taken = 0
        while True:
            k = _skip_space(text, j)
            if k < len(text) and text[k] == "[":
                j = group_end(text, k, "[", "]")
            elif k < len(text) and text[k] == "(" and name == "cmidrule":
                j = group_end(text, k, "(", ")")
            elif k < len(text) and text[k] == "{" and taken < groups:
                j, taken = group_end(text, k), taken + 1
            else:
                break
        if j > m.end() or groups:
            spans.append((m.start(), j))
    return spans


def prose_view(tex: str) -> str:
    """The text with everything that is not prose blanked (same length as `tex`)."""
    text = strip_comments(tex)
    text = re.sub(r"\\\\(\[[^\]]*\])?", lambda m: "\n\n" + blank(m.group(0))[2:], text)
    text = _DISPLAY.sub(lambda m: blank(m.group(0)), text)
    text = blank_spans(text, _command_spans(text))
    text = re.sub(r"\d*\.?\d+\s*(?:pt|cm|mm|in|em|ex|bp|pc)\b|\d*\.?\d+\s*\\(?:textwidth|linewidth|"
                  r"columnwidth|textheight|hsize)", lambda m: blank(m.group(0)), text)
    return text


def sentence_bounds(view: str, pos: int) -> tuple[int, int]:
    """The sentence (or list item, table cell, caption) around offset `pos` of a prose view."""
    stops = re.compile(r"(?<=[.!?])\s+(?=[A-Z\\$(])|\n\s*\n|\\item\b|&|\\\\|\\caption\b")
    start, end = 0, len(view)
    for m in stops.finditer(view):
        word = re.findall(r"[\w.]+$", view[max(0, m.start() - 8):m.start()].rstrip(". "))
        if view[m.start() - 1:m.start()] == "." and word and word[-1].lower().rstrip(".") in _ABBREV:
            continue
        if m.end() <= pos:
            start = m.end()
        elif m.start() >= pos:
            end = m.start()
            break
    return start, end


def clause_bounds(view: str, pos: int, sentence: tuple[int, int]) -> tuple[int, int]:
    """The clause (between commas, semicolons, colons, brackets) around `pos`."""
    a, b = sentence
    seps = [m.start() for m in re.finditer(r"(?<!\{),(?!\d{3}|\})|[;:()]", view[a:b])]
    left = max([a + s + 1 for s in seps if a + s < pos], default=a)
    right = min([a + s for s in seps if a + s >= pos], default=b)
    return left, right


_SECTION = re.compile(r"\\(section|chapter)\*?\s*\{([^}]*)\}|\\begin\{abstract\}|\\end\{abstract\}|\\appendix\b")


def section_marks(tex: str) -> list[tuple[int, str]]:
    """(offset, title) where each part of the paper starts: front matter, abstract, sections.

    A section after `\\appendix` is titled `Appendix: <title>`.
    """
    clean = strip_comments(tex)
    marks: list[tuple[int, str]] = [(0, "Front matter")]
    appendix = False
    for m in _SECTION.finditer(clean):
        text = m.group(0)
        if text.startswith("\\appendix"):
            appendix = True
            continue
        if "begin{abstract" in text:
            title = "Abstract"
        elif "end{abstract" in text:
            title = "Front matter"
        else:
            title = ("Appendix: " if appendix else "") + " ".join(m.group(2).split())
        marks.append((m.start(), title))
    return marks


def section_at(marks: list[tuple[int, str]], pos: int) -> str:
    return [title for start, title in marks if start <= pos][-1]
