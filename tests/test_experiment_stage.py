"""End to end: the experiment stage on the toy template, through the real CLI and real HTTP."""

from __future__ import annotations

import re

import pytest

from agent.journal import read
from agent.workspace import Workspace
from tests.conftest import REPO
from tests.e2e_helpers import TOY_SESSION, TOY_TEMPLATES, block, cli, only_run_dir
from tests.fakellm import FakeLLM, Reply


@pytest.mark.slow
def test_experiment_stage_with_failed_edit_crash_retry_and_all_completed(tmp_path):
    # The first request is the launch's one-token credentials check.
    with FakeLLM([Reply("ok"), *(Reply(t) for t in TOY_SESSION)], error_status=400) as srv:
        proc = cli("--idea", "toy_idea", "--templates-dir", str(TOY_TEMPLATES), "--model", "openai/test-model",
                   "--api-base", srv.base_url, "--runs-dir", str(tmp_path), "--stages", "experiment",
                   "--max-runs", "3", "--quiet")
        probe, *requests = list(srv.requests)
    assert probe["max_tokens"] == 1
    assert proc.returncode == 0, proc.stderr + proc.stdout
    run_dir = only_run_dir(tmp_path)
    events = read(run_dir / "journal.jsonl").events
    kinds = [e.kind for e in events]
    assert len(requests) == len(TOY_SESSION)
    assert [e.data["prompt_kind"] for e in events if e.kind == "llm.response"] == [
        "experiment.plan", "edit.retry", "experiment.results", "experiment.failure", "experiment.results"]
    # The failed block was reported back with the closest real lines, then fixed.
    assert any(e.kind == "edit.failed" for e in events)
    assert "lr: float = 0.1" in requests[1]["messages"][-1]["content"]
    # Runs: baseline, run 1 ok, run 2 crashed once then succeeded; no run 3.
    recorded = [(e.data["run"], e.data["attempt"], e.data["status"]) for e in events if e.kind == "run.recorded"]
    assert recorded == [(0, 1, "ok"), (1, 1, "ok"), (2, 1, "failed"), (2, 2, "ok")]
    crash = next(e for e in events if e.kind == "run.recorded" and e.data["status"] == "failed")
    assert "RuntimeError: boom: planted crash" in crash.data["stderr_tail"]
    assert "RuntimeError: boom: planted crash" in requests[3]["messages"][-1]["content"]
    assert not (run_dir / "run_3").exists()
    # Cached prefixes: the system message (rules, codebase, idea) in every turn; the plan that
    # opens every turn after the first; an edit retry's conversation, which the next retry resends.
    marks = [e.data["cache_breakpoints"] for e in events if e.kind == "llm.request"]
    sent = [e.data["messages"] for e in events if e.kind == "llm.request"]
    assert "The idea the experiments implement" in sent[0][0]["content"] and all(m[0] == sent[0][0] for m in sent)
    assert marks[0] == [[0, None]] and marks[1] == [[0, None], [3, None]]
    heads = set()
    for turn, marked in zip(sent[2:], marks[2:], strict=True):
        user, at = turn[1]["content"], marked[1][1]
        assert user.startswith("Your plan was:\n") and marked == [[0, None], [1, at]]
        assert re.match(r"\n\nRun \d (completed|\(attempt)", user[at:])  # the turn's own part follows
        heads.add(user[:at])
    assert len(heads) == 1  # the same plan, a prefix every turn after the first shares
    assert "stage.finished" in kinds and "experiment.completed_by_model" in kinds
    # Results come from the runs: run 1 used momentum 0.5 and lr 0.05, run 2 momentum 0.9.
    import json

    info1 = json.loads((run_dir / "run_1" / "final_info.json").read_text())
    info2 = json.loads((run_dir / "run_2" / "final_info.json").read_text())
    assert info1["config"] == {"lr": 0.05, "steps": 50, "momentum": 0.5}
    assert info2["config"]["momentum"] == 0.9
    assert info1["metrics"]["final_loss"] < 25
    # Git: linear, one commit per applied edit and per finished run, the failed attempt's logs kept.
    ws = Workspace(run_dir)
    assert ws.is_linear() and not ws.is_dirty()
    messages = [c.message for c in ws.history()]
    assert messages[0].startswith("setup:")
    assert sum("edit experiment.py" in m for m in messages) >= 3
    assert any(m.startswith("experiment: run 2 attempt 1 failed") for m in messages)
    assert (run_dir / "logs" / "run_2_attempt1" / "seed_0" / "stderr.txt").is_file()
    # Notes: the orchestrator's sections for every run, plus the model's analysis on top.
    notes = (run_dir / "notes.txt").read_text()
    for i in (0, 1, 2):
        assert f"## Run {i}" in notes
    assert "Analysis of run 1" in notes and "Analysis of run 2" in notes
    assert "What was tried: add heavy-ball momentum 0.5" in notes


