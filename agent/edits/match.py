"""Find a SEARCH block in a file and put REPLACE in its place: aider's matching cascade.

Tried in order, the first level that finds the lines wins:
  exact       the lines, character for character;
  whitespace  the same lines up to trailing whitespace and blank lines;
  indent      the same lines shifted by one uniform indentation (REPLACE is shifted alike);
  elided      SEARCH lines that are only `...` (or `# ...`) stand for any run of lines, and the
              same marker in REPLACE keeps the lines it stood for.
A level that finds the lines more than once is ambiguous and fails: guessing could edit the
wrong place. When nothing matches, the closest real lines are returned as "did you mean".
"""

from __future__ import annotations

import difflib
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

MatchKind = Literal["exact", "whitespace", "indent", "elided"]
ELISION = re.compile(r"^\s*(#|//|%|--)?\s*(\.\.\.|…)\s*$")
# Below this similarity (difflib ratio) no "did you mean" is offered: the lines are unrelated.
SIMILARITY_FLOOR = 0.6
CONTEXT_LINES = 2
# Only the first characters of each line count for similarity, so that long lines (a results
# dict pasted into notes.txt) cannot make the search quadratic in their length.
SIMILARITY_WIDTH = 200
# How many windows, ranked by shared tokens, are compared character by character.
SHORTLIST = 8
TOKEN = re.compile(r"\w+|[^\w\s]")


@dataclass(frozen=True)
class Replaced:
    """SEARCH was found once; the file's new content."""

    content: str
    """The whole file after the replacement."""
    kind: MatchKind
    """How tolerant the match had to be."""
    line: int
    """1-based line of the file where the matched lines began."""


@dataclass(frozen=True)
class NoMatch:
    """SEARCH was not found, or found more than once."""

    reason: str
    """Why, in a sentence for the model."""
    did_you_mean: str
    """The closest real lines of the file, numbered; empty when nothing is close."""


def substitute(content: str, search: str, replacement: str) -> Replaced | NoMatch:
    """Replace the one place in `content` that `search` matches with `replacement`."""
    file_lines = split_lines(content)
    ends_with_newline = content.endswith("\n") or not content
    new = split_lines(replacement)
    old = split_lines(search)
    if not "".join(old).strip():
        # Empty SEARCH: create the file, or append the lines at its end (as aider does; the
        # prompts tell the model so, and notes are kept by appending).
        head = content if not content or content.endswith("\n") else content + "\n"
        return Replaced(head + (_join(new, True) if new else ""), "exact", len(file_lines) + 1)
    levels: list[tuple[MatchKind, Callable[[], list[tuple[int, int, list[str]]]]]] = [
        ("exact", lambda: _find(file_lines, old, new, _same)),
        ("whitespace", lambda: _find(file_lines, *_trim_blank(old, new), _same_stripped)),
        ("indent", lambda: _find_shifted(file_lines, *_trim_blank(old, new))),
        ("elided", lambda: _find_elided(file_lines, old, new)),
    ]
    for kind, find in levels:
        if kind == "elided" and not any(ELISION.match(line) for line in old):
            continue
        found = find()
        if len(found) == 1:
            start, end, lines = found[0]
            result = file_lines[:start] + lines + file_lines[end:]
            return Replaced(_join(result, ends_with_newline), kind, start + 1)
        if len(found) > 1:
            where = ", ".join(str(start + 1) for start, _, _ in found[:6])
            return NoMatch(
                f"The SEARCH lines occur {len(found)} times (at lines {where}); "
                "add a few more surrounding lines so that they match exactly one place.",
                "",
            )
    if mismatch := _elision_mismatch(old, new):
        return NoMatch(mismatch, closest_lines(file_lines, old))
    reason = "The SEARCH lines are not in the file."
    if new and _find(file_lines, new, new, _same_stripped):
        reason += " The REPLACE lines are already there: this change may have been made before."
    return NoMatch(reason, closest_lines(file_lines, old))


def closest_lines(file_lines: Sequence[str], search: Sequence[str]) -> str:
    """The window of the file most like `search`, with line numbers, or "" if none is close."""
    wanted = [line for line in search if line.strip() and not ELISION.match(line)]
    if not wanted or not file_lines:
        return ""
    size = min(len(wanted), len(file_lines))
    target = [token for line in wanted for token in _tokens(line)]
    best, best_start = 0.0, -1
    # difflib on every window would be quadratic in the text: rank the windows by the tokens
    # they share (one sliding count), then let difflib compare the token order of the best few.
    for start in _token_ranked_windows(file_lines, wanted, size)[:SHORTLIST]:
        window = [token for line in file_lines[start : start + size] for token in _tokens(line)]
        ratio = difflib.SequenceMatcher(None, window, target, autojunk=False).ratio()
        if ratio > best:
            best, best_start = ratio, start
    if best < SIMILARITY_FLOOR:
        return ""
    lo = max(0, best_start - CONTEXT_LINES)
    hi = min(len(file_lines), best_start + size + CONTEXT_LINES)
    width = len(str(hi))
    return "\n".join(f"{k + 1:>{width}} | {file_lines[k]}".rstrip() for k in range(lo, hi))


def _token_ranked_windows(file_lines: Sequence[str], wanted: list[str], size: int) -> list[int]:
    """Start lines of all windows of `size` lines, most tokens shared with `wanted` first."""
    target = Counter(token for line in wanted for token in _tokens(line))
    tokens = [_tokens(line) for line in file_lines]
    window: Counter[str] = Counter(token for line in tokens[:size] for token in line)
    scores = []
    for start in range(len(file_lines) - size + 1):
        if start:
            window.subtract(tokens[start - 1])
            window.update(tokens[start + size - 1])
        shared = sum(min(count, window[token]) for token, count in target.items())
        scores.append((-shared, start))
    return [start for _, start in sorted(scores)]


