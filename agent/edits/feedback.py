"""Messages for the model about what became of its edits.

Written for the model, not for a log: applied blocks are named (file and first line) but not
repeated, failed ones come with the closest real lines, refused ones say why and what may be
edited, and the model is told to re-send only what needs fixing.
"""

from __future__ import annotations

from agent.edits.apply import EditReport
from agent.edits.parse import EditBlock

RESEND = (
    "Do not re-send the blocks that were applied; send only corrected versions of the failed ones."
)
# Echo at most this many SEARCH lines of a failed block, so the model recognises which it was.
ECHO_LINES = 12


def feedback(report: EditReport) -> str:
    """What applied, what failed (with the closest real lines) and what was refused, and why."""
    parts: list[str] = []
    total = len(report.applied) + len(report.failed) + len(report.refused)
    if report.applied:
        lines = [f"{len(report.applied)} of {total} SEARCH/REPLACE blocks were applied:"]
        for done in report.applied:
            note = "" if done.changed else "; it changed nothing"
            kind = "" if done.kind == "exact" else f", {done.kind} match"
            lines.append(
                f"- {done.path}: `{_short(done.block.first_line)}` (line {done.line}{kind}{note})"
            )
        parts.append("\n".join(lines))
    if report.failed:
        parts.append(f"{_count(len(report.failed))} failed to match:")
        for number, miss in enumerate(report.failed, 1):
            text = [f"## Failed block {number}: {miss.path}", _echo(miss.block), miss.reason]
            if miss.did_you_mean:
                text += [
                    f"Did you mean these lines of {miss.path}?",
                    f"```\n{miss.did_you_mean}\n```",
                ]
            parts.append("\n".join(text))
        parts.append(
            "The SEARCH section must repeat existing lines of the file exactly (whitespace and "
            "indentation may differ); copy them from the file rather than from memory."
        )
    if report.refused:
        lines = [f"{_count(len(report.refused))} refused:"]
        lines += [f"- {no.reason}" for no in report.refused]
        parts.append("\n".join(lines))
    if report.failed or report.refused:
        parts.append(RESEND if report.applied else "Send corrected versions of these blocks.")
    return "\n\n".join(parts)


def no_change_message() -> str:
    """For a reply that changed no file when a change was required."""
    return (
        "Your reply did not change any file: it had no SEARCH/REPLACE block, or its REPLACE "
        "sections were identical to what they replaced. Nothing will run until the code "
        "changes. Send the edit as SEARCH/REPLACE blocks: the file's path alone on a line, "
        "then a fenced block with <<<<<<< SEARCH, the exact current lines, =======, the new "
        "lines, and >>>>>>> REPLACE."
    )


def parse_problems_message(problems: list[str]) -> str:
    """For blocks that could not even be read."""
    lines = [f"{_count(len(problems))} could not be read, so they were not applied:"]
    lines += [f"- {problem}" for problem in problems]
    lines.append(
        "Each block needs the file's path alone on the line before the fence, then "
        "<<<<<<< SEARCH, the current lines, =======, the new lines, >>>>>>> REPLACE."
    )
    return "\n".join(lines)


def repaired_blocks_message(notes: list[str]) -> str:
    """For blocks that were read only after a repair (`ParseResult.notes`), so the model learns."""
    it = "it" if len(notes) == 1 else "they"
    lines = [f"{_count(len(notes))} needed a repair before {it} could be read:"]
    lines += [f"- {note}" for note in notes]
    lines.append(
        "Do not re-send a block because of this note; check that the file now reads as you "
        "meant, and write exactly one ======= line per block from now on."
    )
    return "\n".join(lines)


def _echo(block: EditBlock) -> str:
    lines = block.search.split("\n")[:-1] if block.search else ["(empty SEARCH)"]
    head = "Its SEARCH section:"
    if len(lines) > ECHO_LINES:
        head = f"Its SEARCH section ({len(lines)} lines) began:"
    shown = "\n".join(_short(line, 160) for line in lines[:ECHO_LINES])
    return f"{head}\n```\n{shown}\n```"


def _short(text: str, width: int = 80) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _count(n: int) -> str:
    return "1 block" if n == 1 else f"{n} blocks"
