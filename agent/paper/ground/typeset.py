"""The paper as its reader sees it: every number in the compiled PDF's text must be traceable.

The grounding check reads the source; what a reader reads is what TeX typeset. So after each
compile the PDF's text (`pdftotext`, as a reader or the review model sees it) is read too, and
each number in it must be one of: a number written in the source the checker read (comments
excluded), a value of `results.tex` (the runs' own numbers, through the results macros), a
number of the bibliography, or LaTeX's own numbering (pages, sections, floats, equations: small
integers and `a.b`). A number anything else produced (a redefined macro, a category-code
trick, arithmetic, a file TeX read) is a finding, however the source produced it, with the
source line whose words precede it for the feedback. Numbers TeX glues together (a
superscript, a footnote mark: `2^{10}` reads `210`) are traced by their parts.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from agent.paper.ground.findings import Finding
from agent.paper.read.prose import section_at, section_marks, strip_comments

_NUMBER = re.compile(r"(?<![\d.])\d+(?:,\d{3})*(?:\.\d+)?")
_WORD = re.compile(r"[A-Za-z]{4,}")


@dataclass(frozen=True)
class Traced:
    """The numbers the PDF may show."""

    numbers: frozenset[str]
    numbering: int
    """Integers up to this (and `a.b` of two) are LaTeX's own numbering."""

    def holds(self, number: str, split: bool = True) -> bool:
        plain = number.replace(",", "")
        if plain in self.numbers or number in self.numbers or all(g in self.numbers for g in number.split(",")):
            return True
        whole, dot, part = plain.partition(".")
        if not dot and int(plain) <= self.numbering:
            return True
        if dot and not whole.startswith("0") and not part.startswith("0") and 1 <= int(whole) <= self.numbering \
                and int(part) <= self.numbering:  # Section 3.2, Table 4.1
            return True
        return split and any(self.holds(plain[:i], False) and self.holds(plain[i:], False)
                             for i in range(1, len(plain)) if "." not in plain[i - 1:i + 1]
                             and (plain[i] != "0" or plain[i:] == "0"))


def traced(tex: str, trusted: Iterable[str], pages: int) -> Traced:
    """What may show: the numbers of `tex` (comments excluded) and of the `trusted` texts
    (results.tex, the bibliography), and numbering up to the paper's pages, sections, floats
    and equations."""
    source = strip_comments(tex)
    numbers = {m.group(0) for text in (source, *trusted) for m in _NUMBER.finditer(text)}
    numbers |= {n.replace(",", "") for n in numbers}
    counts = [pages, len(re.findall(r"\\(?:sub)*section\b", source)),
              len(re.findall(r"\\begin\{(?:figure|table)", source)) + 4,
              len(re.findall(r"\\begin\{(?:equation|align|gather|multline)\}", source)) * 4,
              len(re.findall(r"\\footnote\b", source))]
    return Traced(frozenset(numbers), max(counts) + 1)


def untraced(pdf_text: str, tex: str, trusted: Iterable[str]) -> list[Finding]:
    """A finding for each number of `pdf_text` that `traced` does not hold."""
    allowed = traced(tex, trusted, pdf_text.count("\f") + 1)
    marks = section_marks(tex)
    found: list[Finding] = []
    for m in _NUMBER.finditer(pdf_text):
        if allowed.holds(m.group(0)):
            continue
        before = " ".join(pdf_text[max(0, m.start() - 80):m.start()].split())
        after = " ".join(pdf_text[m.end():m.end() + 40].split())
        line, pos = _source_line(tex, before)
        found.append(Finding(section_at(marks, pos) if marks and pos >= 0 else "", "typeset", m.group(0),
                             f"...{before[-60:]} {m.group(0)} {after[:30]}...",
                             "the PDF shows this number but it is in neither the paper's source nor "
                             "results.tex: something other than the text made TeX print it. Write the "
                             "sentence with the results macros and plain text only", (), line))
    return found


def _source_line(tex: str, before: str) -> tuple[int, int]:
    """(1-based line, offset) of the source line holding the last words the PDF shows before a
    number; (0, -1) when none does."""
    words = _WORD.findall(before)[-3:]
    for word in reversed(words):
        pos = tex.rfind(word)
        if pos >= 0:
            return tex.count("\n", 0, pos) + 1, pos
    return 0, -1