def _replay(tmp_path, replies, kinds, *extra):
    from tests.e2e_helpers import write_session

    session = write_session(tmp_path / "session.jsonl", replies, kinds)
    # The templates folder relative to the working directory (the repository), as a user types
    # it: the sandbox binds it by path, so the launch must resolve it first.
    relative = str(TOY_TEMPLATES.relative_to(REPO))
    return cli("--idea", "toy_idea", "--templates-dir", relative, "--model", f"replay:{session}",
               "--runs-dir", str(tmp_path / "runs"), "--stages", "experiment", "--quiet", *extra, cwd=REPO)


@pytest.mark.slow
def test_all_completed_before_any_successful_run_fails_the_stage(tmp_path):
    proc = _replay(tmp_path, ["Nothing to do.\nALL_COMPLETED"], ["experiment.plan"])
    assert proc.returncode == 6
    assert "ALL_COMPLETED before any run succeeded" in proc.stderr
    run_dir = only_run_dir(tmp_path / "runs")
    kinds = [e.kind for e in read(run_dir / "journal.jsonl").events]
    assert "stage.finished" not in kinds and "launch.stopped" in kinds


@pytest.mark.slow
def test_a_run_failing_all_attempts_keeps_the_runs_that_succeeded(tmp_path):
    from tests.e2e_helpers import block

    crash = block("experiment.py", "    x, v, losses = 5.0, 0.0, []\n",
                  "    x, v, losses = 5.0, 0.0, []\n    raise RuntimeError('still broken')\n")
    still = "Trying again.\n" + block("experiment.py", "    raise RuntimeError('still broken')\n",
                                      "    raise RuntimeError('still broken!')\n")
    replies = [TOY_SESSION[0], TOY_SESSION[1], "Run 2: a crash\n" + crash, still]
    kinds = ["experiment.plan", "edit.retry", "experiment.results", "experiment.failure"]
    proc = _replay(tmp_path, replies, kinds, "--max-attempts", "2")
    assert proc.returncode == 0, proc.stderr
    assert "run 2 failed all 2 attempts" in proc.stdout
    run_dir = only_run_dir(tmp_path / "runs")
    assert (run_dir / "run_1" / "final_info.json").is_file()
    assert not (run_dir / "run_2").exists()
    assert (run_dir / "logs" / "run_2_attempt2" / "seed_0" / "stderr.txt").is_file()
    events = read(run_dir / "journal.jsonl").events
    assert any(e.kind == "experiment.gave_up" for e in events)


@pytest.mark.slow
def test_a_reply_without_code_changes_is_not_run(tmp_path):
    notes_only = "Run 1: nothing yet\n" + block("notes.txt", "", "thinking\n")
    replies = [notes_only, *TOY_SESSION[:2], "ALL_COMPLETED"]
    kinds = ["experiment.plan", "experiment.failure", "edit.retry", "experiment.results"]
    proc = _replay(tmp_path, replies, kinds)
    assert proc.returncode == 0, proc.stderr
    events = read(only_run_dir(tmp_path / "runs") / "journal.jsonl").events
    skipped = [e for e in events if e.kind == "run.skipped"]
    assert len(skipped) == 1 and "changed no code" in skipped[0].data["reason"]
    assert [(e.data["run"], e.data["attempt"]) for e in events if e.kind == "run.started"] == [(0, 1), (1, 2)]


@pytest.mark.slow
def test_a_reply_rewriting_the_orchestrators_notes_is_refused_and_told(tmp_path):
    """notes.txt is the model's to append to, but each run's section the orchestrator wrote
    from the run's files is not: a block that rewrites one (here run 1's heading and its
    recorded line, to claim a better loss) is refused with the reason, its sibling append
    applies, and the record stays as written."""
    import json

    from tests.e2e_helpers import FIX_CRASH, FIX_FAILED_BLOCK, PLAN, RUN2_CRASHES, write_session

    forge = (block("notes.txt", "## Run 1\n", "## Run 1 (best run: final loss 0.0001)\n")
             + block("notes.txt", "", "Analysis of run 2: momentum 0.9 oscillates more.\n") + "\nALL_COMPLETED\n")
    session = write_session(tmp_path / "session.jsonl",
                            [PLAN, FIX_FAILED_BLOCK, RUN2_CRASHES, FIX_CRASH, forge,
                             block("notes.txt", "", "(Run 1's heading withdrawn: that section is the record.)\n")
                             + "\nALL_COMPLETED\n"],
                            ["experiment.plan", "edit.retry", "experiment.results", "experiment.failure",
                             "experiment.results", "edit.retry"])
    proc = cli("--idea", "toy_idea", "--templates-dir", str(TOY_TEMPLATES), "--model", f"replay:{session}",
               "--runs-dir", str(tmp_path / "runs"), "--stages", "experiment", "--max-runs", "3", "--quiet")
    assert proc.returncode == 0, proc.stderr + proc.stdout
    run_dir = only_run_dir(tmp_path / "runs")
    events = read(run_dir / "journal.jsonl").events
    notes = (run_dir / "notes.txt").read_text()
    for e in events:
        if e.kind == "notes.appending":
            assert e.data["text"] in notes  # every recorded section, word for word
    assert "0.0001" not in notes and "## Run 1\nRecorded by the orchestrator" in notes
    assert "Analysis of run 2: momentum 0.9 oscillates more." in notes
    [refused] = [e for e in events if e.kind == "edit.refused"]
    assert refused.data["path"] == "notes.txt" and "orchestrator's record of run 1" in refused.data["reason"]
    retry = [e for e in events if e.kind == "llm.request"][-1]  # the model was told why
    assert retry.data["prompt_kind"] == "edit.retry"
    assert "orchestrator's record of run 1" in retry.data["messages"][-1]["content"]
    committed = json.loads((run_dir / "run_1" / "final_info.json").read_text())["metrics"]["final_loss"]
    assert f"{committed:.4g}"[:4] in notes.split("## Run 1\n", 1)[1].split("## Run 2")[0]


