"""The bounded reflection loop: apply, feed back failures and lint errors, ask again, stop."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from agent.edits import EditPolicy, EditReport, converse

FIXTURES = Path(__file__).parent / "fixtures" / "edits"
EDITABLE = frozenset({"experiment.py", "notes.txt", "plot.py"})


def _block(path: str, search: str, replace: str) -> str:
    return f"{path}\n```python\n<<<<<<< SEARCH\n{search}=======\n{replace}>>>>>>> REPLACE\n```\n"


class Model:
    """Answers `ask` from a script of replies and remembers what it was told."""

    def __init__(self, *replies: str | None) -> None:
        self.replies = list(replies)
        self.told: list[str] = []

    def __call__(self, message: str) -> str | None:
        self.told.append(message)
        return self.replies.pop(0) if self.replies else None


@pytest.fixture
def policy(tmp_path: Path) -> EditPolicy:
    (tmp_path / "experiment.py").write_text("lr = 1e-3\nsteps = 1000\n")
    (tmp_path / "notes.txt").write_text("# Notes\n")
    return EditPolicy(tmp_path, EDITABLE, ("harness/*",))


def test_clean_reply_is_ok_and_reported_once_for_commit(policy: EditPolicy) -> None:
    commits: list[EditReport] = []
    reply = _block("experiment.py", "lr = 1e-3\n", "lr = 3e-4\n")
    session = converse(reply, Model(), policy, on_applied=commits.append)
    assert session.ok and session.problem is None
    assert session.changed_files == ["experiment.py"]
    assert [r.changed_files for r in commits] == [["experiment.py"]]
    assert session.replies == [reply] and session.final_reply == reply and session.messages == []


def test_failed_block_is_fed_back_and_the_fix_applied(policy: EditPolicy) -> None:
    first = _block("experiment.py", "lr = 1e-3\n", "lr = 3e-4\n") + _block(
        "experiment.py", "steps = 100\n", "steps = 10\n"
    )
    fix = _block("experiment.py", "steps = 1000\n", "steps = 10\n")
    model = Model(fix)
    commits: list[EditReport] = []
    session = converse(first, model, policy, on_applied=commits.append)
    assert session.ok
    (told,) = model.told
    assert "1 of 2 SEARCH/REPLACE blocks were applied" in told
    assert "Do not re-send the blocks that were applied" in told
    assert "2 | steps = 1000" in told
    assert (policy.root / "experiment.py").read_text() == "lr = 3e-4\nsteps = 10\n"
    assert len(commits) == 2  # one commit per reply that changed files


def test_reflection_is_bounded(policy: EditPolicy) -> None:
    wrong = _block("experiment.py", "steps = 100\n", "steps = 10\n")
    model = Model(wrong, wrong, wrong, wrong, wrong)
    session = converse(wrong, model, policy, max_reflections=3)
    assert len(model.told) == 3 and len(session.replies) == 4 and len(session.reports) == 4
    assert not session.ok
    assert session.problem == "1 block(s) failed to match in experiment.py (after 3 reflections)"
    assert session.changed_files == []


def test_no_change_reply_is_reported(policy: EditPolicy) -> None:
    model = Model("I think the code is fine as it is.", None)
    session = converse("Let's run it again.", model, policy)
    assert not session.ok
    assert "did not change any file" in model.told[0]
    assert session.problem == "the reply proposed no change (no further reply could be asked for)"


def test_identical_replacement_counts_as_no_change(policy: EditPolicy) -> None:
    reply = _block("experiment.py", "lr = 1e-3\n", "lr = 1e-3\n")
    session = converse(reply, Model(None), policy)
    assert not session.ok and "no change" in (session.problem or "")


def test_reply_without_blocks_is_fine_when_no_change_is_required(policy: EditPolicy) -> None:
    model = Model()
    session = converse("ALL_COMPLETED", model, policy, require_change=False)
    assert session.ok and model.told == [] and session.final_reply == "ALL_COMPLETED"


def test_lint_error_is_fed_back_before_anything_runs(policy: EditPolicy) -> None:
    broken = _block("experiment.py", "steps = 1000\n", "steps = n_steps\n")
    fixed = _block("experiment.py", "steps = n_steps\n", "n_steps = 1000\nsteps = n_steps\n")
    model = Model(fixed)
    session = converse(broken, model, policy)
    assert session.ok
    assert "experiment.py:2:9: F821 undefined name 'n_steps'" in model.told[0]


def test_lint_can_be_turned_off(policy: EditPolicy) -> None:
    broken = _block("experiment.py", "steps = 1000\n", "steps = n_steps\n")
    assert converse(broken, Model(), policy, lint_python=False).ok


def test_lint_errors_left_at_the_end_are_the_problem(policy: EditPolicy) -> None:
    broken = _block("experiment.py", "steps = 1000\n", "steps = n_steps\n")
    session = converse(broken, Model(None), policy)
    assert session.problem == (
        "lint errors remain (experiment.py:2: undefined name 'n_steps') "
        "(no further reply could be asked for)"
    )
    assert session.changed_files == ["experiment.py"]  # the edit stays applied and committed


def test_refused_block_is_fed_back(policy: EditPolicy) -> None:
    model = Model(_block("notes.txt", "# Notes\n", "# Notes\nRun 1.\n"))
    session = converse(_block("harness/gates.py", "", "LIMIT = 1\n"), model, policy)
    assert "trusted harness" in model.told[0]
    assert session.ok and session.changed_files == ["notes.txt"]


def test_reply_with_no_blocks_after_a_failure_leaves_it_unresolved(policy: EditPolicy) -> None:
    wrong = _block("experiment.py", "steps = 100\n", "steps = 10\n")
    model = Model("Sorry, I cannot find those lines.", None)
    session = converse(wrong, model, policy)
    assert "no SEARCH/REPLACE blocks, so these are still not applied" in model.told[1]
    assert not session.ok


def test_malformed_block_is_fed_back(policy: EditPolicy) -> None:
    broken = "experiment.py\n```\n<<<<<<< SEARCH\nlr = 1e-3\n>>>>>>> REPLACE\n```\n"
    model = Model(_block("experiment.py", "lr = 1e-3\n", "lr = 2e-3\n"))
    session = converse(broken, model, policy)
    assert "could not be read" in model.told[0] and "divider" in model.told[0]
    assert session.ok


def test_seed_002_first_replies_replayed(tmp_path: Path) -> None:
    """Seed 002's first edit: 10 blocks (one aider rejected for a blank line), then lint, then fixes."""
    shutil.copy(FIXTURES / "seed002_experiment_excerpt.py.txt", tmp_path / "experiment.py")
    policy = EditPolicy(tmp_path, EDITABLE, ("harness/*",))
    model = Model((FIXTURES / "seed002_reply03_lint_fix_trailing_spaces.txt").read_text())
    commits: list[EditReport] = []
    first = (FIXTURES / "seed002_reply01_ten_blocks.txt").read_text()
    session = converse(first, model, policy, on_applied=commits.append)
    assert session.ok
    kinds = [a.kind for a in session.reports[0].applied]
    assert kinds == ["exact"] * 5 + ["whitespace"] + ["exact"] * 4
    # aider needed two reflections here (the blank line, then lint); one lint round suffices.
    (told,) = model.told
    assert "F821 undefined name 'CustomTrainer'" in told
    assert [a.kind for a in session.reports[1].applied] == ["whitespace"]
    assert len(commits) == 2
    for name in ("seed002_reply04_encode_fix.txt", "seed002_reply05_decode_fix.txt"):
        later = converse((FIXTURES / name).read_text(), Model(), policy)
        assert later.ok, later.problem
    code = (tmp_path / "experiment.py").read_text()
    assert "class OrthogonalSAE(nn.Module):" in code and "CustomSAE(" not in code
    assert "avg_bias = self.b_dec.mean(dim=0)  # [d_in]" in code
    compile(code, "experiment.py", "exec")


