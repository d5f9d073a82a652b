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
A file name has a suffix or a folder (`notes.txt`, `latex/template.tex`); a bare name
(`Makefile`) counts only when it is on the editable list passed in, or a conventional
extensionless file name (`CONVENTIONAL`), so a one-word prose line ("Changes:") is never one.

The divider is a line of exactly seven `=` (indentation and trailing spaces allowed): a
Markdown heading underline of 5, 6, 8 or 9 `=` is content, in SEARCH and in REPLACE. The
`<<<<<<< SEARCH` and `>>>>>>> REPLACE` markers keep a tolerance of 5 to 9 characters, since
their word cannot be mistaken for content. Models sometimes write a second divider in a block:

- directly before `>>>>>>> REPLACE` (`new lines`, `=======`, `>>>>>>> REPLACE`), or twice in a
  row to mean "delete" (`=======`, `=======`, `>>>>>>> REPLACE`). Such trailing divider lines
  are dropped, never written into the file, and each drop is reported in `notes` (worded for
  the model by `feedback.repaired_blocks_message`). A REPLACE that really ends with a seven-`=` line (a Markdown heading underline) loses
  it; that is rare in notes and LaTeX, and the model is told it may underline with eight `=`.
- inside REPLACE with more lines after it. Then it is unclear where REPLACE begins, so the
  block becomes a problem and is not applied.

Malformed blocks become `problems` (plain sentences for the model), never exceptions.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass, field

HEAD = re.compile(r"^\s*<{5,9} ?SEARCH>?\s*$")
DIVIDER = re.compile(r"^\s*={7}\s*$")
TAIL = re.compile(r"^\s*>{5,9} ?REPLACE<?\s*$")
FENCE = re.compile(r"^\s*(`{3,}|~{3,})\s*(\S*)\s*$")
# How many lines above `<<<<<<< SEARCH` may hold the file name (fence, blank line, name).
LOOKBACK = 3
# File names without suffix or folder that are files by convention, not prose.
CONVENTIONAL = frozenset(
    {
        "Makefile", "makefile", "GNUmakefile", "Dockerfile", "Containerfile", "Snakefile",
        "Justfile", "justfile", "Jenkinsfile", "Procfile", "Gemfile", "Rakefile", "Vagrantfile",
        "LICENSE", "README", "CHANGELOG", "NOTICE", "AUTHORS", "COPYING",
    }
)  # fmt: skip


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
    notes: list[str] = field(default_factory=list)
    """One sentence per block that was read after a repair (a stray divider dropped), for the model."""


def parse(reply: str, editable: Collection[str] = ()) -> ParseResult:
    """Find every SEARCH/REPLACE block in `reply`; malformed ones are reported, not raised.

    `editable` lists the files the model may edit. A bare name on it (`Makefile`) is the
    block's file even after a fence's backticks, where other bare words are languages.
    """
    lines = reply.replace("\r\n", "\n").split("\n")
    names = _Names(frozenset(editable) | CONVENTIONAL, frozenset(editable))
    blocks: list[EditBlock] = []
    problems: list[str] = []
    notes: list[str] = []
    previous_path: str | None = None
    floor = 0  # the file name search never looks above the end of the previous block
    i = 0
    while i < len(lines):
        if not HEAD.match(lines[i]):
            i += 1
            continue
        number = len(blocks) + len(problems) + 1
        path = _file_name_above(lines, i, floor, names) or previous_path
        where = f"Block {number}{f' for {path}' if path else ''} (line {i + 1} of your reply)"
        body_end, problem = _block_end(lines, i)
        if problem is not None:
            problems.append(f"{where}: {problem}")
            previous_path = path
            i = body_end
            continue
        divider = next(k for k in range(i + 1, body_end) if DIVIDER.match(lines[k]))
        replace_end, problem = _replace_end(lines, divider, body_end)
        if problem is not None:
            problems.append(f"{where}: {problem}")
        elif path is None:
            problems.append(
                f"{where} names no file: put the file's path alone on the line just before "
                "the opening ``` fence."
            )
        else:
            block = EditBlock(
                path, _text(lines[i + 1 : divider]), _text(lines[divider + 1 : replace_end])
            )
            blocks.append(block)
            if replace_end < body_end:
                notes.append(f"{where}: {_stray_note(body_end - replace_end, block)}")
        previous_path = path or previous_path
        floor = body_end + 1
        i = body_end + 1
    return ParseResult(blocks, problems, notes)


