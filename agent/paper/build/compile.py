r"""Compiling the paper: pdflatex, bibtex, pdflatex twice, and chktex, each a `Process` run by
the local executor (`agent.executors`).

The LaTeX is LLM-written, so every TeX process runs in a sandbox of its own (`agent.sandbox.tool`:
the system read-only, `latex/` the one folder it sees and writes, an empty HOME, no network, no
other process in view) and with TeX's own fences set by the project, whatever the machine's
texmf.cnf says (`TEX_ENV`): no shell escape, and `\openin`/`\openout` paranoid (no dot files,
no parent folders, no absolute paths). The writeup stage copies the figures `plot.py` made
into `latex/figures/` first (`copy_figures`): a paranoid TeX cannot read `../`.

What the compiler says comes back as values the writeup stage feeds to the LLM: the real
`!` error lines of the .log with their `l.NN` context, bibtex's errors, the undefined
citations and references of the last pass, and chktex's warnings minus the stylistic noise.
A machine without pdflatex is not a failure of the run: the result says `skipped` and why.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from agent import runfiles, runner, sandbox
from agent.executors import LOCAL, OnStart, Process

CompileStatus = Literal["ok", "failed", "timed_out", "skipped", "refused"]
SHARED_LATEX_DIR = Path(__file__).resolve().parents[3] / "latex"
SHARED_STYLE_FILES = ("trustedpaper.sty",)
STALE_SUFFIXES = (".aux", ".bbl", ".blg", ".out", ".toc", ".log", ".pdf")
# chktex messages that are style opinions, not problems: command terminated with space,
# non-breaking space before refs, parenthesis bracing, dash length, \ldots, interword and
# intersentence spacing, quote style, page-reference spacing, spaces around parentheses,
# vertical rules in tables, \( \) instead of $ $.
CHKTEX_NOISE = (1, 2, 3, 8, 11, 12, 13, 18, 24, 36, 37, 38, 39, 44, 46)
TEX_ENV = {"shell_escape": "f", "openin_any": "p", "openout_any": "p"}
r"""kpathsea reads texmf.cnf's variables from the environment first: shell escape off, and
files opened by `\openin`, `\input`, `\openout` and `\write` only below the working
folder (no `..`, no absolute path, no dot file)."""
FIGURES_DIR = "figures"
"""Under `latex/`: the checked figures, copied there before every compile (ignored by git)."""


@dataclass(frozen=True)
class LatexError:
    """One error pdflatex reported in its log."""

    message: str
    """The `!` line (or `file:line: message` line), e.g. `! Undefined control sequence.`"""
    line: int
    """The source line from `l.NN` (0 when the log does not say)."""
    context: str
    """The `l.NN ...` lines: the source text where TeX stopped."""

    def describe(self) -> str:
        where = f"line {self.line}: " if self.line else ""
        return f"{where}{self.message}" + (f"\n    {self.context}" if self.context else "")


@dataclass(frozen=True)
class CompileResult:
    """What compiling the paper produced."""

    status: CompileStatus
    """ok: a PDF was built; failed / timed_out: a pdflatex pass did not finish; skipped: no
    pdflatex; refused: not compiled, the source leaves the LaTeX allowlist."""
    message: str
    """One line for people and prompts."""
    pdf_path: Path | None = None
    """The PDF (copied to `pdf_out` when one was given)."""
    errors: tuple[LatexError, ...] = ()
    """pdflatex errors of the failing pass."""
    bibtex_errors: tuple[str, ...] = ()
    """bibtex errors and warnings (a missing entry, a malformed .bib)."""
    warnings: tuple[str, ...] = ()
    """Undefined citations and references after the last pass."""
    chktex: tuple[str, ...] = ()
    """chktex warnings, `line:column: [number] message`, noise filtered out."""
    refused: tuple[str, ...] = ()
    """What TeX's fences refused the paper: `read PATH`, `write PATH`, `run COMMAND`."""

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def feedback(self, limit: int = 20) -> str:
        """Everything the LLM should fix, bounded."""
        parts = [e.describe() for e in self.errors] + list(self.bibtex_errors) + list(self.warnings)
        parts += [f"chktex: {w}" for w in self.chktex]
        more = f"\n[... {len(parts) - limit} more]" if len(parts) > limit else ""
        return "\n".join(parts[:limit]) + more


def install_style(latex_dir: Path) -> list[Path]:
    """Copy the shared style files next to the paper when they are not there yet."""
    copied = []
    for name in SHARED_STYLE_FILES:
        source, target = SHARED_LATEX_DIR / name, latex_dir / name
        if source.is_file() and not target.exists():
            shutil.copyfile(source, target)
            copied.append(target)
    return copied


