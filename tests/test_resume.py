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

from agent.journal import read, segments
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
    # The history carries every event, those of the killed launch included, exactly once.
    carried = [e for path in segments(run_dir) for e in read(path).events]
    assert [e.to_json() for e in carried] == [e.to_json() for e in contents.events]


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


def _killed_at(tmp_path: Path, point: str, *flags: str, **env: str) -> Path:
    """Launch the replayed toy session with the test hook killing it at `point`; its run dir."""
    session = write_session(tmp_path / "session.jsonl", TOY_SESSION_WITH_PLOT, TOY_KINDS_WITH_PLOT)
    runs = tmp_path / "runs"
    proc = cli(*COMMON, *flags, "--model", f"replay:{session}", "--runs-dir", str(runs),
               env={"AGENT_TEST_CRASH_AT": point, **env})
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    return only_run_dir(runs)


def _launch_during_run_1(tmp_path: Path) -> tuple[subprocess.Popen, Path]:
    """Start the replayed toy session (slow experiments); return once run 1 is executing."""
    session = write_session(tmp_path / "session.jsonl", TOY_SESSION_WITH_PLOT, TOY_KINDS_WITH_PLOT)
    runs = tmp_path / "runs"
    proc = _popen([*COMMON, "--model", f"replay:{session}", "--runs-dir", str(runs)], env={"TOY_SLEEP": "1.5"})
    deadline = time.monotonic() + 60
    while not (runs.exists() and any(p.is_dir() and not p.name.startswith(".") for p in runs.iterdir())):
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.05)
    run_dir = only_run_dir(runs)
    _wait_for(run_dir / "journal.jsonl", "run.process", 2, proc)  # the baseline was #1
    return proc, run_dir


