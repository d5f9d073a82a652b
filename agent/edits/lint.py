"""A fast lint of edited Python before anything runs: errors only, never style.

The same checks as `flake8 --select=E9,F821,F823,F831,F406,F407,F701,F702,F704,F706` (what the
reference system ran), done in-process with `compile()` and the pyflakes library.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

from pyflakes import checker, messages

# pyflakes message class -> the flake8 code it is reported under.
CODES: dict[type[messages.Message], str] = {
    messages.UndefinedName: "F821",
    messages.UndefinedLocal: "F823",
    messages.DuplicateArgument: "F831",
    messages.ImportStarNotPermitted: "F406",
    messages.FutureFeatureNotDefined: "F407",
    messages.BreakOutsideLoop: "F701",
    messages.ContinueOutsideLoop: "F702",
    messages.YieldOutsideFunction: "F704",
    messages.ReturnOutsideFunction: "F706",
}


@dataclass(frozen=True)
class LintIssue:
    """One error in one file."""

    path: str
    """The file, relative to the root."""
    line: int
    """1-based line of the error (0 when unknown)."""
    col: int
    """1-based column (0 when unknown)."""
    code: str
    """The flake8 code: E999 for a syntax error, F821 for an undefined name, ..."""
    message: str
    """What is wrong, as the checker words it."""
    source: str
    """The offending line of the file, as written."""


def lint(root: Path, paths: list[str]) -> list[LintIssue]:
    """Errors in the `.py` files among `paths` (relative to `root`); others are skipped."""
    issues: list[LintIssue] = []
    inside = root.resolve()
    for rel in sorted(set(paths)):
        path = root / rel
        if rel.endswith(".py") and path.is_file() and path.resolve().is_relative_to(inside):
            issues += lint_source(rel, path.read_text(encoding="utf-8", errors="replace"))
    return issues


def lint_source(name: str, source: str) -> list[LintIssue]:
    """Errors in one file's source text; `name` is used in the messages."""
    lines = source.split("\n")
    try:
        tree = ast.parse(source, filename=name)
    except SyntaxError as error:
        return [_syntax_issue(name, error, lines)]
    found = checker.Checker(tree, filename=name)
    issues = []
    for message in sorted(found.messages, key=lambda m: (m.lineno, getattr(m, "col", 0))):
        code = CODES.get(type(message))
        if code is not None:
            text = message.message % message.message_args
            col = getattr(message, "col", 0) + 1
            issues.append(
                LintIssue(name, message.lineno, col, code, text, _line(lines, message.lineno))
            )
    try:
        compile(tree, name, "exec")
    except SyntaxError as error:
        # Errors the parser lets through (`return` outside a function, `nonlocal` misuse).
        if not any(issue.line == error.lineno for issue in issues):
            issues.append(_syntax_issue(name, error, lines))
    return issues


def format_lint(issues: list[LintIssue]) -> str:
    """The issues for the model: `file:line:col: CODE message`, then the offending line."""
    if not issues:
        return ""
    parts = ["Fix these errors before the code is run:"]
    for issue in issues:
        parts.append(f"{issue.path}:{issue.line}:{issue.col}: {issue.code} {issue.message}")
        if issue.source.strip():
            parts.append(f"    {issue.source.strip()}")
    return "\n".join(parts)


def _syntax_issue(name: str, error: SyntaxError, lines: list[str]) -> LintIssue:
    line = error.lineno or 0
    source = (error.text or _line(lines, line)).rstrip("\n")
    return LintIssue(name, line, error.offset or 0, "E999", f"SyntaxError: {error.msg}", source)


def _line(lines: list[str], number: int) -> str:
    return lines[number - 1] if 0 < number <= len(lines) else ""