def _read(path: Path) -> str:
    return path.read_text(encoding="latin-1", errors="replace") if path.exists() else ""


def log_errors(log: str) -> list[LatexError]:
    """The errors of a pdflatex log: each `!` line with the `l.NN` lines after it."""
    errors: list[LatexError] = []
    lines = log.splitlines()
    for i, text in enumerate(lines):
        file_line = re.match(r"^\S*\.tex:(\d+): (.*)$", text)
        if not (text.startswith("!") or file_line):
            continue
        message = text if text.startswith("!") else file_line.group(2)  # type: ignore[union-attr]
        if re.search(r"Emergency stop|==> Fatal error", message):
            continue
        context, number = "", int(file_line.group(1)) if file_line else 0
        for j in range(i + 1, min(i + 12, len(lines))):
            m = re.match(r"^l\.(\d+)(.*)$", lines[j])
            if m:
                number = int(m.group(1))
                following = lines[j + 1].strip() if j + 1 < len(lines) else ""
                context = (lines[j].rstrip() + (" " + following if following else "")).strip()
                break
        error = LatexError(message.strip(), number, context)
        if error not in errors:
            errors.append(error)
    return errors


def log_warnings(log: str) -> list[str]:
    """Undefined citations and references (what prints as [?] and ?? in the PDF)."""
    text = re.sub(r"\n\((?:natbib|hyperref|cleveref)\)\s*", " ", log).replace("\n", "")
    found = re.findall(r"(?:LaTeX|Package natbib) Warning: ((?:Citation|Reference) `[^']*' on page \d+ undefined"
                       r"(?: on input line \d+)?)", text)
    return list(dict.fromkeys(found))


def refused_access(stderr: str, log: str) -> list[str]:
    """What the paper tried and TeX refused (see TEX_ENV): kpathsea says so on stderr, and the
    log names each `\\write18` it did not run."""
    found = [f"read {m}" for m in re.findall(r"Not reading from (.+?) \(openin_any = p\)", stderr)]
    found += [f"write {m}" for m in re.findall(r"Not writing to (.+?) \(openout_any = p\)", stderr)]
    found += [f"run {m}" for m in re.findall(r"runsystem\((.*?)\)\.\.\.disabled", log.replace("\n", ""))]
    return list(dict.fromkeys(found))


def bibtex_problems(blg: str) -> list[str]:
    """bibtex's errors and warnings from its .blg."""
    out = []
    lines = blg.splitlines()
    for i, text in enumerate(lines):
        if text.startswith("Warning--") or re.match(r"^(I couldn't|I found no|I was expecting|Illegal|You're missing|"
                                                    r"Repeated entry|.*---line \d+ of file)", text):
            detail = lines[i + 1].strip() if "---line" in text and i + 1 < len(lines) else ""
            out.append(f"bibtex: {text.strip()}" + (f" ({detail})" if detail else ""))
    return list(dict.fromkeys(out))


def _tex(argv: list[str], latex_dir: Path, log_dir: Path, timeout_s: float, name: str,
         on_start: OnStart = None, write: bool = True) -> runner.RunOutcome:
    """One TeX tool on `latex_dir`, confined (see the module's docstring)."""
    box = sandbox.tool(write=latex_dir) if write else sandbox.tool(read=(latex_dir,))
    return LOCAL.run(Process(tuple(argv), cwd=latex_dir, log_dir=log_dir, timeout_s=timeout_s, name=name,
                             sandbox=box, env_extra=TEX_ENV), on_start=on_start)


def _pdflatex(latex_dir: Path, main: str, log_dir: Path, timeout_s: float, n: int,
              on_start: OnStart = None) -> runner.RunOutcome:
    return _tex(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "-no-shell-escape", main],
                latex_dir, log_dir, timeout_s, f"pdflatex{n}", on_start)


def copy_figures(latex_dir: Path, root: Path, names: list[str]) -> list[str]:
    """The figures `names` (paths relative to `root`, the run directory) into
    `latex_dir/figures/` (emptied first), each read without following a link out of `root`;
    the names of those that could not be read as plain files."""
    target = latex_dir / FIGURES_DIR
    if target.is_symlink() or target.is_file():
        target.unlink()
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir()
    refused = []
    for name in names:
        dest = target / name
        try:
            data = runfiles.read_bytes(root / name, root=root)
        except OSError:
            refused.append(name)
            continue
        if not dest.resolve().is_relative_to(target.resolve()):
            refused.append(name)
            continue
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(data)
    return refused


