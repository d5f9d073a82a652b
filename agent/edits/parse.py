"""Read SEARCH/REPLACE blocks (aider's edit format) out of a model's reply.

A block names its file on a line of its own just before the opening fence::

    experiment.py
    ```python
    <<<<<<< SEARCH
    old lines
    =======
    new lines
    >>>>>>> REPLACE
    ```

A block with no file name line of its own reuses the previous block's file, as aider does.
Malformed blocks become `problems` (plain sentences for the model), never exceptions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

HEAD = re.compile(r"^\s*<{5,9} ?SEARCH>?\s*$")
DIVIDER = re.compile(r"^\s*={5,9}\s*$")
TAIL = re.compile(r"^\s*>{5,9} ?REPLACE<?\s*$")
FENCE = re.compile(r"^\s*(`{3,}|~{3,})\s*(\S*)\s*$")
# How many lines above `<<<<<<< SEARCH` may hold the file name (fence, blank line, name).
LOOKBACK = 3


@dataclass(frozen=True)
class EditBlock:
    """One SEARCH/REPLACE block as the model wrote it."""

    path: str
    """The file it edits, as written by the model (checked later, never trusted here)."""
    search: str
    """The lines to find, each ending in a newline; empty means create the file or prepend."""
    replace: str
    """The lines that take their place, each ending in a newline; empty means delete them."""

    @property
    def first_line(self) -> str:
        """The first non-blank line of SEARCH (or of REPLACE when SEARCH is empty), for messages."""
        for text in (self.search, self.replace):
            for line in text.split("\n"):
                if line.strip():
                    return line.strip()
        return "(empty block)"


@dataclass(frozen=True)
class ParseResult:
    """What a reply proposes: the well-formed blocks in order, and what was malformed."""

    blocks: list[EditBlock] = field(default_factory=list)
    """The well-formed blocks, in the order they appear in the reply."""
    problems: list[str] = field(default_factory=list)
    """One sentence per malformed block, written for the model."""


def parse(reply: str) -> ParseResult:
    """Find every SEARCH/REPLACE block in `reply`; malformed ones are reported, not raised."""
    lines = reply.replace("\r\n", "\n").split("\n")
    blocks: list[EditBlock] = []
    problems: list[str] = []
    previous_path: str | None = None
    floor = 0  # the file name search never looks above the end of the previous block
    i = 0
    while i < len(lines):
        if not HEAD.match(lines[i]):
            i += 1
            continue
        number = len(blocks) + len(problems) + 1
        path = _file_name_above(lines, i, floor) or previous_path
        body_end, problem = _block_end(lines, i)
        if problem is not None:
            where = f" for {path}" if path else ""
            problems.append(f"Block {number}{where} (line {i + 1} of your reply): {problem}")
            previous_path = path
            i = body_end
            continue
        divider = next(k for k in range(i + 1, body_end) if DIVIDER.match(lines[k]))
        if path is None:
            problems.append(
                f"Block {number} (line {i + 1} of your reply) names no file: put the file's "
                "path alone on the line just before the opening ``` fence."
            )
        else:
            blocks.append(
                EditBlock(path, _text(lines[i + 1 : divider]), _text(lines[divider + 1 : body_end]))
            )
            previous_path = path
        floor = body_end + 1
        i = body_end + 1
    return ParseResult(blocks, problems)


def _block_end(lines: list[str], head: int) -> tuple[int, str | None]:
    """Index of the block's `>>>>>>> REPLACE` line, or where scanning should resume and why not."""
    divider = None
    for k in range(head + 1, len(lines)):
        line = lines[k]
        if HEAD.match(line):
            missing = "`>>>>>>> REPLACE`" if divider is not None else "the `=======` divider"
            return k, f"it has no {missing} before the next `<<<<<<< SEARCH`."
        if divider is None and DIVIDER.match(line):
            divider = k
        elif TAIL.match(line):
            if divider is None:
                return (
                    k + 1,
                    "it has `>>>>>>> REPLACE` but no `=======` divider between SEARCH and REPLACE.",
                )
            return k, None
    if divider is None:
        return len(lines), "it has no `=======` divider and no `>>>>>>> REPLACE` line."
    return len(lines), "it never ends: the `>>>>>>> REPLACE` line is missing."


def _file_name_above(lines: list[str], head: int, floor: int) -> str | None:
    """The file name written in the few lines above a block's `<<<<<<< SEARCH`, if any."""
    for k in range(head - 1, max(floor, head - LOOKBACK) - 1, -1):
        fence = FENCE.match(lines[k])
        if fence:
            name = _clean_name(fence.group(2).split(":", 1)[-1]) if fence.group(2) else None
            if name:
                return name
            continue
        if not lines[k].strip():
            continue
        return _clean_name(lines[k])
    return None


def _clean_name(line: str) -> str | None:
    """`experiment.py` from forms like `**experiment.py**`, `# file: experiment.py`, `experiment.py:`."""
    name = line.strip().strip("*`'\"").strip()
    name = re.sub(r"^(#+|//|--|[-+]|\d+[.)])\s+|^#+", "", name)
    name = re.sub(r"^(file(name)?|path)\s*:\s*", "", name, flags=re.IGNORECASE)
    name = name.strip("*`'\"").rstrip(":").strip("*`'\" ")
    # A path has no spaces and has a suffix or a folder; prose ("Here is the fix:") has neither.
    if not name or re.search(r"\s", name) or not re.search(r"[./]", name):
        return None
    if re.fullmatch(r"[.\d]+|\.+", name):
        return None
    return name


def _text(lines: list[str]) -> str:
    """Join lines back into text, each ending in a newline ("" for no lines)."""
    return "".join(line + "\n" for line in lines)
