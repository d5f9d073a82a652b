"""The run directory: a copy of the template with its own git repository on `main`, usable on a
machine with no git identity, with checkpoints kept out of history and every path confined."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest

from agent import workspace
from agent.errors import StoppedResumable, UsageError
from agent.workspace import PathOutsideRunDir, Workspace

TOY = Path(__file__).parent / "fixtures" / "templates" / "toy_template"
IDEA = json.loads((TOY / "ideas" / "toy_idea.json").read_text(encoding="utf-8"))


@pytest.fixture(autouse=True)
def no_git_identity(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """A fresh machine: empty HOME, no global or system git config, no identity variables."""
    home = tmp_path_factory.mktemp("empty_home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", "/dev/null")
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    for name in ("GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL",
                 "EMAIL", "GIT_DIR", "GIT_WORK_TREE"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    return Workspace.create(tmp_path / "runs", "toy_idea", TOY, IDEA,
                            extra_files={"preset.json": '{"preset": "tiny"}\n'})


def _git(ws: Workspace, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=ws.root, capture_output=True, text=True, check=True).stdout


def _template_files() -> dict[str, str]:
    return {str(p.relative_to(TOY)): p.read_text(encoding="utf-8") for p in TOY.rglob("*")
            if p.is_file() and "ideas" not in p.relative_to(TOY).parts}


# --- creation --------------------------------------------------------------------------------

def test_environment_really_has_no_global_git_identity() -> None:
    probe = subprocess.run(["git", "config", "--global", "user.email"], capture_output=True, text=True)
    assert probe.returncode != 0 and not probe.stdout.strip()


def test_run_directory_is_created_from_the_template_as_its_own_repo_on_main(ws: Workspace, tmp_path: Path) -> None:
    assert ws.root.parent == (tmp_path / "runs").resolve()
    assert re.fullmatch(r"\d{8}_\d{6}_toy_idea", ws.root.name)
    assert (ws.root / ".git").is_dir(), "the run directory has its own repository"
    assert ws.repo.active_branch.name == "main"
    assert _git(ws, "rev-parse", "--show-toplevel").strip() == str(ws.root)
    for rel, text in _template_files().items():
        assert (ws.root / rel).read_text(encoding="utf-8") == text
    assert not (ws.root / "ideas").exists(), "other ideas are not copied into the run"
    assert not ws.is_dirty()


def test_first_commit_holds_the_template_as_copied_plus_idea_json(ws: Workspace) -> None:
    history = ws.history()
    assert len(history) == 1
    first = history[0]
    committed = set(_git(ws, "ls-tree", "-r", "--name-only", first.sha).split())
    assert set(_template_files()) <= committed
    assert {"idea.json", ".gitignore", "preset.json"} <= committed
    for rel, text in _template_files().items():
        assert ws.file_at(first.sha, rel) == text.rstrip("\n")
    assert json.loads(ws.file_at(first.sha, "idea.json")) == IDEA
    assert "toy_template" in first.message and "toy_idea" in first.message


def test_commits_are_made_by_the_agent_identity(ws: Workspace) -> None:
    author = _git(ws, "log", "-1", "--format=%an <%ae>|%cn <%ce>").strip()
    assert author == "trusted-scientist <agent@trusted-scientist.invalid>|" \
                     "trusted-scientist <agent@trusted-scientist.invalid>"


def test_two_launches_in_the_same_second_get_distinct_directories(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(workspace, "time", SimpleNamespace(strftime=lambda fmt: "20261121_120000"))
    a = Workspace.create(tmp_path / "runs", "toy_idea", TOY, IDEA)
    b = Workspace.create(tmp_path / "runs", "toy_idea", TOY, IDEA)
    assert (a.root.name, b.root.name) == ("20261121_120000_toy_idea", "20261121_120000_toy_idea_2")
    assert json.loads((b.root / "idea.json").read_text()) == IDEA


def test_gitignore_keeps_checkpoints_caches_and_the_journal_out(ws: Workspace) -> None:
    ignored = ["run_1/model.pt", "run_1/sae.safetensors", "cache/acts.npy", ".cache/tok/x.json",
               "__pycache__/experiment.cpython-311.pyc", "journal.jsonl"]
    kept = ["run_1/final_info.json", "run_1/stdout.txt"]
    for rel in ignored + kept:
        (ws.root / rel).parent.mkdir(parents=True, exist_ok=True)
        (ws.root / rel).write_text("x", encoding="utf-8")
    sha = ws.commit(["."], "experiment: run 1 results")
    assert sha is not None
    tracked = set(_git(ws, "ls-files").split())
    assert set(kept) <= tracked
    assert not set(ignored) & tracked, f"ignored artifacts were committed: {set(ignored) & tracked}"


# --- commits ---------------------------------------------------------------------------------

def test_commit_returns_the_sha_or_none_when_nothing_changed(ws: Workspace) -> None:
    (ws.root / "notes.txt").write_text("tried momentum 0.9\n", encoding="utf-8")
    sha = ws.commit(["notes.txt"], "notes: run 1")
    assert sha is not None and re.fullmatch(r"[0-9a-f]{40}", sha)
    assert sha == ws.head()
    assert ws.commit(["notes.txt"], "notes: again") is None
    assert ws.head() == sha, "no empty commit was made"


def test_commit_stages_only_the_named_paths(ws: Workspace) -> None:
    (ws.root / "notes.txt").write_text("a\n", encoding="utf-8")
    (ws.root / "plot.py").write_text("print('changed')\n", encoding="utf-8")
    sha = ws.commit(["notes.txt"], "notes only")
    assert ws.history()[-1].files == ("notes.txt",)
    assert sha is not None and ws.is_dirty(), "plot.py stays uncommitted"


def test_commit_records_deletions(ws: Workspace) -> None:
    (ws.root / "plot.py").unlink()
    sha = ws.commit(["plot.py"], "remove plot")
    assert sha is not None
    assert "plot.py" not in _git(ws, "ls-files").split()


def test_commit_of_a_path_that_never_existed_changes_nothing(ws: Workspace) -> None:
    head = ws.head()
    assert ws.commit(["run_7"], "nothing there") is None
    assert ws.head() == head


def test_diff_shows_the_patch_a_commit_introduced(ws: Workspace) -> None:
    path = ws.root / "experiment.py"
    path.write_text(path.read_text().replace("momentum: float = 0.0", "momentum: float = 0.9"))
    sha = ws.commit(["experiment.py"], "experiment: add momentum")
    assert sha is not None
    patch = ws.diff(sha)
    assert "-    momentum: float = 0.0" in patch
    assert "+    momentum: float = 0.9" in patch
    assert "notes.txt" not in patch


def test_history_is_oldest_first_with_messages_and_files(ws: Workspace) -> None:
    (ws.root / "notes.txt").write_text("one\n")
    a = ws.commit(["notes.txt"], "notes: one")
    (ws.root / "plot.py").write_text("print(2)\n")
    b = ws.commit(["plot.py"], "plot: two")
    history = ws.history()
    assert [c.sha for c in history[1:]] == [a, b]
    assert [c.message for c in history[1:]] == ["notes: one", "plot: two"]
    assert history[2].files == ("plot.py",)
    assert history[0].timestamp <= history[1].timestamp <= history[2].timestamp
    assert ws.is_linear()


# --- paths -----------------------------------------------------------------------------------

@pytest.mark.parametrize("rel", ["/etc/passwd", "../outside.txt", "run_0/../../outside.txt",
                                 "latex/../notes.txt"])
def test_resolve_refuses_absolute_and_dotdot_paths(ws: Workspace, rel: str) -> None:
    with pytest.raises(PathOutsideRunDir):
        ws.resolve(rel)


def test_resolve_refuses_a_symlink_leading_outside(ws: Workspace, tmp_path: Path) -> None:
    outside = tmp_path / "secret"
    outside.mkdir()
    (outside / "key.txt").write_text("k")
    os.symlink(outside, ws.root / "data")
    os.symlink(outside / "key.txt", ws.root / "key.txt")
    for rel in ("data", "data/key.txt", "key.txt"):
        with pytest.raises(PathOutsideRunDir) as info:
            ws.resolve(rel)
        # The orchestrator's own paths are fixed names: a link out of the directory was made
        # by something else (an experiment), so this stops resumably (exit 4), not as bad input.
        assert isinstance(info.value, StoppedResumable) and info.value.exit_code == 4
        assert not isinstance(info.value, UsageError)
    assert (outside / "key.txt").read_text() == "k"


def test_resolve_accepts_paths_and_symlinks_inside(ws: Workspace) -> None:
    os.symlink(ws.root / "latex", ws.root / "tex")
    assert ws.resolve("notes.txt") == ws.root / "notes.txt"
    assert ws.resolve("run_3/final_info.json") == ws.root / "run_3" / "final_info.json"
    assert ws.resolve("tex/template.tex") == ws.root / "latex" / "template.tex"


# --- restoring -------------------------------------------------------------------------------

def test_restore_clean_restores_the_last_commit_but_keeps_ignored_files(ws: Workspace) -> None:
    original = (ws.root / "experiment.py").read_text()
    (ws.root / "experiment.py").write_text("half-applied edit\n")
    (ws.root / "notes.txt").unlink()
    (ws.root / "scratch.py").write_text("x = 1\n")
    (ws.root / "run_2").mkdir()
    (ws.root / "run_2" / "final_info.json").write_text("{}")
    (ws.root / "run_2" / "model.pt").write_bytes(b"\0" * 16)  # ignored: a checkpoint
    (ws.root / "journal.jsonl").write_text('{"v": 1}\n')  # ignored: the journal
    assert ws.is_dirty()

    lost = ws.restore_clean()

    assert {"experiment.py", "notes.txt", "scratch.py", "run_2/final_info.json"} <= set(lost)
    assert (ws.root / "experiment.py").read_text() == original
    assert (ws.root / "notes.txt").exists()
    assert not (ws.root / "scratch.py").exists()
    assert not (ws.root / "run_2" / "final_info.json").exists()
    assert (ws.root / "journal.jsonl").read_text() == '{"v": 1}\n'
    assert (ws.root / "run_2" / "model.pt").exists()
    assert not ws.is_dirty()


def test_restore_clean_on_a_clean_tree_loses_nothing(ws: Workspace) -> None:
    head = ws.head()
    assert ws.restore_clean() == []
    assert ws.head() == head