def test_a_stray_divider_is_applied_without_it_and_the_session_says_it_was_repaired(
        policy: EditPolicy) -> None:
    """A recorded-style reply with `=======` right before `>>>>>>> REPLACE`: the file gets
    the REPLACE lines only, and the session carries the repair (never a silent clean edit)."""
    (policy.root / "notes.txt").write_text("# Notes\n\nRun 1: pending.\n")
    reply = ("notes.txt\n```\n<<<<<<< SEARCH\nRun 1: pending.\n=======\nRun 1: lowers the loss.\n"
             "=======\n>>>>>>> REPLACE\n```\n")
    reports: list[tuple[EditReport, list[str]]] = []
    session = converse(reply, Model(), policy, on_report=lambda r, notes: reports.append((r, notes)))
    assert (policy.root / "notes.txt").read_text() == "# Notes\n\nRun 1: lowers the loss.\n"
    assert session.ok and session.changed_files == ["notes.txt"]
    assert len(session.repairs) == 1 and "=======" in session.repairs[0]
    assert [notes for _, notes in reports] == [session.repairs]


def test_a_repair_note_goes_to_the_model_with_feedback_it_gets_anyway(policy: EditPolicy) -> None:
    reply = ("notes.txt\n```\n<<<<<<< SEARCH\n# Notes\n=======\n# Notes v2\n=======\n>>>>>>> REPLACE\n```\n"
             + _block("experiment.py", "no such line\n", "x = 1\n"))
    model = Model(_block("experiment.py", "lr = 1e-3\n", "lr = 2e-3\n"))
    session = converse(reply, model, policy)
    assert session.ok and len(model.told) == 1
    told = model.told[0]
    assert "needed a repair" in told and "no such line" in told  # the repair and the miss, together
    assert "=======" not in (policy.root / "notes.txt").read_text()