@pytest.mark.slow
def test_resume_after_kill_during_an_llm_call(tmp_path, reference):
    script = [Reply("ok"),  # the launch's one-token credentials check
              Reply(TOY_SESSION[0]), Reply(TOY_SESSION[1]), Slow(30, Reply(TOY_SESSION[2])),
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
        while len(srv.requests) < 4:  # the third LLM turn has reached the server: it is in flight
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        run_dir = only_run_dir(tmp_path)
        _resume(run_dir)
    assert _fingerprint(run_dir) == reference
    _check_consistent(run_dir)


@pytest.mark.slow
def test_resume_after_kill_during_an_experiment(tmp_path, reference):
    proc, run_dir = _launch_during_run_1(tmp_path)
    time.sleep(0.3)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    _resume(run_dir)
    assert _fingerprint(run_dir) == reference
    _check_consistent(run_dir)
    events = read(run_dir / "journal.jsonl").events
    assert any(e.kind == "launch.resumed" for e in events)


@pytest.mark.slow
@pytest.mark.parametrize("point", ["edit_applied:1", "edit_applied:3", "stage_finished:1", "run_started:3"])
def test_resume_after_kill_at_a_named_point(tmp_path, reference, point):
    run_dir = _killed_at(tmp_path, point)
    runs = run_dir.parent
    if point.startswith("edit_applied"):
        assert Workspace(run_dir).is_dirty(), "the crash was meant to leave an uncommitted edit"
    _resume(run_dir)
    assert _fingerprint(run_dir) == reference
    _check_consistent(run_dir)
    assert len([p for p in runs.iterdir() if p.is_dir() and not p.name.startswith(".")]) == 1


# --- every window between a side effect and its journal line -----------------------------------
# `name:n` = the n-th time the orchestrator passes crash point `name`. Runs: baseline (1),
# run 1 (2), run 2 attempt 1 crashes (3), run 2 attempt 2 (4); notes sections for runs 0, 1, 2.

WINDOWS = [
    "run_finished:2",     # run 1's process ended and run.finished is journaled; nothing committed
    "run_committed:2",    # run 1's results are committed; run.recorded is not journaled
    "run_finished:3",     # a failed attempt: its logs are not yet moved and committed
    "notes_written:2",    # run 1's notes section written, not committed
    "notes_committed:2",  # committed, notes.appended not journaled
    "plot_finished:1",    # plot.py ran, figures not committed
]


def _count_runs_executed(run_dir: Path) -> list[tuple[int, int]]:
    return [(e.data["run"], e.data["attempt"]) for e in read(run_dir / "journal.jsonl").events
            if e.kind == "run.started"]


@pytest.mark.slow
@pytest.mark.parametrize("point", WINDOWS)
def test_a_crash_between_a_side_effect_and_its_record_neither_loses_nor_repeats_it(tmp_path, reference, point):
    run_dir = _killed_at(tmp_path, point)
    before = _count_runs_executed(run_dir)
    _resume(run_dir)
    assert _fingerprint(run_dir) == reference
    _check_consistent(run_dir)
    executed = _count_runs_executed(run_dir)
    assert len(executed) == len(set(executed)), f"a run was executed twice: {executed}"
    assert executed[: len(before)] == before
    notes = (run_dir / "notes.txt").read_text()
    for index in (0, 1, 2):
        assert notes.count(f"## Run {index}") == 1, f"run {index}'s notes section is not there once"
    events = read(run_dir / "journal.jsonl").events
    steps = [e.data["step"] for e in events if e.kind.endswith(".recorded") and "step" in e.data]
    assert len(steps) == len(set(steps)), "a step was recorded twice"
    shas = [e.data.get("sha") for e in events if e.kind in ("run.recorded", "notes.appended", "plot.recorded")]
    history = {c.sha for c in Workspace(run_dir).history()}
    assert all(sha in history for sha in shas if sha), "a recorded commit is not in the history"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    state = Path(f"/proc/{pid}/stat").read_text().split()[2] if Path(f"/proc/{pid}/stat").exists() else "X"
    return state not in ("Z", "X")


def _group_alive(pgid: int) -> bool:
    """Whether any live process is in process group `pgid` (the leader may be gone: in a
    sandbox, bubblewrap dies with the orchestrator while the plot itself goes on)."""
    from agent.runner import _group_members

    return any(_alive(pid) for pid in _group_members(pgid))


@pytest.mark.slow
def test_resume_stops_a_plot_left_running_by_a_killed_orchestrator(tmp_path, reference):
    # Unsandboxed: a sandboxed child dies with its orchestrator (bubblewrap's
    # --die-with-parent) unless the kill comes before bubblewrap has set that up, a window
    # too narrow to aim a test at; without the sandbox the plot always outlives it.
    run_dir = _killed_at(tmp_path, "plot_started:1", "--no-sandbox", TOY_PLOT_SLEEP="60")
    (started,) = [e for e in read(run_dir / "journal.jsonl").events if e.kind == "process.started"]
    pgid = started.data["pgid"]
    assert _group_alive(pgid), "the orphaned plot.py was meant to outlive its orchestrator"
    try:
        _resume(run_dir)
        assert not _group_alive(pgid), "resume left the orphaned plot.py running"
        events = read(run_dir / "journal.jsonl").events
        assert [e.data["pgid"] for e in events if e.kind == "process.leftover_killed"] == [pgid]
        assert _fingerprint(run_dir) == reference
        _check_consistent(run_dir)
    finally:
        if _group_alive(pgid):
            os.killpg(pgid, signal.SIGKILL)


# --- one orchestrator per run directory -------------------------------------------------------

@pytest.mark.slow
def test_a_second_resume_of_a_busy_run_directory_exits_2_naming_the_live_process(tmp_path, reference):
    proc, run_dir = _launch_during_run_1(tmp_path)
    journal_before = (run_dir / "journal.jsonl").read_bytes()
    second = cli("--resume", str(run_dir), "--quiet")
    third = cli("--resume", str(run_dir), "--quiet")
    assert proc.poll() is None, "the first orchestrator must not have been disturbed"
    for other in (second, third):
        assert other.returncode == 2, other.stderr
        assert f"pid {proc.pid}" in other.stderr and "only one launch or --resume" in other.stderr
    assert (run_dir / "journal.jsonl").read_bytes().startswith(journal_before)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert _fingerprint(run_dir) == reference
    _check_consistent(run_dir)


@pytest.mark.slow
def test_a_stale_lock_of_a_dead_process_is_taken_over(tmp_path, reference):
    run_dir = _killed_at(tmp_path, "run_started:2")
    lock = run_dir / ".git" / "agent.lock"
    dead = int(lock.read_text().split()[1])  # "pid N (since ...)", written by the killed launch
    assert not _alive(dead)
    _resume(run_dir)
    assert int(lock.read_text().split()[1]) not in (dead, os.getpid())
    assert _fingerprint(run_dir) == reference