def _tokens(line: str) -> list[str]:
    return TOKEN.findall(line[:SIMILARITY_WIDTH])


def split_lines(text: str) -> list[str]:
    """Lines of `text` split at newlines only (not at form feeds or other separators)."""
    lines = text.split("\n")
    return lines[:-1] if lines[-1] == "" else lines


def _same(a: str, b: str) -> bool:
    return a == b


def _same_stripped(a: str, b: str) -> bool:
    return a.rstrip() == b.rstrip()


def _find(
    file_lines: Sequence[str], old: list[str], new: list[str], same: Callable[[str, str], bool]
) -> list[tuple[int, int, list[str]]]:
    """Every (start, end, replacement) where `old` matches; blank lines are skipped unless exact."""
    if same is _same:
        n = len(old)
        return [
            (s, s + n, new)
            for s in range(len(file_lines) - n + 1)
            if all(file_lines[s + k] == old[k] for k in range(n))
        ]
    return [(s, e, new) for s, e in _spans(file_lines, old, same)]


def _spans(
    file_lines: Sequence[str], old: list[str], same: Callable[[str, str], bool], start: int = 0
) -> list[tuple[int, int]]:
    """Spans of the file whose non-blank lines are `old`'s non-blank lines, in order."""
    wanted = [line for line in old if line.strip()]
    if not wanted:
        return []
    present = [k for k in range(start, len(file_lines)) if file_lines[k].strip()]
    n = len(wanted)
    return [
        (present[p], present[p + n - 1] + 1)
        for p in range(len(present) - n + 1)
        if all(same(file_lines[present[p + j]], wanted[j]) for j in range(n))
    ]


def _find_shifted(
    file_lines: Sequence[str], old: list[str], new: list[str]
) -> list[tuple[int, int, list[str]]]:
    """Matches of `old` moved right or left by one uniform indentation; REPLACE moves alike."""
    found = []
    for start, end in _spans(file_lines, old, lambda a, b: a.strip() == b.strip()):
        real = [line for line in file_lines[start:end] if line.strip()]
        quoted = [line for line in old if line.strip()]
        shifts = {_indent(r) - _indent(q) for r, q in zip(real, quoted, strict=True)}
        if len(shifts) == 1:
            shift = shifts.pop()
            pad = _indent_char(real) * max(shift, 0)
            shifted = [_shift(line, shift, pad) for line in new]
            found.append((start, end, shifted))
    return found


def _find_elided(
    file_lines: Sequence[str], old: list[str], new: list[str]
) -> list[tuple[int, int, list[str]]]:
    """Matches where each `...` line of SEARCH stands for any run of lines of the file."""
    old_parts, new_parts = _split_elided(old), _split_elided(new)
    if len(old_parts) != len(new_parts) or any(not "".join(p).strip() for p in old_parts):
        return []
    found = []
    for start, end in _spans(file_lines, old_parts[0], _same_stripped):
        pieces, gaps, cursor = [(start, end)], [], end
        for part in old_parts[1:]:
            later = _spans(file_lines, part, _same_stripped, cursor)
            if not later:
                break
            gaps.append(list(file_lines[cursor : later[0][0]]))
            pieces.append(later[0])
            cursor = later[0][1]
        else:
            lines = list(new_parts[0])
            for gap, part in zip(gaps, new_parts[1:], strict=True):
                lines += gap + part
            found.append((start, cursor, lines))
    return found


def _split_elided(lines: list[str]) -> list[list[str]]:
    """Lines split at `...` markers; markers at the very start or end are dropped."""
    parts: list[list[str]] = [[]]
    for line in lines:
        if ELISION.match(line):
            parts.append([])
        else:
            parts[-1].append(line)
    while len(parts) > 1 and not "".join(parts[0]).strip():
        parts.pop(0)
    while len(parts) > 1 and not "".join(parts[-1]).strip():
        parts.pop()
    return parts


def _elision_mismatch(old: list[str], new: list[str]) -> str:
    """A reason when SEARCH elides lines but REPLACE does not say which of them to keep."""
    if not any(ELISION.match(line) for line in old):
        return ""
    if len(_split_elided(old)) != len(_split_elided(new)):
        return (
            "SEARCH uses `...` to skip lines, but REPLACE has a different number of `...` lines, "
            "so it is unclear which skipped lines to keep. Use the same `...` lines in REPLACE, "
            "or quote the lines in full."
        )
    return ""


def _trim_blank(old: list[str], new: list[str]) -> tuple[list[str], list[str]]:
    """Drop blank lines at the edges of SEARCH, and as many at the same edges of REPLACE."""
    old, new = list(old), list(new)
    while old and not old[0].strip():
        old.pop(0)
        if new and not new[0].strip():
            new.pop(0)
    while old and not old[-1].strip():
        old.pop()
        if new and not new[-1].strip():
            new.pop()
    return old, new


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _indent_char(lines: Sequence[str]) -> str:
    return "\t" if any(line.startswith("\t") for line in lines) else " "


def _shift(line: str, shift: int, pad: str) -> str:
    if not line.strip():
        return ""
    if shift >= 0:
        return pad + line
    return line[min(-shift, _indent(line)) :]


def _join(lines: list[str], ends_with_newline: bool) -> str:
    text = "\n".join(lines)
    return text + "\n" if lines and ends_with_newline else text
