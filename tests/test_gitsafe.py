"""git never runs what a run wrote: a nested repository with an fsmonitor command, hooks or
git attributes left by an experiment is deleted before the orchestrator's git reads the tree,
every git it starts ignores such settings anyway, and the results are committed as files."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from agent import gitsafe
from agent.journal import read
from agent.workspace import Workspace
from tests.e2e_helpers import TOY_TEMPLATES, block, cli, only_run_dir, write_session

TOY = TOY_TEMPLATES / "toy_template"
IDEA = json.loads((TOY / "ideas" / "toy_idea.json").read_text(encoding="utf-8"))
IDENTITY = ["-c", "user.name=model", "-c", "user.email=model@example.invalid"]


@pytest.fixture(autouse=True)
def fresh_machine(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path_factory.mktemp("home")))
    for name in ("GIT_DIR", "GIT_WORK_TREE", "GIT_CONFIG_GLOBAL", "GIT_CONFIG_NOSYSTEM"):
        monkeypatch.delenv(name, raising=False)


def plant_repository(folder: Path, marker: Path) -> None:
    """What a hostile experiment leaves in its output folder: a repository of its own, with a
    commit (so git would store it as a link, not its files), an fsmonitor command, a hook."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "final_info.json").write_text('{"metrics": {"final_loss": 0.5}}\n')
    git = ["git", "-C", str(folder)]
    subprocess.run([*git, "init", "-q", "-b", "main"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, *IDENTITY, "commit", "-q", "-m", "mine"], check=True)
    subprocess.run([*git, "config", "core.fsmonitor", f"touch {marker}; echo"], check=True)
    hook = folder / ".git" / "hooks" / "pre-commit"
    hook.write_text(f"#!/bin/sh\ntouch {marker}\n")
    hook.chmod(0o755)


def test_the_attack_is_real_with_plain_git(tmp_path: Path) -> None:
    """Control: an outer repository's ordinary `git add -A` and `git status` run the nested
    repository's fsmonitor command, and store the results as a link without their files."""
    outer, marker = tmp_path / "outer", tmp_path / "ran"
    subprocess.run(["git", "init", "-q", "-b", "main", str(outer)], check=True)
    plant_repository(outer / "run_1", marker)
    subprocess.run(["git", "-C", str(outer), "add", "-A"], capture_output=True, check=True)
    subprocess.run(["git", "-C", str(outer), "status"], capture_output=True, check=True)
    assert marker.exists()
    staged = subprocess.run(["git", "-C", str(outer), "ls-files", "-s"], capture_output=True,
                            text=True, check=True).stdout
    assert staged.startswith("160000"), staged  # a gitlink: the results are not in the history


def test_a_planted_repository_runs_nothing_and_its_files_are_committed(tmp_path: Path) -> None:
    ws = Workspace.create(tmp_path / "runs", "toy_idea", TOY, IDEA)
    refused: list[list[str]] = []
    ws.report_refused_to(refused.append)
    marker = tmp_path / "ran"
    plant_repository(ws.root / "run_1" / "seed_0", marker)
    (ws.root / "run_1" / ".gitmodules").write_text('[submodule "x"]\n\tpath = seed_0\n\turl = ./x\n')
    assert ws.commit(["run_1"], "experiment: run 1 results") is not None
    ws.is_dirty()
    assert not marker.exists(), "git ran the planted command"
    assert refused == [["run_1/.gitmodules", "run_1/seed_0/.git"]]
    tree = subprocess.run(["git", "ls-tree", "-r", "HEAD", "run_1"], cwd=ws.root, capture_output=True,
                          text=True, check=True).stdout
    assert "blob" in tree and "run_1/seed_0/final_info.json" in tree and "commit" not in tree


@pytest.mark.parametrize("attributes", [
    "* working-tree-encoding=UTF-16\n",  # git add fails: the results are not UTF-16
    "* filter=planted\n[attr]x text eol=crlf\n",
])
def test_git_attributes_a_run_wrote_cannot_stop_its_commit(tmp_path: Path, attributes: str) -> None:
    ws = Workspace.create(tmp_path / "runs", "toy_idea", TOY, IDEA)
    (ws.root / "run_1").mkdir()
    (ws.root / "run_1" / "final_info.json").write_text('{"metrics": {"final_loss": 0.5}}\n')
    (ws.root / "run_1" / ".gitattributes").write_text(attributes)
    (ws.root / ".gitattributes").write_text(attributes)  # plot.py may add files at the top
    assert ws.commit(["."], "experiment: run 1 results") is not None
    assert sorted(ws.refused) == [".gitattributes", "run_1/.gitattributes"]
    committed = subprocess.run(["git", "show", "HEAD:run_1/final_info.json"], cwd=ws.root,
                               capture_output=True, text=True, check=True).stdout
    assert json.loads(committed)["metrics"]["final_loss"] == 0.5


