"""Checks on the paper's .tex before it is compiled; each problem is a value with a line.

Citations must be in the bib file, figures must exist and sit in Results (or an appendix),
sections and labels must be unique, references must resolve, results macros must exist,
environments must close, and nothing of the skeleton or any other placeholder may be left.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from agent.paper.read.prose import group_end, section_at, section_marks, strip_comments
from agent.paper.tex import allowlist

ProblemKind = Literal["missing_citation", "missing_bib", "missing_figure", "figure_outside_results",
                      "duplicate_section", "duplicate_label", "duplicate_command", "placeholder",
                      "undefined_reference", "unknown_macro", "missing_input", "environment",
                      "refused_command", "typeset"]

IMAGE_EXTENSIONS = (".pdf", ".png", ".jpg", ".jpeg", ".eps")
DEFAULT_GRAPHICS_PATHS = ("", "figures/", "./")  # as trustedpaper.sty sets them
_CITE = re.compile(r"\\(?:no)?cite[a-zA-Z]*\*?\s*(?:\[[^\]]*\]\s*){0,2}\{([^}]*)\}")
_REF = re.compile(r"\\(?:ref|eqref|autoref|cref|Cref|pageref|nameref)\*?\s*\{([^}]*)\}")
_PLACEHOLDERS = (
    (re.compile(r"\\writeupstub\s*\{([^}]*)\}"), "the skeleton stub for '{0}' is still there: write that part"),
    (re.compile(r"\bPLACEHOLDER\b|\bTODO\b|\bTBD\b|\bFIXME\b|\bXXX\b", re.I), "placeholder text '{m}'"),
    (re.compile(r"lorem ipsum", re.I), "filler text '{m}'"),
    (re.compile(r"\bX+(?:\.X+)?\s*\\?%|\bX\.X+\b|\bN/A%"), "a number left as '{m}'"),
    (re.compile(r"\[\s*citation needed\s*\]|\\cite[a-z]*\{\s*\}", re.I), "a missing citation '{m}'"),
    (re.compile(r"\b[A-Z]{3,}(?: [A-Z]{2,})* HERE\b"), "template filler '{m}'"),
    (re.compile(r"\[(?:insert|add|fill in|describe)\b[^\]]*\]", re.I), "an instruction left in the text '{m}'"),
    (re.compile(r"\?\?"), "'??' in the text (an unresolved reference typed by hand)"),
)
_SINGLETONS = ("\\begin{document}", "\\end{document}", "\\maketitle", "\\begin{abstract}", "\\bibliography{")


@dataclass(frozen=True)
class Problem:
    """Something that must be fixed in the .tex before the paper can be trusted."""

    kind: ProblemKind
    message: str
    """What is wrong and what to do, for the LLM."""
    line: int
    """1-based line in the .tex (0: the whole file)."""

    def describe(self) -> str:
        return f"line {self.line}: {self.message}" if self.line else self.message


def bib_keys(bib_text: str) -> set[str]:
    """The entry keys of a .bib file (@string, @preamble and @comment are not entries)."""
    return {m.group(2).strip() for m in re.finditer(r"@(\w+)\s*[{(]\s*([^,\s]+)\s*,", bib_text)
            if m.group(1).lower() not in ("string", "preamble", "comment")}


@dataclass(frozen=True)
class BibEntry:
    """One entry of references.bib, as the prompts list it."""

    key: str
    title: str
    year: str
    authors: str
    """The author field as written (may end in `and others`)."""

    def line(self) -> str:
        first = self.authors.split(" and ")[0].split(",")[0].strip()
        more = " et al." if " and " in self.authors else ""
        return f"{self.key}: {first}{more} ({self.year}), {self.title}"


def _field(body: str, name: str) -> str:
    m = re.search(rf"\b{name}\s*=\s*([{{\"])", body, re.I)
    if not m:
        return ""
    start = m.start(1)
    end = group_end(body, start) if m.group(1) == "{" else body.index('"', start + 1) + 1
    return " ".join(re.sub(r"[{}]", "", body[start + 1:end - 1]).split())


def bib_entries(bib_text: str) -> list[BibEntry]:
    """The entries of a .bib file with key, title, year and authors."""
    out = []
    for m in re.finditer(r"@(\w+)\s*\{\s*([^,\s]+)\s*,", bib_text):
        if m.group(1).lower() in ("string", "preamble", "comment"):
            continue
        body = bib_text[m.end():group_end(bib_text, bib_text.index("{", m.start()))]
        out.append(BibEntry(m.group(2), _field(body, "title"), _field(body, "year"), _field(body, "author")))
    return out


def _line(tex: str, pos: int) -> int:
    return tex.count("\n", 0, pos) + 1


def _graphics_paths(tex: str) -> tuple[str, ...]:
    m = re.search(r"\\graphicspath\s*\{((?:\s*\{[^}]*\})+)\s*\}", tex)
    return tuple(re.findall(r"\{([^}]*)\}", m.group(1))) + ("",) if m else DEFAULT_GRAPHICS_PATHS


def figure_exists(name: str, latex_dir: Path, search: Iterable[str] = DEFAULT_GRAPHICS_PATHS) -> bool:
    """Whether `\\includegraphics{name}` finds a file, the way graphicx looks for it."""
    names = [name] if Path(name).suffix.lower() in IMAGE_EXTENSIONS else [name + e for e in IMAGE_EXTENSIONS]
    return any((latex_dir / prefix / n).is_file() for prefix in search for n in names)


def _citations(tex: str, latex_dir: Path) -> list[Problem]:
    cites = [(m.start(), k.strip()) for m in _CITE.finditer(tex) for k in m.group(1).split(",") if k.strip() not in ("", "*")]
    bibs = [b.strip() for m in re.finditer(r"\\bibliography\s*\{([^}]*)\}", tex) for b in m.group(1).split(",")]
    files = [latex_dir / (b if b.endswith(".bib") else b + ".bib") for b in bibs]
    missing = [f for f in files if not f.is_file()]
    if cites and (not files or missing):
        what = ", ".join(f.name for f in missing) or "no \\bibliography{...}"
        return [Problem("missing_bib", f"the paper cites but its bibliography is missing ({what})", 0)]
    keys = set().union(*(bib_keys(f.read_text(encoding="utf-8", errors="replace")) for f in files)) if files else set()
    return [Problem("missing_citation", f"\\cite key '{key}' is not in {', '.join(f.name for f in files)}: "
                    "use only the keys listed there; do not invent or add entries", _line(tex, pos))
            for pos, key in cites if key not in keys]


def _figures(tex: str, latex_dir: Path) -> list[Problem]:
    problems = []
    marks, search = section_marks(tex), _graphics_paths(tex)
    for m in re.finditer(r"\\includegraphics\s*(?:\[[^\]]*\])?\s*\{([^}]*)\}", tex):
        name = m.group(1).strip()
        if not figure_exists(name, latex_dir, search):
            problems.append(Problem("missing_figure", f"figure file '{name}' does not exist: use only the figures "
                                    "plot.py wrote", _line(tex, m.start())))
    for m in re.finditer(r"\\begin\{figure\*?\}|\\includegraphics", tex):
        section = section_at(marks, m.start())
        inside_figure = tex.rfind("\\begin{figure", 0, m.start()) > tex.rfind("\\end{figure", 0, m.start())
        if m.group(0) == "\\includegraphics" and inside_figure:
            continue
        if not re.search(r"result|appendix", section, re.I):
            problems.append(Problem("figure_outside_results", f"a figure in '{section}': figures belong in the "
                                    "Results section (or an appendix); move it there", _line(tex, m.start())))
    return problems


def _duplicates(tex: str) -> list[Problem]:
    problems = []
    sections = [(m.start(), " ".join(m.group(1).split()).lower())
                for m in re.finditer(r"\\section\*?\s*\{([^}]*)\}", tex)]
    for title, n in Counter(t for _, t in sections).items():
        if n > 1:
            pos = [p for p, t in sections if t == title][1]
            problems.append(Problem("duplicate_section", f"\\section{{{title}}} appears {n} times: keep one",
                                    _line(tex, pos)))
    labels = [(m.start(), m.group(1).strip()) for m in re.finditer(r"\\label\s*\{([^}]*)\}", tex)]
    for label, n in Counter(lab for _, lab in labels).items():
        if n > 1:
            pos = [p for p, lab in labels if lab == label][1]
            problems.append(Problem("duplicate_label", f"\\label{{{label}}} is defined {n} times: labels must be "
                                    "unique", _line(tex, pos)))
    for command in _SINGLETONS:
        if tex.count(command) > 1:
            pos = tex.find(command, tex.find(command) + 1)
            problems.append(Problem("duplicate_command", f"{command.rstrip('{')} appears {tex.count(command)} "
                                    "times: keep one", _line(tex, pos)))
    return problems


def _placeholders(tex: str) -> list[Problem]:
    problems = []
    for pattern, message in _PLACEHOLDERS:
        for m in pattern.finditer(tex):
            arg = m.group(1) if m.groups() else ""
            problems.append(Problem("placeholder", message.format(arg, m=m.group(0)), _line(tex, m.start())))
    return problems


def _environments(tex: str) -> list[Problem]:
    stack: list[tuple[str, int]] = []
    for m in re.finditer(r"\\(begin|end)\s*\{([^}]*)\}", tex):
        kind, env = m.group(1), m.group(2).strip()
        if kind == "begin":
            stack.append((env, m.start()))
        elif stack and stack[-1][0] == env:
            stack.pop()
        else:
            expected = f"\\end{{{stack[-1][0]}}}" if stack else "nothing"
            return [Problem("environment", f"\\end{{{env}}} does not close an open \\begin{{{env}}} "
                            f"(expected {expected})", _line(tex, m.start()))]
    return [Problem("environment", f"\\begin{{{env}}} is never closed", _line(tex, pos)) for env, pos in stack]


def _inputs_and_refs(tex: str, latex_dir: Path, macro_names: Iterable[str] | None) -> list[Problem]:
    problems, extra_labels = [], set()
    for m in re.finditer(r"\\(?:input|include)\s*\{([^}]*)\}", tex):
        name = m.group(1).strip()
        path = latex_dir / (name if name.endswith(".tex") else name + ".tex")
        if not path.is_file():
            hint = " (it is generated from the runs before the writeup)" if path.name == "results.tex" else ""
            problems.append(Problem("missing_input", f"\\input file '{name}' does not exist{hint}", _line(tex, m.start())))
        else:
            extra_labels |= set(re.findall(r"\\label\{([^}]*)\}", path.read_text(encoding="utf-8", errors="replace")))
    labels = set(re.findall(r"\\label\s*\{([^}]*)\}", tex)) | extra_labels
    for m in _REF.finditer(tex):
        for key in (k.strip() for k in m.group(1).split(",")):
            if key and key not in labels:
                problems.append(Problem("undefined_reference", f"\\ref to '{key}', but no \\label{{{key}}} exists",
                                        _line(tex, m.start())))
    if macro_names is not None:
        known = set(macro_names) | {"ResultsTable", "ResultsTabular", "NumRuns"}
        for m in re.finditer(r"\\((?:Baseline|Run)[A-Z][A-Za-z]*)", tex):
            if m.group(1) not in known:
                problems.append(Problem("unknown_macro", f"\\{m.group(1)} is not defined in results.tex: use only "
                                        "the listed macros", _line(tex, m.start())))
    return problems


def check_tex(tex: str, latex_dir: Path, macro_names: Iterable[str] | None = None, *,
              skeleton: str | None = None, figures: Iterable[str] | None = None) -> list[Problem]:
    """Every problem of the paper source `tex` (whose folder is `latex_dir`), in line order.

    `macro_names`: the names results.tex defines (without backslash); when given, uses of
    `\\Baseline...` / `\\Run...` macros that do not exist are reported. `skeleton`: the
    template's own .tex; when given, everything outside the LaTeX allowlist is refused
    (`agent.paper.tex.allowlist`; `figures`: what plot.py made, the only files it may include).
    """
    clean = strip_comments(tex)
    problems = (_citations(clean, latex_dir) + _figures(clean, latex_dir) + _duplicates(clean)
                + _placeholders(clean) + _environments(clean) + _inputs_and_refs(clean, latex_dir, macro_names))
    if skeleton is not None:
        results = latex_dir / "results.tex"  # generated from the runs: every macro it defines
        defined = allowlist.defined_in(results.read_text(encoding="utf-8")) if results.is_file() else set()
        problems += [Problem("refused_command", message, line) for line, message
                     in allowlist.refused(tex, skeleton, {*(macro_names or ()), *defined}, figures)]
    return sorted(problems, key=lambda p: p.line)


def check_file(tex_path: Path, macro_names: Iterable[str] | None = None) -> list[Problem]:
    """`check_tex` on a file."""
    return check_tex(tex_path.read_text(encoding="utf-8", errors="replace"), tex_path.parent, macro_names)
