"""The bounded reflection loop around one edit request.

Parse the reply, apply its blocks, lint the Python it changed; when something is left to fix,
tell the model what and ask again, at most `max_reflections` times. Asking the model and
committing are callbacks, so this module stays pure: the orchestrator plugs in the LLM call
(`ask`), the journal (`on_report`, once per reply) and the git commit (`on_applied`, once per
reply that changed files).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from agent.edits.apply import EditPolicy, EditReport, apply_blocks
from agent.edits.feedback import (
    feedback,
    no_change_message,
    parse_problems_message,
    repaired_blocks_message,
)
from agent.edits.lint import format_lint, lint
from agent.edits.parse import ParseResult, parse


@dataclass(frozen=True)
class EditSession:
    """What one edit request came to, after its reflections."""

    replies: list[str]
    """Every reply of the model, the first one included, in order."""
    reports: list[EditReport]
    """One report per reply: what applied, failed and was refused."""
    changed_files: list[str]
    """Sorted relative paths changed by any reply."""
    ok: bool
    """A change was applied (or none was required), nothing is left failing, lint is clean."""
    problem: str | None
    """Why not ok, in plain words; None when ok."""
    final_reply: str
    """The last reply (where the caller looks for ALL_COMPLETED and the like)."""
    messages: list[str] = field(default_factory=list)
    """The feedback sent back to the model, one per reflection asked for."""
    repairs: list[str] = field(default_factory=list)
    """Blocks applied only after a repair (a stray ======= dropped), one sentence each: such
    an edit is never reported clean without them (the stage journals them as `edit.repaired`)."""


@dataclass(frozen=True)
class _Verdict:
    """What is left to fix after one reply."""

    message: str
    """Feedback for the model; empty when nothing is left."""
    problem: str
    """The same in a few plain words for the caller."""


def converse(
    reply: str,
    ask: Callable[[str], str | None],
    policy: EditPolicy,
    *,
    max_reflections: int = 3,
    require_change: bool = True,
    lint_python: bool = True,
    on_applied: Callable[[EditReport], None] | None = None,
    on_report: Callable[[EditReport, list[str]], None] | None = None,
) -> EditSession:
    """Apply `reply`'s edits; feed back failures and lint errors via `ask`, a bounded number of times."""
    replies: list[str] = [reply]
    reports: list[EditReport] = []
    messages: list[str] = []
    repairs: list[str] = []
    changed: set[str] = set()
    outstanding: EditReport | None = None  # the last reply's blocks that did not apply

    def finish(problem: str | None) -> EditSession:
        ok = problem is None
        return EditSession(replies, reports, sorted(changed), ok, problem, replies[-1], messages,
                           repairs)

    while True:
        parsed = parse(replies[-1], policy.editable)
        report = apply_blocks(parsed.blocks, policy)
        reports.append(report)
        repairs.extend(parsed.notes)
        if on_report is not None:  # before anything else happens, e.g. a crash mid-session
            on_report(report, parsed.notes)
        if report.changed_files:
            changed.update(report.changed_files)
            if on_applied is not None:
                on_applied(report)
        if parsed.blocks or parsed.problems:
            outstanding = None if report.clean else report
        verdict = _judge(parsed, outstanding, changed, policy, require_change, lint_python)
        if not verdict.message:
            return finish(None)
        if len(messages) >= max_reflections:
            return finish(f"{verdict.problem} (after {max_reflections} reflections)")
        messages.append(verdict.message)
        answer = ask(verdict.message)
        if answer is None:
            return finish(f"{verdict.problem} (no further reply could be asked for)")
        replies.append(answer)


def _judge(
    parsed: ParseResult,
    outstanding: EditReport | None,
    changed: set[str],
    policy: EditPolicy,
    require_change: bool,
    lint_python: bool,
) -> _Verdict:
    """Collect what the model must still fix, as a message for it and a line for the caller."""
    messages: list[str] = []
    problems: list[str] = []
    if parsed.problems:
        messages.append(parse_problems_message(parsed.problems))
        problems.append(f"{len(parsed.problems)} malformed block(s)")
    if outstanding is not None:
        if not parsed.blocks and not parsed.problems:
            messages.append(
                "Your reply had no SEARCH/REPLACE blocks, so these are still not applied:"
            )
            outstanding = EditReport([], outstanding.failed, outstanding.refused, [])
        messages.append(feedback(outstanding))
        files = sorted({miss.path for miss in outstanding.failed})
        if outstanding.failed:
            problems.append(
                f"{len(outstanding.failed)} block(s) failed to match in {', '.join(files)}"
            )
        if outstanding.refused:
            problems.append(f"{len(outstanding.refused)} block(s) refused")
    if parsed.notes and messages:  # told along with what must be fixed anyway: no extra round
        messages.append(repaired_blocks_message(parsed.notes))
    issues = lint(policy.root, sorted(changed)) if lint_python else []
    if issues:
        messages.append(format_lint(issues))
        first = issues[0]
        problems.append(f"lint errors remain ({first.path}:{first.line}: {first.message})")
    if require_change and not changed and not messages:
        messages.append(no_change_message())
        problems.append("the reply proposed no change")
    return _Verdict("\n\n".join(messages), "; ".join(problems))