def test_the_sweep_keeps_the_repositorys_own_and_what_the_template_ships(tmp_path: Path) -> None:
    root = tmp_path / "run"
    (root / ".git").mkdir(parents=True)
    (root / ".gitignore").write_text("*.pt\n")
    (root / "latex").mkdir()
    (root / "latex" / ".gitignore").write_text("*.aux\n")  # shipped by the template: tracked
    (root / "run_1" / "seed_0" / ".git").mkdir(parents=True)
    (root / "run_1" / ".gitignore").write_text("*\n")  # would hide the run's results
    (root / "figs").mkdir()
    (root / "figs" / ".git").symlink_to(root / ".git")  # a link is removed, never followed
    removed = gitsafe.sweep(root, tracked=["latex/.gitignore"])
    assert removed == ["figs/.git", "run_1/.gitignore", "run_1/seed_0/.git"]
    assert (root / ".git").is_dir() and (root / ".gitignore").is_file()
    assert (root / "latex" / ".gitignore").is_file()


def test_every_git_the_orchestrator_starts_ignores_hooks_and_fsmonitor(tmp_path: Path) -> None:
    repo, marker = tmp_path / "repo", tmp_path / "ran"
    plant_repository(repo, marker)
    (repo / "new.txt").write_text("x\n")
    env = {**os.environ, **gitsafe.env()}
    subprocess.run(["git", "-C", str(repo), "status"], env=env, capture_output=True, check=True)
    subprocess.run(["git", "-C", str(repo), *IDENTITY, "commit", "-qam", "x"], env=env, capture_output=True)
    assert not marker.exists()


# --- through the loop ------------------------------------------------------------------------

def _plants(marker: Path) -> str:
    """An experiment.py edit: after its results, a repository with a command in its config."""
    return block("experiment.py", "    print(f\"final loss {losses[-1]:.4g} after {cfg.steps} steps\")\n",
                 "    print(f\"final loss {losses[-1]:.4g} after {cfg.steps} steps\")\n"
                 "    import subprocess\n"
                 "    git = ['git', '-C', str(out_dir)]\n"
                 "    subprocess.run([*git, 'init', '-q'], check=True)\n"
                 "    subprocess.run([*git, 'add', '.'], check=True)\n"
                 f"    subprocess.run([*git, *{IDENTITY!r}, 'commit', '-qm', 'x'], check=True)\n"
                 f"    subprocess.run([*git, 'config', 'core.fsmonitor', 'touch {marker}; echo'], check=True)\n"
                 "    (out_dir / '.gitattributes').write_text('* working-tree-encoding=UTF-16\\n')\n")


@pytest.mark.slow
def test_an_experiment_that_plants_a_repository_is_committed_as_files_and_said(tmp_path: Path) -> None:
    templates = tmp_path / "templates"
    shutil.copytree(TOY_TEMPLATES, templates)
    marker = tmp_path / "fsmonitor-ran"
    write_session(templates / "toy_template" / "ideas" / "toy_idea.session.jsonl",
                  [f"Run 1: plant a repository\n\n{_plants(marker)}"], ["experiment.plan"])
    proc = cli("--idea", "toy_idea", "--templates-dir", str(templates), "--max-runs", "1",
               "--stages", "experiment", "--runs-dir", str(tmp_path / "runs"), "--quiet")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    run_dir = only_run_dir(tmp_path / "runs")
    assert not marker.exists(), "the orchestrator's git ran the experiment's command"
    assert "wrote git metadata" in proc.stdout  # the warning, shown even with --quiet
    refused = [p for e in read(run_dir / "journal.jsonl").events if e.kind == "git.refused"
               for p in e.data["paths"]]
    assert refused == ["run_1/seed_0/.git", "run_1/seed_0/.gitattributes"]
    tree = subprocess.run(["git", "ls-tree", "-r", "HEAD", "run_1"], cwd=run_dir, capture_output=True,
                          text=True, check=True).stdout
    assert "run_1/seed_0/losses.json" in tree and "commit" not in tree
    assert not subprocess.run(["git", "status", "--porcelain"], cwd=run_dir, capture_output=True,
                              text=True, check=True).stdout.strip()
    resumed = cli("--resume", str(run_dir), "--quiet")
    assert resumed.returncode == 0, resumed.stderr
    report = subprocess.run([sys.executable, "-m", "agent.report", str(run_dir)], capture_output=True,
                            text=True, cwd=Path(__file__).resolve().parents[1])
    assert report.returncode == 0, report.stderr
    page = (run_dir / "report.html").read_text()
    assert "git metadata file(s)" in page and "run_1/seed_0/.gitattributes" in page