def run_chktex(latex_dir: Path, main: str, log_dir: Path, timeout_s: float,
               on_start: OnStart = None) -> list[str]:
    """chktex's warnings on `main`, noise muted; empty when chktex is not installed."""
    if shutil.which("chktex") is None:
        return []
    argv = ["chktex", "-q", "-I0", "-f", "%l:%c: [%n] %m\n", *(f"-n{n}" for n in CHKTEX_NOISE), main]
    outcome = _tex(argv, latex_dir, log_dir, timeout_s, "chktex", on_start, write=False)
    text = outcome.stdout_path.read_text(encoding="utf-8", errors="replace")
    return [line.strip() for line in text.splitlines() if re.match(r"^\d+:\d+: \[\d+\]", line.strip())]


def compile_paper(latex_dir: Path, timeout_s: float = 120.0, main: str = "template.tex",
                  log_dir: Path | None = None, pdf_out: Path | None = None, chktex: bool = True,
                  on_start: OnStart = None) -> CompileResult:
    """Build `latex_dir/main` into a PDF; every pass has its own `timeout_s` (seconds).

    The runner's stdout/stderr files go to `log_dir` (default `latex_dir/compile_logs`).
    The PDF is copied to `pdf_out` when given. `on_start(pgid)` is told of every process
    started (pdflatex, bibtex, chktex), so a crash of the caller can be cleaned up after.
    """
    if shutil.which("pdflatex") is None:
        return CompileResult("skipped", "pdflatex is not on PATH, so the paper was not compiled; install TeX Live "
                             "(Debian: texlive-latex-recommended texlive-latex-extra texlive-fonts-recommended "
                             "texlive-bibtex-extra chktex) and rerun the writeup stage to get paper.pdf")
    latex_dir = latex_dir.resolve()
    log_dir = log_dir or latex_dir / "compile_logs"
    stem = Path(main).stem
    install_style(latex_dir)
    for suffix in STALE_SUFFIXES:
        (latex_dir / (stem + suffix)).unlink(missing_ok=True)
    lint = tuple(run_chktex(latex_dir, main, log_dir, timeout_s, on_start)) if chktex else ()
    bib_errors: list[str] = []
    refused: list[str] = []
    log = ""
    for n in (1, 2, 3, 4):
        if n == 4 and "Rerun to get" not in log:
            break  # a fourth pass only when LaTeX asks for it (floats moved on the third)
        outcome = _pdflatex(latex_dir, main, log_dir, timeout_s, n, on_start)
        log = _read(latex_dir / f"{stem}.log")
        refused = list(dict.fromkeys(refused + refused_access(_read(outcome.stderr_path), log)))
        if not outcome.ok:
            status: CompileStatus = "timed_out" if outcome.status == "timed_out" else "failed"
            errors = tuple(log_errors(log)) or (LatexError(f"pdflatex {outcome.describe()}", 0, ""),)
            return CompileResult(status, f"pdflatex pass {n} {outcome.describe()}: {errors[0].message}",
                                 None, errors, tuple(bib_errors), (), lint, tuple(refused))
        aux = _read(latex_dir / f"{stem}.aux")
        if n == 1 and "\\citation" in aux and "\\bibdata" in aux:
            bib = _tex(["bibtex", stem], latex_dir, log_dir, timeout_s, "bibtex", on_start)
            refused = list(dict.fromkeys(refused + refused_access(_read(bib.stderr_path), "")))
            bib_errors = bibtex_problems(_read(latex_dir / f"{stem}.blg"))
            if bib.status == "timed_out":
                bib_errors.append(f"bibtex {bib.describe()}")
    pdf = latex_dir / f"{stem}.pdf"
    if not pdf.is_file():
        return CompileResult("failed", "pdflatex finished but wrote no PDF (is the document empty?)",
                             None, (), tuple(bib_errors), (), lint, tuple(refused))
    if pdf_out is not None:
        pdf_out.parent.mkdir(parents=True, exist_ok=True)
        pdf_out.unlink(missing_ok=True)  # never write through a link planted in its place
        try:
            pdf_out.write_bytes(runfiles.read_bytes(pdf, root=latex_dir))
        except OSError as exc:
            return CompileResult("failed", f"the PDF is not a plain file of latex/ ({exc})", None, (),
                                 tuple(bib_errors), (), lint, tuple(refused))
        pdf = pdf_out
    warnings = tuple(log_warnings(log))
    summary = f"compiled to {pdf.name}" + (f" with {len(warnings)} undefined citation(s)/reference(s)" if warnings else "")
    return CompileResult("ok", summary, pdf, (), tuple(bib_errors), warnings, lint, tuple(refused))