@dataclass(frozen=True)
class _Names:
    """Which bare names (no suffix, no folder) are file names where the model wrote them."""

    on_name_line: frozenset[str]
    """On a line of its own above the fence: the editable files and the conventional names."""
    on_fence: frozenset[str]
    """After a fence's backticks, where a bare word is usually a language: the editable files."""


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


def _replace_end(lines: list[str], divider: int, tail: int) -> tuple[int, str | None]:
    """Where REPLACE ends once stray dividers before `>>>>>>> REPLACE` are cut off, or why not."""
    end = tail
    while end > divider + 1 and DIVIDER.match(lines[end - 1]):
        end -= 1
    if any(DIVIDER.match(lines[k]) for k in range(divider + 1, end)):
        return end, (
            "it has a second `=======` line with more lines after it, so it is unclear where "
            "REPLACE begins. A block has exactly one `=======` line, between SEARCH and "
            "REPLACE; to underline a heading inside REPLACE, use eight `=`."
        )
    return end, None


def _stray_note(count: int, block: EditBlock) -> str:
    """What was read into a block whose REPLACE ended in `count` stray divider lines."""
    if count == 1:
        dropped = "line just before `>>>>>>> REPLACE` was taken for a stray divider"
    else:
        dropped = f"lines ({count}) just before `>>>>>>> REPLACE` were taken for stray dividers"
    kept = block.replace.count("\n")
    it = "it" if count == 1 else "them"
    effect = (
        "so the block deletes its SEARCH lines"
        if kept == 0
        else f"so REPLACE keeps the {kept} line{'' if kept == 1 else 's'} written before {it}"
    )
    return (
        f"the `=======` {dropped} and not written into {block.path}, {effect}. A block has "
        "exactly one `=======` line; to delete lines, leave REPLACE empty. If the new text "
        "really ends with a line of `=` (a heading underline), write it with eight `=`."
    )


def _file_name_above(lines: list[str], head: int, floor: int, names: _Names) -> str | None:
    """The file name written in the few lines above a block's `<<<<<<< SEARCH`, if any."""
    for k in range(head - 1, max(floor, head - LOOKBACK) - 1, -1):
        fence = FENCE.match(lines[k])
        if fence:
            tag = fence.group(2).split(":", 1)[-1]
            name = _clean_name(tag, names.on_fence) if tag else None
            if name:
                return name
            continue
        if not lines[k].strip():
            continue
        return _clean_name(lines[k], names.on_name_line)
    return None


def _clean_name(line: str, bare: frozenset[str]) -> str | None:
    """`experiment.py` from forms like `**experiment.py**`, `# file: experiment.py`, `experiment.py:`.

    A name without suffix or folder counts only when it is in `bare`.
    """
    name = line.strip().strip("*`'\"").strip()
    name = re.sub(r"^(#+|//|--|[-+]|\d+[.)])\s+|^#+", "", name)
    name = re.sub(r"^(file(name)?|path)\s*:\s*", "", name, flags=re.IGNORECASE)
    name = name.strip("*`'\"").rstrip(":").strip("*`'\" ")
    # A path has no spaces and has a suffix or a folder; prose ("Here is the fix:") has neither.
    if not name or re.search(r"\s", name) or not (re.search(r"[./]", name) or name in bare):
        return None
    if re.fullmatch(r"[.\d]+|\.+", name):
        return None
    return name


def _text(lines: list[str]) -> str:
    """Join lines back into text, each ending in a newline ("" for no lines)."""
    return "".join(line + "\n" for line in lines)
