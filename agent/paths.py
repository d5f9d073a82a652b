"""Where the project's folders are: templates, the shared LaTeX skeleton, the default runs dir."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TEMPLATES = REPO / "templates"
LATEX = REPO / "latex"
RUNS = REPO / "runs"
