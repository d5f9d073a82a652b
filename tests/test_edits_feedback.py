"""Feedback for the model: what applied (named, not re-sent), what failed and why."""

from __future__ import annotations

from pathlib import Path

from agent.edits import EditBlock, EditPolicy, apply_blocks, feedback, no_change_message

RESEND = (
    "Do not re-send the blocks that were applied; send only corrected versions of the failed ones."
)


def _report(tmp_path: Path, blocks: list[EditBlock]):
    (tmp_path / "experiment.py").write_text("lr = 1e-3\nl1_penalty = 0.04\nsteps = 1000\n")
    return apply_blocks(blocks, EditPolicy(tmp_path, frozenset({"experiment.py", "notes.txt"})))


def test_feedback_names_applied_blocks_without_resending_them(tmp_path: Path) -> None:
    blocks = [
        EditBlock("experiment.py", "lr = 1e-3\n", "lr = 3e-4  # SECRET-REPLACE-TEXT\n"),
        EditBlock("experiment.py", "l1_penalty = 0.4\n", "l1_penalty = 0.06\n"),
    ]
    text = feedback(_report(tmp_path, blocks))
    assert "1 of 2 SEARCH/REPLACE blocks were applied:" in text
    assert "- experiment.py: `lr = 1e-3` (line 1)" in text
    applied_part = text.split("failed to match")[0]
    assert "SECRET-REPLACE-TEXT" not in applied_part
    assert RESEND in text


def test_feedback_shows_the_failed_block_and_the_closest_real_lines(tmp_path: Path) -> None:
    blocks = [EditBlock("experiment.py", "l1_penalty = 0.4\n", "l1_penalty = 0.06\n")]
    text = feedback(_report(tmp_path, blocks))
    assert "1 block failed to match:" in text
    assert (
        "## Failed block 1: experiment.py\nIts SEARCH section:\n```\nl1_penalty = 0.4\n```" in text
    )
    assert "Did you mean these lines of experiment.py?" in text
    assert "2 | l1_penalty = 0.04" in text
    assert "Send corrected versions of these blocks." in text


def test_feedback_says_why_a_block_was_refused(tmp_path: Path) -> None:
    text = feedback(_report(tmp_path, [EditBlock("/etc/passwd", "", "x\n")]))
    assert "1 block refused:" in text
    assert "- '/etc/passwd' is an absolute path" in text
    assert "Editable files: experiment.py, notes.txt." in text


def test_long_failed_search_is_echoed_only_in_part(tmp_path: Path) -> None:
    search = "".join(f"line {k}\n" for k in range(40))
    text = feedback(_report(tmp_path, [EditBlock("experiment.py", search, "x\n")]))
    assert "Its SEARCH section (40 lines) began:" in text
    assert "line 11\n" in text and "line 12\n" not in text


def test_no_change_message_explains_the_format() -> None:
    text = no_change_message()
    assert "did not change any file" in text
    assert "<<<<<<< SEARCH" in text and ">>>>>>> REPLACE" in text
