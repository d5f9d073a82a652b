"""Unexpected failures stop a launch the way expected ones do: journaled, with the traceback
kept in the run directory, a documented exit code, and a run directory that `--resume` brings
to the same end as an uninterrupted launch."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from agent.journal import read
from agent.results import load_run
from agent.template import load as load_template
from tests.e2e_helpers import (
    PLAN,
    TOY_KINDS_WITH_PLOT,
    TOY_SESSION_WITH_PLOT,
    TOY_TEMPLATES,
    block,
    cli,
    only_run_dir,
    write_session,
)
from tests.test_resume import (  # noqa: F401 - `reference` is a fixture used here too
    COMMON,
    _check_consistent,
    _fingerprint,
    _launch_during_run_1,
    _popen,
    _resume,
    reference,
)


@pytest.mark.slow
def test_a_git_failure_mid_run_is_journaled_with_its_traceback_and_resumes(tmp_path, reference):  # noqa: F811
    """A real git failure: another process's `index.lock` appears while run 1 executes, so
    committing its results fails. Exit 1, the traceback saved, nothing lost after --resume."""
    proc, run_dir = _launch_during_run_1(tmp_path)
    index_lock = run_dir / ".git" / "index.lock"
    index_lock.write_text("")
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, err
    assert "unexpected error" in err and "index.lock" in err
    assert f"--resume {run_dir}" in err
    events = read(run_dir / "journal.jsonl").events
    stopped = events[-1]
    assert stopped.kind == "launch.stopped" and stopped.data["exit_code"] == 1
    assert "Traceback" in stopped.data["traceback"]
    saved = run_dir / stopped.data["traceback_file"]
    assert saved.is_file() and "index.lock" in saved.read_text() and str(saved) in err
    assert [e.kind for e in events].count("run.finished") == 2  # run 1 finished: not to be redone
    index_lock.unlink()
    _resume(run_dir)
    assert _fingerprint(run_dir) == reference
    _check_consistent(run_dir)
    started = [(e.data["run"], e.data["attempt"]) for e in read(run_dir / "journal.jsonl").events
               if e.kind == "run.started"]
    assert started.count((1, 1)) == 1, "run 1 was executed again"
    assert saved.is_file(), "the traceback must survive the resume's restore"


SYMLINK_NOTES = block(
    "experiment.py",
    "    out_dir = Path(parser.parse_args().out_dir)\n",
    "    out_dir = Path(parser.parse_args().out_dir)\n"
    "    if 'run_1' in out_dir.parts:  # a hostile or careless experiment\n"
    "        os.remove('notes.txt')\n"
    "        os.symlink('../outside_notes.txt', 'notes.txt')\n",
)


@pytest.mark.slow
def test_an_experiment_that_links_notes_outside_stops_resumably_and_resume_recovers(tmp_path):
    replies = [PLAN + SYMLINK_NOTES, *TOY_SESSION_WITH_PLOT[1:]]
    session = write_session(tmp_path / "session.jsonl", replies, TOY_KINDS_WITH_PLOT)
    runs = tmp_path / "runs"
    outside = runs / "outside_notes.txt"
    runs.mkdir()
    outside.write_text("not the run's notes\n")
    # Unsandboxed, as on a machine without bubblewrap: in the sandbox the run directory is
    # read-only to the experiment (test_sandbox.py), so this is the orchestrator's own guard.
    proc = cli(*COMMON, "--no-sandbox", "--model", f"replay:{session}", "--runs-dir", str(runs))
    assert proc.returncode == 4, proc.stderr  # resumable, not "bad input"
    run_dir = only_run_dir(runs)
    assert "notes.txt" in proc.stderr and f"--resume {run_dir}" in proc.stderr
    assert outside.read_text() == "not the run's notes\n", "the orchestrator wrote outside the run"
    _resume(run_dir)
    assert outside.read_text() == "not the run's notes\n"
    notes = run_dir / "notes.txt"
    assert not notes.is_symlink() and notes.read_text().count("## Run 1") == 1
    _check_consistent(run_dir)


@pytest.mark.slow
def test_a_launch_killed_while_creating_its_run_directory_leaves_none_behind(tmp_path):
    """The directory appears under runs/ whole (with its journal) or not at all."""
    session = write_session(tmp_path / "session.jsonl", TOY_SESSION_WITH_PLOT, TOY_KINDS_WITH_PLOT)
    runs = tmp_path / "runs"
    for _ in range(3):
        proc = _popen([*COMMON, "--model", f"replay:{session}", "--runs-dir", str(runs)])
        deadline = time.monotonic() + 60
        while not (runs.exists() and any(runs.iterdir())):
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.002)
        proc.kill()
        proc.wait()
        for d in runs.iterdir():
            if d.is_dir() and not d.name.startswith("."):
                assert (d / "journal.jsonl").is_file() and (d / ".git").is_dir(), d
                assert read(d / "journal.jsonl").events[0].kind == "launch.started"
    # The next launch clears the staging folders of dead launches.
    proc = cli(*COMMON, "--model", f"replay:{session}", "--runs-dir", str(runs), "--stages", "experiment")
    assert proc.returncode == 0, proc.stderr
    assert not [d for d in runs.iterdir() if d.name.startswith(".creating-")]


@pytest.mark.parametrize("content", [
    "[1, 2]", '"done"', "null", '{"metrics": [0.1]}', '{"metrics": {"final_loss": "low"}}',
    '{"metrics": {"final_loss": true}}', '{"config": 3, "metrics": {}}', '{"code": "abc"}',
])
def test_a_final_info_of_any_malformed_shape_is_a_readable_error(tmp_path: Path, content: str) -> None:
    """What `runs.execute` turns into a failed run ("unreadable final_info.json") that goes
    back to the model, never an exception that escapes the stage."""
    (tmp_path / "run_1").mkdir()
    (tmp_path / "run_1" / "final_info.json").write_text(content)
    with pytest.raises(ValueError):
        load_run(tmp_path, 1, load_template(TOY_TEMPLATES / "toy_template"))



@pytest.mark.slow
def test_a_key_rejected_mid_run_exits_2_and_says_how_to_resume(tmp_path, reference):  # noqa: F811
    """The check request passed, then the provider rejects the key at the third turn: exit 2
    (the user must fix something), not retried, with the run directory kept and the way on."""
    from tests.e2e_helpers import TOY_SESSION
    from tests.fakellm import FakeLLM, Reply, Status

    args = [*COMMON, "--model", "openai/test-model", "--runs-dir", str(tmp_path / "runs")]
    first = [Reply("ok"), Reply(TOY_SESSION[0]), Reply(TOY_SESSION[1]), Status(401)]
    with FakeLLM(first, error_status=400) as srv:
        proc = cli(*args, "--api-base", srv.base_url, env={"OPENAI_API_KEY": "sk-test"})
        assert len(srv.requests) == 4, "a 401 must not be retried"
    assert proc.returncode == 2, proc.stderr
    run_dir = only_run_dir(tmp_path / "runs")
    assert f"--resume {run_dir}" in proc.stderr
    rest = [Reply(t) for t in TOY_SESSION_WITH_PLOT[2:]]
    with FakeLLM(rest, error_status=400) as srv:
        resumed = cli("--resume", str(run_dir), "--quiet", "--api-base", srv.base_url,
                      env={"OPENAI_API_KEY": "sk-test"})
    assert resumed.returncode == 0, resumed.stderr
    assert _fingerprint(run_dir) == reference
