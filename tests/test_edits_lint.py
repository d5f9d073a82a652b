"""The fast lint run after an edit to Python: errors only, never style."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.edits import format_lint, lint
from agent.edits.lint import lint_source


def test_lint_reports_undefined_name(tmp_path: Path) -> None:
    # Seed 002: the trainer class was renamed but not where it is used.
    (tmp_path / "experiment.py").write_text(
        "class OrthogonalTrainer:\n    pass\n\n\ndef run():\n    trainer = CustomTrainer(\n    )\n    return trainer\n"
    )
    (issue,) = lint(tmp_path, ["experiment.py"])
    assert (issue.path, issue.line, issue.col, issue.code) == ("experiment.py", 6, 15, "F821")
    assert issue.message == "undefined name 'CustomTrainer'"
    assert format_lint([issue]) == (
        "Fix these errors before the code is run:\n"
        "experiment.py:6:15: F821 undefined name 'CustomTrainer'\n"
        "    trainer = CustomTrainer("
    )


def test_lint_reports_syntax_errors() -> None:
    (issue,) = lint_source("plot.py", "import json\ndef f(:\n    pass\n")
    assert (issue.code, issue.line) == ("E999", 2)
    assert issue.message.startswith("SyntaxError:")
    assert issue.source == "def f(:"


@pytest.mark.parametrize(
    ("source", "code"),
    [
        ("def f():\n    from os import *\n", "F406"),
        ("from __future__ import nonexistent\n", "F407"),
        ("break\n", "F701"),
        ("continue\n", "F702"),
        ("yield 1\n", "F704"),
        ("return 1\n", "F706"),
        ("def f(x, x):\n    pass\n", "F831"),
    ],
)
def test_lint_reports_the_flake8_error_codes_the_reference_selected(source: str, code: str) -> None:
    # Many of these are also compile() errors; each is reported once, under its flake8 code.
    assert [issue.code for issue in lint_source("a.py", source)] == [code]


def test_lint_reports_undefined_local() -> None:
    source = "x = 1\n\n\ndef f():\n    print(x)\n    x = 2\n"
    assert [i.code for i in lint_source("a.py", source)] == ["F823"]


def test_lint_ignores_style_and_unused_imports() -> None:
    source = "import os\nimport sys\nx=1;y =  2\nl = lambda: 0\n"
    assert lint_source("a.py", source) == []


def test_lint_checks_only_python_files_that_exist(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("undefined_name\n")
    assert lint(tmp_path, ["notes.txt", "missing.py", "../outside.py"]) == []
    assert format_lint([]) == ""
