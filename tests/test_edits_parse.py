"""Parsing SEARCH/REPLACE blocks: on every reply of seed 002, and on the forms models send."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.edits import EditBlock, parse
from agent.edits.feedback import repaired_blocks_message
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


def test_stray_divider_before_replace_marker_is_dropped_and_noted() -> None:
    result = parse((FIXTURES / "stray_divider_notes.txt").read_text())
    notes_block, experiment_block = result.blocks
    assert notes_block.path == "notes.txt"
    assert notes_block.replace.endswith(
        "The stronger penalty improved reconstruction without hurting model behavior "
        "preservation.\n"
    )
    assert "=======" not in notes_block.replace
    assert experiment_block == EditBlock(
        "experiment.py",
        "                 l1_penalty=0.04,\n",
        "                 l1_penalty=0.06,\n",
    )
    assert result.problems == []
    (note,) = result.notes
    assert note.startswith("Block 1 for notes.txt (line 5 of your reply): the `=======` line")
    assert "not written into notes.txt, so REPLACE keeps the 6 lines written before it" in note


def test_two_dividers_meaning_delete_leave_replace_empty() -> None:
    result = parse((FIXTURES / "stray_divider_twice_to_delete.txt").read_text())
    (block,) = result.blocks
    assert block.path == "experiment.py"
    assert block.search.startswith("        if step % 100 == 0 and step < self.warmup_steps:\n")
    assert block.replace == ""
    (note,) = result.notes
    assert "so the block deletes its SEARCH lines" in note


def test_stray_divider_in_latex_is_dropped_and_noted() -> None:
    result = parse((FIXTURES / "stray_divider_latex.txt").read_text())
    assert result.blocks == [
        EditBlock(
            "latex/template.tex",
            "\\title{TITLE HERE}\n",
            "\\title{Orthogonal Feature Learning for Knowledge Separation in Sparse Autoencoders}\n",
        )
    ]
    assert len(result.notes) == 1 and "latex/template.tex" in result.notes[0]


def test_divider_inside_replace_with_lines_after_it_is_a_problem() -> None:
    result = parse((FIXTURES / "divider_inside_replace_ambiguous.txt").read_text())
    assert result.blocks == [] and result.notes == []
    (problem,) = result.problems
    assert problem.startswith("Block 1 for notes.txt (line 5 of your reply): it has a second")
    assert "unclear where REPLACE begins" in problem


def test_markdown_underlines_of_five_and_nine_equals_inside_search_are_content() -> None:
    result = parse((FIXTURES / "heading_underlines_in_search.txt").read_text())
    assert result.problems == [] and result.notes == []
    (block,) = result.blocks
    assert block.search == (
        "Run 2\n=====\nStronger orthogonality penalty (ortho_penalty_max=0.3).\n\n"
        "Analysis\n=========\nPending.\n"
    )
    assert block.replace.startswith("Run 2: Stronger Orthogonality\n=========\n")
    assert "\nAnalysis\n=====\nRaising the penalty" in block.replace


@pytest.mark.parametrize("underline", ["=====", "======", "========", "=========", "  ======== "])
def test_underline_that_is_not_seven_equals_may_end_replace(underline: str) -> None:
    reply = (
        f"notes.txt\n```\n<<<<<<< SEARCH\nx\n=======\nTitle\n{underline}\n>>>>>>> REPLACE\n```\n"
    )
    result = parse(reply)
    assert result.blocks == [EditBlock("notes.txt", "x\n", f"Title\n{underline}\n")]
    assert result.notes == [] and result.problems == []


@pytest.mark.parametrize("divider", ["=====", "======", "========", "========="])
def test_only_seven_equals_divide_search_from_replace(divider: str) -> None:
    reply = f"notes.txt\n```\n<<<<<<< SEARCH\nx\n{divider}\ny\n>>>>>>> REPLACE\n```\n"
    result = parse(reply)
    assert result.blocks == []
    assert "no `=======` divider" in result.problems[0]


def test_seven_equals_with_trailing_spaces_still_divide() -> None:
    reply = "notes.txt\n```\n<<<<<<< SEARCH\nx\n=======  \ny\n>>>>>>> REPLACE\n```\n"
    assert parse(reply).blocks == [EditBlock("notes.txt", "x\n", "y\n")]


def test_repair_notes_are_worded_for_the_model() -> None:
    notes = parse((FIXTURES / "stray_divider_notes.txt").read_text()).notes
    text = repaired_blocks_message(notes)
    assert text.startswith("1 block needed a repair before it could be read:\n- Block 1")
    assert "Do not re-send a block because of this note" in text


def test_bare_file_name_line_is_read() -> None:
    result = parse((FIXTURES / "makefile_bare_name.txt").read_text())
    assert result.problems == []
    (block,) = result.blocks
    assert block.path == "Makefile"
    assert block.search == "plot: plot.py\n\tpython plot.py\n"


def test_bare_name_on_the_editable_list_is_read_on_its_own_line_or_after_the_fence() -> None:
    body = "<<<<<<< SEARCH\nx\n=======\ny\n>>>>>>> REPLACE\n```\n"
    on_line, in_fence = f"launch\n```bash\n{body}", f"```launch\n{body}"
    assert [b.path for b in parse(on_line, editable={"launch"}).blocks] == ["launch"]
    assert [b.path for b in parse(in_fence, editable={"launch"}).blocks] == ["launch"]
    assert parse(on_line).blocks == [] and "names no file" in parse(on_line).problems[0]


@pytest.mark.parametrize(
    "line", ["Changes:", "Update", "**Fix:**", "Python", "```makefile", "```Makefile"]
)
def test_one_word_prose_or_language_tag_is_not_taken_for_a_file_name(line: str) -> None:
    named = "notes.txt\n```\n<<<<<<< SEARCH\na\n=======\nb\n>>>>>>> REPLACE\n```\n\n"
    fence = "" if line.startswith("```") else "```\n"
    block = f"{line}\n{fence}<<<<<<< SEARCH\nc\n=======\nd\n>>>>>>> REPLACE\n```\n"
    alone = parse(block)
    assert alone.blocks == [] and "names no file" in alone.problems[0]
    assert [b.path for b in parse(named + block).blocks] == ["notes.txt", "notes.txt"]


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
