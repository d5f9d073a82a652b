"""Reading the compiled paper with poppler (pdftotext, pdftoppm), confined.

paper.pdf was compiled from LLM-written LaTeX, so the tools that parse it run on hostile input:
each gets a private copy of the PDF (read without following a link) in a scratch folder, the
one folder its sandbox shows besides the system (`agent.sandbox.tool`), through the runner.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from agent import runfiles, sandbox
from agent.executors import LOCAL, Process

TEXT_TIMEOUT_S = 60.0
PAGE_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class PdfText:
    """What pdftotext gave for a PDF."""

    text: str
    """The text, as a reader sees it (decompressed, `-layout`); empty when it failed."""
    problem: str = ""
    """Why there is no text (no pdftotext, an unreadable PDF, a failure); empty when ok."""


def text(pdf: Path, timeout_s: float = TEXT_TIMEOUT_S) -> PdfText:
    """`pdftotext -layout` of `pdf`."""
    if shutil.which("pdftotext") is None:
        return PdfText("", "pdftotext is not installed (Debian: poppler-utils)")
    with tempfile.TemporaryDirectory(prefix="pdftotext-") as tmp:
        copy = _copy(pdf, Path(tmp))
        if isinstance(copy, str):
            return PdfText("", copy)
        outcome = LOCAL.run(Process(("pdftotext", "-layout", copy.name, "-"), cwd=Path(tmp),
                                    log_dir=Path(tmp) / "logs", timeout_s=timeout_s, name="pdftotext",
                                    sandbox=sandbox.tool(write=Path(tmp))))
        if not outcome.ok:
            return PdfText("", outcome.stderr_tail.strip() or outcome.describe())
        return PdfText(outcome.stdout_path.read_text(encoding="utf-8", errors="replace"))


def first_page_png(pdf: Path, dpi: int = 60, timeout_s: float = PAGE_TIMEOUT_S) -> bytes | None:
    """The first page of `pdf` as PNG bytes, or None (no pdftoppm, a failure)."""
    if shutil.which("pdftoppm") is None:
        return None
    with tempfile.TemporaryDirectory(prefix="pdftoppm-") as tmp:
        copy = _copy(pdf, Path(tmp))
        if isinstance(copy, str):
            return None
        outcome = LOCAL.run(Process(("pdftoppm", "-png", "-r", str(dpi), "-f", "1", "-l", "1", "-singlefile",
                                     copy.name, "page"), cwd=Path(tmp), log_dir=Path(tmp) / "logs",
                                    timeout_s=timeout_s, name="pdftoppm", sandbox=sandbox.tool(write=Path(tmp))))
        try:
            return runfiles.read_bytes(Path(tmp) / "page.png", root=Path(tmp)) if outcome.ok else None
        except OSError:
            return None


def _copy(pdf: Path, folder: Path) -> Path | str:
    """A private copy of `pdf` in `folder`, or why it could not be read as a plain file."""
    try:
        data = runfiles.read_bytes(pdf)
    except OSError as exc:
        return f"{pdf.name} cannot be read as a plain file ({exc})"
    copy = folder / "paper.pdf"
    copy.write_bytes(data)
    return copy
