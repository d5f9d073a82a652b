"""The orchestrator reads what the run's code wrote without following what it planted: a log,
result or figure replaced by a symbolic link (to a credential file the sandbox hid from the
code), a hard link or a FIFO is refused and said, never read."""

from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path

import pytest

from agent import runfiles
from agent.journal import read
from agent.runner import read_tail
from tests.e2e_helpers import TOY_TEMPLATES, block, cli, only_run_dir, write_session

SECRET = "netrc-password-7f3a9c1e"


@pytest.fixture
def run(tmp_path: Path) -> Path:
    root = tmp_path / "run"
    (root / "run_1").mkdir(parents=True)
    (root / "run_1" / "stderr.txt").write_text("Traceback (most recent call last):\nValueError: boom\n")
    (tmp_path / "netrc").write_text(f"machine example.invalid password {SECRET}\n")
    return root


def test_a_plain_file_of_the_run_is_read(run: Path) -> None:
    assert "ValueError: boom" in runfiles.read_text(run / "run_1" / "stderr.txt", run)
    assert "ValueError: boom" in read_tail(run / "run_1" / "stderr.txt")


def test_a_log_replaced_by_a_link_is_not_read(run: Path) -> None:
    log = run / "run_1" / "stderr.txt"
    log.unlink()
    log.symlink_to(run.parent / "netrc")
    with pytest.raises(runfiles.UnsafeFile):
        runfiles.read_bytes(log)
    tail = read_tail(log)
    assert SECRET not in tail and "was not read" in tail and "replaced its own log" in tail


def test_a_hard_link_a_fifo_and_a_folder_leading_out_are_refused(run: Path) -> None:
    hard = run / "run_1" / "final_info.json"
    os.link(run.parent / "netrc", hard)
    with pytest.raises(runfiles.UnsafeFile, match="hard links"):
        runfiles.read_text(hard, run)
    fifo = run / "run_1" / "out.png"
    os.mkfifo(fifo)
    done = threading.Event()

    def read_fifo() -> None:
        with pytest.raises(runfiles.UnsafeFile, match="not a regular file"):
            runfiles.read_bytes(fifo)
        done.set()

    threading.Thread(target=read_fifo, daemon=True).start()
    assert done.wait(10), "opening a FIFO blocked the reader"
    (run / "run_2").symlink_to(run.parent, target_is_directory=True)
    with pytest.raises(runfiles.UnsafeFile, match="leads outside"):
        runfiles.read_text(run / "run_2" / "netrc", run)


@pytest.mark.slow
def test_an_experiment_that_links_its_log_to_a_hidden_credential_leaks_nothing(tmp_path: Path) -> None:
    """Through the loop: the sandbox shows ~/.netrc empty to the experiment; the experiment
    replaces its stderr.txt with a link to it and fails, so the orchestrator reads its log."""
    home = tmp_path / "home"
    home.mkdir()
    (home / ".netrc").write_text(f"machine example.invalid password {SECRET}\n")
    templates = tmp_path / "templates"
    shutil.copytree(TOY_TEMPLATES, templates)
    plant = block("experiment.py", "    cfg = Config()\n",
                  "    cfg = Config()\n"
                  "    log = out_dir / 'stderr.txt'\n"
                  "    log.unlink()\n"
                  f"    log.symlink_to({str(home / '.netrc')!r})\n"
                  "    raise SystemExit(1)\n")
    write_session(templates / "toy_template" / "ideas" / "toy_idea.session.jsonl",
                  [f"Run 1: link the log\n\n{plant}"], ["experiment.plan"])
    proc = cli("--idea", "toy_idea", "--templates-dir", str(templates), "--max-runs", "1",
               "--max-attempts", "1", "--stages", "experiment", "--runs-dir", str(tmp_path / "runs"),
               "--quiet", env={"HOME": str(home)})
    assert proc.returncode == 6, proc.stdout[-2000:] + proc.stderr[-2000:]  # no run succeeded
    run_dir = only_run_dir(tmp_path / "runs")
    assert SECRET not in proc.stdout + proc.stderr
    assert SECRET not in (run_dir / "journal.jsonl").read_text()
    finished = [e.data for e in read(run_dir / "journal.jsonl").events
                if e.kind == "run.finished" and e.data["run"] == 1]
    assert finished and "was not read" in finished[-1]["stderr_tail"]
