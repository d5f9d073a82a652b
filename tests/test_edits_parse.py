"""Parsing SEARCH/REPLACE blocks: on every reply of seed 002, and on the forms models send."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.edits import EditBlock, parse
from tests.conftest import SEEDS

FIXTURES = Path(__file__).parent / "fixtures" / "edits"
E, N, P, T = "experiment.py", "notes.txt", "plot.py", "latex/template.tex"

# Seed 002, reply by reply: (first line of the reply in the transcript, the files its blocks
# name in order). Established without the parser: the transcript was cut into replies by an awk
# script (the same rules as `seed_replies` below), `<<<<<<< SEARCH` lines were counted per reply
# and each file name read from the line two above its marker; 51 blocks in 32 replies (57
# markers in the file, 6 of them in aider's echo of failed blocks), 32 `> Tokens:` lines.
SEED_002 = [
    (35, [E] * 10),
    (248, [E]),
    (314, [E]),
    (354, [E]),
    (410, [E]),
    (455, [N, E]),
    (556, [N, E]),
    (686, [N, E]),
    (795, [N]),
    (881, [N]),
    (986, [N, E, E]),
    (1075, [N, E]),
    (1194, [N, E]),
    (1309, [N, E]),
    (1419, [N, E]),
    (1543, [N]),
    (1612, [P]),
    (1819, [P]),
    (1864, [N]),
    (1962, [T, T]),
    (2041, [T]),
    (2116, [T]),
    (2199, [T]),
    (2300, [T]),
    (2391, [T]),
    (2505, [T]),
    (2613, [T]),
    (2768, [T]),
    (2871, [T]),
    (3020, [T]),
    (3182, [T]),
    (3417, [T]),
]


def seed_replies(text: str) -> list[tuple[int, str]]:
    """The model's replies in an aider transcript, each with the line where it starts.

    `#### ` lines are the user's prompts. aider's own output starts with `> `; a message of
    several lines (a failed-match report with its echoed blocks, a command with two lines)
    carries the `> ` on its first line only and ends at the first line that ends in two
    spaces, which is how aider closes every message it writes to the transcript.
    """
    replies: list[tuple[int, str]] = []
    current: list[str] = []
    start, in_message = 0, False

    def flush() -> None:
        if any(line.strip() for line in current):
            replies.append((start, "\n".join(current)))
        current.clear()

    for number, line in enumerate(text.split("\n"), 1):
        if in_message:
            in_message = not (line.endswith("  ") and line.strip())
        elif line.startswith(("#### ", "# aider chat started")):
            flush()
        elif line.startswith("> ") or line == ">":
            flush()
            in_message = not line.endswith("  ")
        elif current or line.strip():
            start = start if current else number
            current.append(line)
    flush()
    return replies


def _seed_002() -> str:
    (path,) = SEEDS.glob("002_*.txt")
    return path.read_text(encoding="utf-8")


def test_every_seed_002_reply_parses_to_the_blocks_counted_independently() -> None:
    replies = seed_replies(_seed_002())
    found = [(start, [block.path for block in parse(reply).blocks]) for start, reply in replies]
    assert found == SEED_002
    assert all(not parse(reply).problems for _, reply in replies)
    assert sum(len(files) for _, files in SEED_002) == 51


def test_seed_block_text_is_kept_verbatim_including_trailing_spaces() -> None:
    reply = (FIXTURES / "seed002_reply03_lint_fix_trailing_spaces.txt").read_text()
    (block,) = parse(reply).blocks
    assert block == EditBlock(
        "experiment.py",
        "    # Initialize trainer  \n    trainer = CustomTrainer(\n",
        "    # Initialize trainer  \n    trainer = OrthogonalTrainer(\n",
    )


def test_block_without_its_own_file_name_reuses_the_previous_one() -> None:
    reply = (
        "notes.txt\n```\n<<<<<<< SEARCH\na\n=======\nb\n>>>>>>> REPLACE\n```\n\n"
        "```\n<<<<<<< SEARCH\nc\n=======\nd\n>>>>>>> REPLACE\n```\n"
        "<<<<<<< SEARCH\ne\n=======\nf\n>>>>>>> REPLACE\n"
    )
    assert [b.path for b in parse(reply).blocks] == ["notes.txt"] * 3


@pytest.mark.parametrize(
    "name_line",
    [
        "experiment.py",
        "`experiment.py`",
        "**experiment.py**",
        "**`experiment.py`**",
        "# file: experiment.py",
        "File: experiment.py",
        "### experiment.py",
        "experiment.py:",
        "  experiment.py  ",
        "- experiment.py",
        "1. experiment.py",
    ],
)
def test_file_name_forms_are_tolerated(name_line: str) -> None:
    reply = f"{name_line}\n```python\n<<<<<<< SEARCH\nx = 1\n=======\nx = 2\n>>>>>>> REPLACE\n```\n"
    assert parse(reply).blocks == [EditBlock("experiment.py", "x = 1\n", "x = 2\n")]


@pytest.mark.parametrize(
    "opening", ["```", "```python", "````python", "```python:experiment.py", "```experiment.py"]
)
def test_fences_with_or_without_a_language_tag(opening: str) -> None:
    name = "" if "experiment.py" in opening else "experiment.py\n"
    reply = f"{name}{opening}\n<<<<<<< SEARCH\nx = 1\n=======\nx = 2\n>>>>>>> REPLACE\n```\n"
    assert parse(reply).blocks == [EditBlock("experiment.py", "x = 1\n", "x = 2\n")]


def test_file_name_inside_the_fence_is_found() -> None:
    reply = "```python\n# file: plot.py\n<<<<<<< SEARCH\na\n=======\nb\n>>>>>>> REPLACE\n```\n"
    assert [b.path for b in parse(reply).blocks] == ["plot.py"]


def test_prose_line_is_not_taken_for_a_file_name() -> None:
    reply = "Here is the fix:\n```python\n<<<<<<< SEARCH\na\n=======\nb\n>>>>>>> REPLACE\n```\n"
    result = parse(reply)
    assert result.blocks == []
    assert "names no file" in result.problems[0]


def test_empty_search_and_empty_replace_are_kept() -> None:
    reply = (
        "plot.py\n```\n<<<<<<< SEARCH\n=======\nimport json\n>>>>>>> REPLACE\n```\n"
        "plot.py\n```\n<<<<<<< SEARCH\nold = 1\n=======\n>>>>>>> REPLACE\n```\n"
    )
    assert parse(reply).blocks == [
        EditBlock("plot.py", "", "import json\n"),
        EditBlock("plot.py", "old = 1\n", ""),
    ]


def test_divider_lines_inside_replace_are_content() -> None:
    reply = "notes.txt\n```\n<<<<<<< SEARCH\nTitle\n=======\nTitle\n=======\n>>>>>>> REPLACE\n```\n"
    assert parse(reply).blocks == [EditBlock("notes.txt", "Title\n", "Title\n=======\n")]


def test_windows_line_endings_are_read() -> None:
    reply = "a.py\r\n```\r\n<<<<<<< SEARCH\r\nx\r\n=======\r\ny\r\n>>>>>>> REPLACE\r\n```\r\n"
    assert parse(reply).blocks == [EditBlock("a.py", "x\n", "y\n")]


def test_malformed_blocks_become_problems_and_the_good_ones_survive() -> None:
    reply = (FIXTURES / "malformed_reply.txt").read_text()
    result = parse(reply)
    assert [(b.path, b.first_line) for b in result.blocks] == [
        ("experiment.py", "l1_penalty=0.04,"),
        ("notes.txt", "## Run 3"),
    ]
    assert len(result.problems) == 3
    assert "no `=======` divider" in result.problems[0]
    assert "`>>>>>>> REPLACE`" in result.problems[1]
    assert "never ends" in result.problems[2]


def test_reply_without_blocks_parses_to_nothing() -> None:
    assert parse("ALL_COMPLETED") == parse("") == parse("```bash\npython plot.py\n```")
    assert parse("ALL_COMPLETED").blocks == [] and parse("ALL_COMPLETED").problems == []


def test_indented_markers_are_read() -> None:
    reply = "- experiment.py\n  ```\n  <<<<<<< SEARCH\n  x = 1\n  =======\n  x = 2\n  >>>>>>> REPLACE\n  ```\n"
    assert parse(reply).blocks == [EditBlock("experiment.py", "  x = 1\n", "  x = 2\n")]