def _run2_fault_then_fixed(tmp_path, anchor: str, fault: str, env: dict[str, str]) -> tuple:
    """A toy launch whose run 2 adds `fault` after the line `anchor` of experiment.py, fails,
    is told why, and removes it: the run directory, its events and the failure prompt's text.
    Runs are recorded: baseline ok, run 1 ok, run 2 failed then ok."""
    from tests.e2e_helpers import DONE, FIX_FAILED_BLOCK, PLAN, write_session

    run2 = ("Run 2: momentum 0.9\n\n"
            + block("experiment.py", "    momentum: float = 0.5  # heavy-ball momentum\n",
                    "    momentum: float = 0.9  # heavy-ball momentum\n")
            + block("experiment.py", anchor, anchor + fault))
    session = write_session(tmp_path / "session.jsonl",
                            [PLAN, FIX_FAILED_BLOCK, run2, block("experiment.py", fault, ""), DONE],
                            ["experiment.plan", "edit.retry", "experiment.results", "experiment.failure",
                             "experiment.results"])
    proc = cli("--idea", "toy_idea", "--templates-dir", str(TOY_TEMPLATES), "--model", f"replay:{session}",
               "--runs-dir", str(tmp_path / "runs"), "--stages", "experiment", "--max-runs", "3", "--quiet",
               env=env)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    run_dir = only_run_dir(tmp_path / "runs")
    events = read(run_dir / "journal.jsonl").events
    recorded = [(e.data["run"], e.data["attempt"], e.data["status"]) for e in events if e.kind == "run.recorded"]
    assert recorded == [(0, 1, "ok"), (1, 1, "ok"), (2, 1, "failed"), (2, 2, "ok")]
    told = [e for e in events if e.kind == "llm.request" and e.data["prompt_kind"] == "experiment.failure"]
    return run_dir, events, told[0].data["messages"][-1]["content"]


@pytest.mark.slow
def test_an_experiment_past_its_memory_limit_fails_in_plain_words_and_is_fixed(tmp_path):
    """Run 2 allocates 1.5 GB under a 0.5 GB limit per child: the seed fails alone, the model
    is told it ran out of memory and what its limit was, fixes it, and the run then succeeds."""
    _, _, told = _run2_fault_then_fixed(tmp_path, "    x, v, losses = 5.0, 0.0, []\n",
                                        "    hoard = bytearray(1536 * 2**20)  # planted: past the limit\n",
                                        {"TRUSTED_SCIENTIST_CHILD_MEMORY_GB": "0.5"})
    assert "ran out of memory, past its limit of 0.5 GB" in told


@pytest.mark.slow
def test_a_run_over_its_folder_quota_fails_its_files_deleted_and_the_model_told(tmp_path):
    """Run 2 writes 40 files of 1 MB under a 10 MB quota (each file under the size limit, so
    only the quota catches it): its output is deleted but the logs, nothing of it is committed,
    the model is told, and the fixed attempt succeeds."""
    from agent.workspace import Workspace

    spill = ("    for i in range(40):\n"
             "        (out_dir / f'spill_{i}.dat').write_bytes(bytes(2**20))  # planted\n")
    run_dir, _, told = _run2_fault_then_fixed(tmp_path, "    out_dir.mkdir(parents=True, exist_ok=True)\n", spill,
                                              {"TRUSTED_SCIENTIST_RUN_QUOTA_GB": str(10 / 1024)})
    assert "over the run folder's quota of 0.01 GB" in told
    history = Workspace(run_dir, env={}).repo.git.log("--all", "--name-only")
    assert "spill_" not in history and not list(run_dir.rglob("spill_*"))
