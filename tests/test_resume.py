"""Resume after kill -9 at several points: the result equals an uninterrupted run.

The orchestrator is a real subprocess killed with SIGKILL (like a power cut), either from the
outside while it waits on an LLM call or an experiment, or by the test hook at a named point
(after an edit was applied but before its commit; between stages). Then `--resume` finishes it.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agent.journal import read
from agent.workspace import Workspace
from tests.conftest import REPO
from tests.e2e_helpers import (
    TOY_KINDS_WITH_PLOT,
    TOY_SESSION,
    TOY_SESSION_WITH_PLOT,
    TOY_TEMPLATES,
    cli,
    only_run_dir,
    write_session,
)
from tests.fakellm import FakeLLM, Reply, Slow

COMMON = ["--idea", "toy_idea", "--templates-dir", str(TOY_TEMPLATES), "--max-runs", "3",
          "--stages", "experiment,plot", "--quiet"]


def _fingerprint(run_dir: Path) -> dict:
    """What must be equal between an interrupted-and-resumed run and an uninterrupted one."""
    runs = {}
    for p in sorted(run_dir.glob("run_*/final_info.json")):
        info = json.loads(p.read_text())
        runs[p.parent.name] = (info["metrics"], info["config"])
    return {
        "runs": runs,
        # Commit ids differ between two launches (they hash timestamps); everything else may not.
        "files": {f: re.sub(r"commit [0-9a-f]{7,40}", "commit <sha>", (run_dir / f).read_text())
                  for f in ("experiment.py", "plot.py", "notes.txt")},
        "figures": sorted(p.name for p in run_dir.glob("*.png")),
    }


def _check_consistent(run_dir: Path) -> None:
    ws = Workspace(run_dir)
    assert ws.is_linear(), "git history must stay linear"
    assert not ws.is_dirty()
    contents = read(run_dir / "journal.jsonl")
    assert contents.truncated_tail is None
    seqs = [e.seq for e in contents.events]
    assert seqs == list(range(len(seqs))), "journal sequence has gaps"
    # Every run attempt is recorded exactly once, whatever happened in between.
    recorded = [(e.data["run"], e.data["attempt"]) for e in contents.events if e.kind == "run.recorded"]
    assert len(recorded) == len(set(recorded))
    finished = [e.data["stage"] for e in contents.events if e.kind == "stage.finished"]
    assert finished == ["experiment", "plot"]


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> dict:
    """The same session, uninterrupted."""
    tmp = tmp_path_factory.mktemp("reference")
    session = write_session(tmp / "session.jsonl", TOY_SESSION_WITH_PLOT, TOY_KINDS_WITH_PLOT)
    proc = cli(*COMMON, "--model", f"replay:{session}", "--runs-dir", str(tmp / "runs"))
    assert proc.returncode == 0, proc.stderr
    run_dir = only_run_dir(tmp / "runs")
    _check_consistent(run_dir)
    return _fingerprint(run_dir)


def _wait_for(journal: Path, kind: str, nth: int, proc: subprocess.Popen, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if journal.exists():
            n = sum(1 for e in read(journal).events if e.kind == kind)
            if n >= nth:
                return
        assert proc.poll() is None, f"the orchestrator ended before {kind} #{nth}"
        time.sleep(0.05)
    raise AssertionError(f"no {kind} #{nth} within {timeout} s")


def _popen(args: list[str], env: dict[str, str] | None = None) -> subprocess.Popen:
    full_env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    full_env.update(env or {})
    return subprocess.Popen([sys.executable, "-m", "agent.launch", *args], cwd=REPO, env=full_env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _resume(run_dir: Path, *extra: str) -> None:
    proc = cli("--resume", str(run_dir), "--quiet", *extra)
    assert proc.returncode == 0, proc.stderr + proc.stdout


def test_resume_after_kill_during_an_llm_call(tmp_path, reference):
    script = [Reply(TOY_SESSION[0]), Reply(TOY_SESSION[1]), Slow(30, Reply(TOY_SESSION[2])),
              *[Reply(t) for t in TOY_SESSION_WITH_PLOT[2:]]]
    with FakeLLM(script, error_status=400) as srv:
        args = [*COMMON, "--model", "openai/test-model", "--api-base", srv.base_url, "--runs-dir", str(tmp_path)]
        proc = _popen(args)
        journal = None
        deadline = time.monotonic() + 120
        while journal is None and time.monotonic() < deadline:
            dirs = [p for p in tmp_path.iterdir() if p.is_dir() and not p.name.startswith(".")]
            journal = dirs[0] / "journal.jsonl" if dirs else None
            time.sleep(0.05)
        assert journal is not None
        _wait_for(journal, "llm.request", 3, proc, timeout=180)
        deadline = time.monotonic() + 60
        while len(srv.requests) < 3:  # the third request has reached the server: it is in flight
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        run_dir = only_run_dir(tmp_path)
        _resume(run_dir)
    assert _fingerprint(run_dir) == reference
    _check_consistent(run_dir)


def test_resume_after_kill_during_an_experiment(tmp_path, reference):
    session = write_session(tmp_path / "session.jsonl", TOY_SESSION_WITH_PLOT, TOY_KINDS_WITH_PLOT)
    runs = tmp_path / "runs"
    proc = _popen([*COMMON, "--model", f"replay:{session}", "--runs-dir", str(runs)], env={"TOY_SLEEP": "1.5"})
    deadline = time.monotonic() + 60
    while not (runs.exists() and any(p.is_dir() and not p.name.startswith(".") for p in runs.iterdir())):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    run_dir = only_run_dir(runs)
    _wait_for(run_dir / "journal.jsonl", "run.process", 2, proc)  # run 1 is running (the baseline was #1)
    time.sleep(0.3)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    _resume(run_dir)
    assert _fingerprint(run_dir) == reference
    _check_consistent(run_dir)
    events = read(run_dir / "journal.jsonl").events
    assert any(e.kind == "launch.resumed" for e in events)


@pytest.mark.parametrize("point", ["edit_applied:1", "edit_applied:3", "stage_finished:1", "run_started:3"])
def test_resume_after_kill_at_a_named_point(tmp_path, reference, point):
    session = write_session(tmp_path / "session.jsonl", TOY_SESSION_WITH_PLOT, TOY_KINDS_WITH_PLOT)
    runs = tmp_path / "runs"
    proc = cli(*COMMON, "--model", f"replay:{session}", "--runs-dir", str(runs),
               env={"AGENT_TEST_CRASH_AT": point})
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    run_dir = only_run_dir(runs)
    if point.startswith("edit_applied"):
        assert Workspace(run_dir).is_dirty(), "the crash was meant to leave an uncommitted edit"
    _resume(run_dir)
    assert _fingerprint(run_dir) == reference
    _check_consistent(run_dir)
    assert len([p for p in runs.iterdir() if p.is_dir() and not p.name.startswith(".")]) == 1
