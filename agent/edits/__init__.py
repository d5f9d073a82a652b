"""The edit protocol: the model's SEARCH/REPLACE blocks, parsed, matched, applied and checked.

`parse` reads blocks out of a reply, `apply_blocks` applies the allowed ones inside a run
directory, `feedback` tells the model what happened, `lint` checks edited Python, and
`converse` runs the bounded loop of replies around one edit request.
"""

from agent.edits.apply import Applied, EditPolicy, EditReport, Failed, Refused, apply_blocks
from agent.edits.feedback import feedback, no_change_message
from agent.edits.lint import LintIssue, format_lint, lint
from agent.edits.match import MatchKind, NoMatch, Replaced, substitute
from agent.edits.parse import EditBlock, ParseResult, parse
from agent.edits.session import EditSession, converse

__all__ = [
    "Applied",
    "EditBlock",
    "EditPolicy",
    "EditReport",
    "EditSession",
    "Failed",
    "LintIssue",
    "MatchKind",
    "NoMatch",
    "ParseResult",
    "Refused",
    "Replaced",
    "apply_blocks",
    "converse",
    "feedback",
    "format_lint",
    "lint",
    "no_change_message",
    "parse",
    "substitute",
]
