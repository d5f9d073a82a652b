"""Applying blocks inside a run directory: order, partial success, and what is refused."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from agent.edits import EditBlock, EditPolicy, apply_blocks, parse

FIXTURES = Path(__file__).parent / "fixtures" / "edits"
EDITABLE = frozenset({"experiment.py", "plot.py", "notes.txt", "latex/template.tex"})
PROTECTED = ("experiment/*", "harness/*", "run_*/*")


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    root = tmp_path / "run"
    root.mkdir()
    (root / "experiment.py").write_text("lr = 1e-3\nl1_penalty = 0.04\nsteps = 1000\n")
    (root / "notes.txt").write_text("# Title\n## Run 1\n")
    (root / ".git").mkdir()
    (root / ".git" / "config").write_text("[core]\n")
    (root / "harness").mkdir()
    (root / "harness" / "gates.py").write_text("LIMIT = 0.5\n")
    return root


def _policy(root: Path, editable: frozenset[str] = EDITABLE) -> EditPolicy:
    return EditPolicy(root, editable, PROTECTED)


def _tree_hashes(top: Path) -> dict[str, str]:
    """Every file and link under `top`, by relative path, with a hash of what it holds."""
    hashes = {}
    for folder, dirs, files in os.walk(top):
        for name in dirs + files:
            path = Path(folder) / name
            rel = str(path.relative_to(top))
            if path.is_symlink():
                hashes[rel] = "link->" + os.readlink(path)
            elif path.is_file():
                hashes[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    return hashes


def test_edit_outside_run_dir_is_refused(tmp_path: Path, run_dir: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("do not touch\n")
    (run_dir / "linked").symlink_to(outside)
    (run_dir / "exp_link.py").symlink_to(outside / "secret.txt")
    # Even listed as editable, none of these may be written.
    editable = EDITABLE | {"linked/secret.txt", "exp_link.py", ".git/config", "harness/gates.py"}
    targets = [
        str(outside / "secret.txt"),
        "../outside/secret.txt",
        "notes/../../outside/secret.txt",
        "linked/secret.txt",
        "exp_link.py",
        ".git/config",
        "harness/gates.py",
        "~/secret.txt",
        "C:/Windows/win.ini",
    ]
    reply = "".join(
        f"{target}\n```\n<<<<<<< SEARCH\n=======\npwned\n>>>>>>> REPLACE\n```\n"
        for target in targets
    )
    before = _tree_hashes(tmp_path)
    report = apply_blocks(parse(reply).blocks, _policy(run_dir, editable))
    assert _tree_hashes(tmp_path) == before
    assert len(report.refused) == len(targets)
    assert report.applied == [] and report.changed_files == []
    reasons = [refusal.reason for refusal in report.refused]
    assert "absolute path" in reasons[0]
    assert "leaves the run directory" in reasons[1] and "leaves the run directory" in reasons[2]
    assert "symbolic link" in reasons[3] and "outside the run directory" in reasons[3]
    assert "symbolic link" in reasons[4]
    assert ".git/" in reasons[5]
    assert "trusted harness" in reasons[6]
    assert all("Editable files: .git/config, exp_link.py, experiment.py" in r for r in reasons)


def test_non_editable_file_is_refused_with_the_editable_list(run_dir: Path) -> None:
    block = EditBlock("train.py", "", "print('hi')\n")
    report = apply_blocks([block], _policy(run_dir))
    (refusal,) = report.refused
    assert refusal.reason == (
        "train.py is not an editable file. Editable files: experiment.py, "
        "latex/template.tex, notes.txt, plot.py."
    )
    assert not (run_dir / "train.py").exists()


@pytest.mark.parametrize("path", ["run_1/final_info.json", "experiment/harness/metrics.py"])
def test_protected_results_and_harness_are_refused(run_dir: Path, path: str) -> None:
    report = apply_blocks([EditBlock(path, "", "{}\n")], _policy(run_dir, EDITABLE | {path}))
    assert "trusted harness" in report.refused[0].reason


def test_applied_blocks_are_kept_when_another_fails(run_dir: Path) -> None:
    blocks = [
        EditBlock("experiment.py", "lr = 1e-3\n", "lr = 3e-4\n"),
        EditBlock("experiment.py", "l1_penalty = 0.4\n", "l1_penalty = 0.06\n"),
        EditBlock("notes.txt", "## Run 1\n", "## Run 1\nBaseline.\n"),
        EditBlock("../x", "", "x\n"),
    ]
    report = apply_blocks(blocks, _policy(run_dir))
    assert [(a.path, a.kind) for a in report.applied] == [
        ("experiment.py", "exact"),
        ("notes.txt", "exact"),
    ]
    assert [f.block for f in report.failed] == [blocks[1]]
    assert "l1_penalty = 0.04" in report.failed[0].did_you_mean
    assert [r.block for r in report.refused] == [blocks[3]]
    assert report.changed_files == ["experiment.py", "notes.txt"]
    assert (run_dir / "experiment.py").read_text() == "lr = 3e-4\nl1_penalty = 0.04\nsteps = 1000\n"
    assert (run_dir / "notes.txt").read_text() == "# Title\n## Run 1\nBaseline.\n"


def test_blocks_apply_in_order_on_the_result_of_earlier_ones(run_dir: Path) -> None:
    blocks = [
        EditBlock("experiment.py", "lr = 1e-3\n", "lr = 5e-4\n"),
        EditBlock("experiment.py", "lr = 5e-4\n", "lr = 7e-4\n"),
    ]
    report = apply_blocks(blocks, _policy(run_dir))
    assert len(report.applied) == 2
    assert (run_dir / "experiment.py").read_text().startswith("lr = 7e-4\n")


def test_replacement_that_changes_nothing_is_not_a_change(run_dir: Path) -> None:
    before = (run_dir / "experiment.py").stat().st_mtime_ns
    report = apply_blocks(
        [EditBlock("experiment.py", "lr = 1e-3\n", "lr = 1e-3\n")], _policy(run_dir)
    )
    assert report.applied[0].changed is False
    assert report.changed_files == []
    assert (run_dir / "experiment.py").stat().st_mtime_ns == before


def test_edits_that_cancel_out_leave_the_file_unchanged(run_dir: Path) -> None:
    blocks = [
        EditBlock("experiment.py", "lr = 1e-3\n", "lr = 2e-3\n"),
        EditBlock("experiment.py", "lr = 2e-3\n", "lr = 1e-3\n"),
    ]
    assert apply_blocks(blocks, _policy(run_dir)).changed_files == []


def test_long_search_block_is_refused(run_dir: Path) -> None:
    # Seed 002, Run 3: a 19,922-character SEARCH (a results dict pasted back) that corrupted notes.
    reply = (FIXTURES / "seed002_reply10_long_search.txt").read_text()
    (block,) = parse(reply).blocks
    report = apply_blocks([block], _policy(run_dir))
    (refusal,) = report.refused
    assert "19,923 characters (limit 6,000)" in refusal.reason
    assert "Quote only the few lines around the change" in refusal.reason
    assert (run_dir / "notes.txt").read_text() == "# Title\n## Run 1\n"


def test_new_file_is_created_only_when_editable(run_dir: Path) -> None:
    blocks = [
        EditBlock("latex/template.tex", "", "\\title{T}\n"),
        EditBlock("helpers.py", "", "x = 1\n"),
    ]
    report = apply_blocks(blocks, _policy(run_dir))
    assert (run_dir / "latex" / "template.tex").read_text() == "\\title{T}\n"
    assert not (run_dir / "helpers.py").exists()
    assert report.changed_files == ["latex/template.tex"]
    assert "not an editable file" in report.refused[0].reason


def test_search_in_a_missing_file_fails_and_says_how_to_create_it(run_dir: Path) -> None:
    report = apply_blocks([EditBlock("plot.py", "import json\n", "import os\n")], _policy(run_dir))
    assert "does not exist yet" in report.failed[0].reason
    assert not (run_dir / "plot.py").exists()


def test_dot_slash_paths_are_normalised(run_dir: Path) -> None:
    report = apply_blocks(
        [EditBlock("./experiment.py", "steps = 1000\n", "steps = 10\n")], _policy(run_dir)
    )
    assert report.changed_files == ["experiment.py"]


def test_seed_reply_with_a_stray_indent_applies_every_block(run_dir: Path) -> None:
    # Seed 002, Run 4: notes.txt exact, " sparsity_penalty=0.06," one space instead of 17.
    (run_dir / "experiment.py").write_text(
        "class OrthogonalTrainer:\n"
        "    def __init__(self,\n"
        "                 sparsity_penalty=0.06,\n"
        "                 ortho_penalty_max=0.3,\n"
        "    ):\n"
        "        pass\n"
    )
    (run_dir / "notes.txt").write_text(
        "## Run 2: Increased Orthogonality\n"
        "Adjusting orthogonality penalty to 0.3 to promote stronger feature disentanglement "
        "while maintaining the successful aspects of Run 1.\n"
    )
    reply = (FIXTURES / "seed002_reply11_shifted_indent.txt").read_text()
    report = apply_blocks(parse(reply).blocks, _policy(run_dir))
    assert [a.kind for a in report.applied] == ["exact", "indent", "exact"]
    code = (run_dir / "experiment.py").read_text()
    assert "\n                 sparsity_penalty=0.06,  # Maintaining optimal sparsity" in code
    assert "\n                 ortho_penalty_max=0.5,  # Increased orthogonality penalty\n" in code
    assert "## Run 3: Optimized Sparsity" in (run_dir / "notes.txt").read_text()


def test_writes_leave_no_temporary_files_and_keep_permissions(run_dir: Path) -> None:
    (run_dir / "experiment.py").chmod(0o755)
    apply_blocks([EditBlock("experiment.py", "steps = 1000\n", "steps = 10\n")], _policy(run_dir))
    assert sorted(p.name for p in run_dir.iterdir()) == [
        ".git",
        "experiment.py",
        "harness",
        "notes.txt",
    ]
    assert (run_dir / "experiment.py").stat().st_mode & 0o777 == 0o755


def test_windows_line_endings_are_kept(run_dir: Path) -> None:
    (run_dir / "notes.txt").write_bytes(b"# Title\r\n## Run 1\r\n")
    apply_blocks([EditBlock("notes.txt", "## Run 1\n", "## Run 1\nBaseline.\n")], _policy(run_dir))
    assert (run_dir / "notes.txt").read_bytes() == b"# Title\r\n## Run 1\r\nBaseline.\r\n"


def test_folders_and_binary_files_are_refused(run_dir: Path) -> None:
    (run_dir / "latex" / "template.tex").mkdir(parents=True)
    (run_dir / "plot.py").write_bytes(b"\xff\xfe\x00binary")
    blocks = [EditBlock("latex/template.tex", "", "x\n"), EditBlock("plot.py", "", "x\n")]
    report = apply_blocks(blocks, _policy(run_dir))
    assert [r.reason for r in report.refused] == [
        "latex/template.tex is not a regular file.",
        "plot.py is not UTF-8 text; it is never edited.",
    ]
    assert (run_dir / "plot.py").read_bytes() == b"\xff\xfe\x00binary"


def test_stray_divider_is_never_written_into_notes_or_latex(run_dir: Path) -> None:
    (run_dir / "notes.txt").write_text(
        "# Title: Orthogonal SAE\n## Run 1: Adaptive Orthogonality\n"
        "Results: explained variance 0.9297, cosine similarity 0.977, KL div score 0.9962.\n"
    )
    (run_dir / "latex").mkdir()
    (run_dir / "latex" / "template.tex").write_text("\\title{TITLE HERE}\n\\begin{document}\n")
    (run_dir / "experiment.py").write_text(
        "    trainer = Trainer(\n                 l1_penalty=0.04,\n"
    )
    reply = (FIXTURES / "stray_divider_notes.txt").read_text()
    reply += (FIXTURES / "stray_divider_latex.txt").read_text()
    report = apply_blocks(parse(reply).blocks, _policy(run_dir))
    assert report.clean and len(report.applied) == 3
    notes = (run_dir / "notes.txt").read_text()
    assert "=======" not in notes
    assert notes.endswith(
        "## Run 2: Stronger Orthogonality (ortho_penalty_max=0.3)\n"
        "Results: explained variance 0.9375, cosine similarity 0.980, KL div score 0.9966.\n"
        "The stronger penalty improved reconstruction without hurting model behavior "
        "preservation.\n"
    )
    assert (run_dir / "latex" / "template.tex").read_text() == (
        "\\title{Orthogonal Feature Learning for Knowledge Separation in Sparse Autoencoders}\n"
        "\\begin{document}\n"
    )


def test_two_dividers_meaning_delete_remove_the_lines(run_dir: Path) -> None:
    (run_dir / "experiment.py").write_text(
        "    def update(self, step, activations):\n"
        "        if step % 100 == 0 and step < self.warmup_steps:\n"
        "            print(f\"warmup step {step}: lr={self.optimizer.param_groups[0]['lr']:.2e}\")\n"
        "        self.optimizer.zero_grad()\n"
    )
    reply = (FIXTURES / "stray_divider_twice_to_delete.txt").read_text()
    report = apply_blocks(parse(reply).blocks, _policy(run_dir))
    assert report.clean
    assert (run_dir / "experiment.py").read_text() == (
        "    def update(self, step, activations):\n        self.optimizer.zero_grad()\n"
    )


def test_markdown_underlines_inside_search_match_and_are_kept(run_dir: Path) -> None:
    (run_dir / "notes.txt").write_text(
        "Orthogonal SAE\n==============\n\nRun 2\n=====\n"
        "Stronger orthogonality penalty (ortho_penalty_max=0.3).\n\nAnalysis\n=========\nPending.\n"
    )
    reply = (FIXTURES / "heading_underlines_in_search.txt").read_text()
    report = apply_blocks(parse(reply).blocks, _policy(run_dir))
    assert report.clean and [a.kind for a in report.applied] == ["exact"]
    assert (run_dir / "notes.txt").read_text() == (
        "Orthogonal SAE\n==============\n\nRun 2: Stronger Orthogonality\n=========\n"
        "Stronger orthogonality penalty (ortho_penalty_max=0.3).\n"
        "Results: explained variance 0.9375, cosine similarity 0.980, KL div score 0.9966.\n\n"
        "Analysis\n=====\n"
        "Raising the penalty helped reconstruction and kept model behavior preservation at 0.9966.\n"
    )


def test_bare_makefile_on_the_editable_list_is_edited(run_dir: Path) -> None:
    (run_dir / "Makefile").write_text("all: plot\n\nplot: plot.py\n\tpython plot.py\n")
    reply = (FIXTURES / "makefile_bare_name.txt").read_text()
    policy = _policy(run_dir, EDITABLE | {"Makefile"})
    report = apply_blocks(parse(reply, policy.editable).blocks, policy)
    assert report.clean and report.changed_files == ["Makefile"]
    assert (run_dir / "Makefile").read_text() == (
        "all: plot\n\nplot: plot.py $(wildcard run_*/final_info.json)\n\tpython plot.py\n"
    )


@pytest.mark.parametrize("search, replace", [
    ("- final_loss: 0.650\n", "- final_loss: 0.990\n"),  # a number of the record
    ("## Run 1\nRecorded by the orchestrator.\n- final_loss: 0.650\n", ""),  # the whole section gone
    ("Recorded by the orchestrator.\n", "Recorded by the orchestrator.\nAlso: a record loss.\n"),  # inserted into it
])
def test_a_block_changing_a_kept_passage_is_refused_and_the_file_untouched(run_dir: Path, search: str,
                                                                           replace: str) -> None:
    record = "## Run 1\nRecorded by the orchestrator.\n- final_loss: 0.650\n"
    (run_dir / "notes.txt").write_text("# Notes\n" + record + "\nMy analysis.\n")
    policy = EditPolicy(run_dir, EDITABLE, PROTECTED, kept=(("notes.txt", record, "the record of run 1"),))
    before = (run_dir / "notes.txt").read_text()
    report = apply_blocks([EditBlock("notes.txt", search, replace),
                           EditBlock("notes.txt", "My analysis.\n", "My analysis, revised.\n")], policy)
    assert [r.reason.split(" in ")[0] for r in report.refused] == ["it changes the record of run 1"]
    assert "cannot be edited" in report.refused[0].reason
    assert (run_dir / "notes.txt").read_text() == before.replace("My analysis.", "My analysis, revised.")
