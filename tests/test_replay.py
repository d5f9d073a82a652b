"""Reviewing and replaying a run from its git history alone (`python -m agent.replay`).

Every test works on a `git clone` of a finished toy run with the original deleted: the clone
is how a run is shared or archived, and it must be a complete record."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from agent.journal import read, read_run
from tests.conftest import REPO
from tests.e2e_helpers import TOY_TEMPLATES, cli, only_run_dir, write_session


def replay(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "agent.replay", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=timeout)


def git(root, *args: str) -> str:
    return subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True,
                          text=True).stdout


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory):
    """A finished toy run (experiment stage, a failed edit, a crashed run fixed) and its events."""
    tmp = tmp_path_factory.mktemp("toy")
    templates = tmp / "templates"
    shutil.copytree(TOY_TEMPLATES, templates)
    write_session(templates / "toy_template" / "ideas" / "toy_idea.session.jsonl")
    proc = cli("--idea", "toy_idea", "--max-runs", "3", "--stages", "experiment", "--templates-dir",
               str(templates), "--runs-dir", str(tmp / "runs"), "--quiet")
    assert proc.returncode == 0, proc.stderr
    run_dir = only_run_dir(tmp / "runs")
    return run_dir, read(run_dir / "journal.jsonl").events


@pytest.fixture
def clone(toy_run, tmp_path):
    """A clone of the toy run in another place, made from a copy that is then deleted."""
    original = tmp_path / "original"
    shutil.copytree(toy_run[0], original)
    dest = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(original), str(dest))
    shutil.rmtree(original)
    return dest


@pytest.mark.slow
def test_the_history_carries_every_journal_event_with_its_commit(toy_run, clone):
    run_dir, events = toy_run
    assert not git(run_dir, "status", "--porcelain"), "a finished run leaves nothing uncommitted"
    assert not (clone / "journal.jsonl").exists()  # ignored by git: the clone has segments only
    carried = read_run(clone).events
    assert [e.to_json() for e in carried] == [e.to_json() for e in events]
    assert events[-1].kind == "launch.finished"
    # each segment is added by exactly one commit, and holds the events written before it
    for sha in git(clone, "rev-list", "HEAD").split():
        added = [p for p in git(clone, "show", "--name-only", "--format=", "--diff-filter=A", sha).split()
                 if p.startswith("journal/") and p.endswith(".jsonl")]
        assert len(added) <= 1
        if added:
            commit_time = int(git(clone, "show", "-s", "--format=%ct", sha))
            seqs = [json.loads(line) for line in git(clone, "show", f"{sha}:{added[0]}").splitlines()]
            assert all(e["ts"] <= commit_time + 1 for e in seqs)
    # every LLM exchange, edit and run reaches the history
    kinds = {e.kind for e in carried}
    assert {"llm.request", "llm.response", "edit.applied", "edit.failed", "run.started",
            "run.finished", "stage.started", "stage.finished"} <= kinds


def test_timeline_lists_every_step_with_metrics_tokens_and_cost(toy_run, clone):
    proc = replay(str(clone))
    assert proc.returncode == 0, proc.stderr
    commits = git(clone, "rev-list", "--count", "HEAD").strip()
    assert f"{commits} steps" in proc.stdout and "a clone" in proc.stdout
    lines = proc.stdout.splitlines()
    results = next(line for line in lines if "run 1 results" in line)
    assert "final_loss" in results and "steps_to_tol 16 (-7)" in results  # value and delta vs baseline
    plan = next(line for line in lines if "plan and run 1" in line)
    assert "$0.00" in plan and any(ch.isdigit() for ch in plan.split("$")[0][-12:])  # tokens, cost
    assert lines[-3].strip().startswith(commits)  # the last step: the journal's final commit


def test_step_shows_the_llm_reply_and_the_commits_diff(clone):
    timeline = replay(str(clone)).stdout
    n = next(line.split()[0] for line in timeline.splitlines() if "fix run 2" in line)
    proc = replay(str(clone), "--step", n)
    assert proc.returncode == 0, proc.stderr
    assert "raise RuntimeError('boom: planted crash')" in proc.stdout  # the reply's SEARCH block
    assert "--- diff ---" in proc.stdout and "\n-    raise RuntimeError" in proc.stdout
    bad = replay(str(clone), "--step", "999")
    assert bad.returncode == 2 and "no step 999" in bad.stderr


def test_verify_reproduces_every_run_and_records_it_in_the_history(clone):
    proc = replay(str(clone), "--verify")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for run in (0, 1, 2):
        assert f"run_{run}: reproduced (max |diff| 0;" in proc.stdout
    finished = [e for e in read_run(clone).events if e.kind == "verify.finished"]
    assert finished and finished[-1].data["ok"] is True
    assert {r["status"] for r in finished[-1].data["runs"]} == {"reproduced"}
    assert git(clone, "log", "-1", "--format=%s").startswith("replay: verify")
    assert "verify.finished" in git(clone, "show", "HEAD")  # in the history, not only on disk
    assert not git(clone, "worktree", "list").strip().count("\n")  # the scratch worktree is gone


def test_verify_catches_a_tampered_final_info(clone):
    path = clone / "run_1" / "final_info.json"
    info = json.loads(path.read_text())
    info["metrics"]["final_loss"] = info["metrics"]["final_loss"] / 2  # a better number, by hand
    path.write_text(json.dumps(info, indent=2))
    git(clone, "commit", "-qam", "experiment: run 1 results (edited)")
    proc = replay(str(clone), "--verify", "run_1", "run_2")
    assert proc.returncode == 5, proc.stdout + proc.stderr
    assert "run_1: DIFFERS: final_loss" in proc.stdout and "run_2: reproduced" in proc.stdout
    last = [e for e in read_run(clone).events if e.kind == "verify.finished"][-1]
    assert last.data["ok"] is False
    assert [r["status"] for r in last.data["runs"]] == ["differs", "reproduced"]
    unknown = replay(str(clone), "--verify", "run_9")
    assert unknown.returncode == 2 and "run_9" in unknown.stderr and "run_0, run_1, run_2" in unknown.stderr


def test_verify_of_named_seeds_compares_their_own_values_and_refuses_a_seed_the_run_lacks(clone):
    proc = replay(str(clone), "--verify", "run_1", "--seeds", "0")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "run_1: reproduced" in proc.stdout and "(seeds 0 only)" in proc.stdout
    absent = replay(str(clone), "--verify", "run_1", "--seeds", "5")
    assert absent.returncode == 5 and "none of seeds 5 is a seed of this launch (seeds 0)" in absent.stdout
    bad = replay(str(clone), "--verify", "run_1", "--seeds", "one")
    assert bad.returncode == 2 and "not a comma-separated list of seed numbers" in bad.stderr
    alone = replay(str(clone), "--seeds", "0")
    assert alone.returncode == 2 and "--seeds goes with --verify" in alone.stderr


@pytest.mark.slow
def test_rebuild_replays_the_replies_into_the_same_history(clone, tmp_path):
    proc = replay(str(clone), "--rebuild", str(tmp_path / "rebuilt"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "the histories agree" in proc.stdout
    rebuilt = only_run_dir(tmp_path / "rebuilt")
    assert json.loads((rebuilt / "run_2" / "final_info.json").read_text())["metrics"] == \
        json.loads((clone / "run_2" / "final_info.json").read_text())["metrics"]
    last = [e for e in read_run(clone).events if e.kind == "rebuild.finished"][-1]
    assert last.data["same"] is True and last.data["dir"] == str(rebuilt)


@pytest.mark.slow
def test_rebuild_names_the_first_step_where_the_histories_part(clone, tmp_path):
    # a history rewritten by hand: the run 2 fix commit now also adds a file no reply wrote
    timeline = replay(str(clone)).stdout
    fix = next(line.split()[4] for line in timeline.splitlines() if "fix run 2" in line)
    git(clone, "checkout", "-q", fix)
    (clone / "planted.txt").write_text("a sentence nobody's reply wrote\n")
    git(clone, "add", "planted.txt")
    git(clone, "commit", "-q", "--amend", "--no-edit")
    git(clone, "rebase", "-q", "--onto", "HEAD", fix, "main")
    proc = replay(str(clone), "--rebuild", str(tmp_path / "rebuilt"))
    assert proc.returncode == 5, proc.stdout + proc.stderr
    n = next(line.split()[0] for line in timeline.splitlines() if "fix run 2" in line)
    assert f"the histories part: step {n} of the recorded history ('experiment: fix run 2" in proc.stdout
    assert "files changed differ (only recorded: ['planted.txt']" in proc.stdout


def test_replay_refuses_a_folder_that_is_not_a_run(tmp_path):
    proc = replay(str(tmp_path))
    assert proc.returncode == 2 and "not a run directory" in proc.stderr


@pytest.mark.slow
def test_a_tiny_preset_run_reproduces_exactly_and_a_tampered_record_is_caught(tiny_main_job, tmp_path):
    """The real template: seed 1 of run 1 re-trained and re-evaluated at the run's commit (with
    the thread count it had beside its two siblings), with no tolerance at all. Its recorded
    value was raised by hand: that value, and only that one, differs; every other value of
    the seed is reproduced bit for bit, with the same weights. (All seeds and the means are
    re-executed on the toy template in test_replay_cli.)"""
    _, run_dir = tiny_main_job
    dest = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(run_dir), str(dest))
    path = dest / "run_1" / "final_info.json"
    info = json.loads(path.read_text())
    recorded = info["seeds"]["values"]["explained_variance"][1]
    info["seeds"]["values"]["explained_variance"][1] = recorded + 0.01
    path.write_text(json.dumps(info, indent=2))
    git(dest, "commit", "-qam", "experiment: run 1 results (a better seed)")
    proc = replay(str(dest), "--verify", "run_1", "--seeds", "1", "--rtol", "0", "--atol", "0", timeout=1200)
    assert proc.returncode == 5, proc.stdout + proc.stderr
    (line,) = [ln.strip() for ln in proc.stdout.splitlines() if ln.strip().startswith("run_1: ")]
    assert line.startswith("run_1: DIFFERS: ") and line.count(" -> ") == 1, line
    assert "explained_variance[seed 1]" in line and f"-> {recorded!r}" in line, line
    finished = [json.loads(x) for x in (dest / "journal.jsonl").read_text().splitlines()
                if '"verify.finished"' in x][-1]["data"]
    assert finished["seeds"] == [1] and finished["runs"][0]["max_abs_diff"] == pytest.approx(0.01)


@pytest.mark.slow
def test_a_stopped_launch_commits_its_last_events_too(tmp_path):
    """A launch that stops (here: the recording runs out) ends with a journal commit: a clone
    shows why it stopped, and --resume continues from there."""
    templates = tmp_path / "templates"
    shutil.copytree(TOY_TEMPLATES, templates)
    from tests.e2e_helpers import TOY_KINDS, TOY_SESSION

    write_session(templates / "toy_template" / "ideas" / "toy_idea.session.jsonl", TOY_SESSION[:2], TOY_KINDS[:2])
    proc = cli("--idea", "toy_idea", "--max-runs", "3", "--stages", "experiment", "--templates-dir",
               str(templates), "--runs-dir", str(tmp_path / "runs"), "--quiet")
    assert proc.returncode == 5, proc.stderr
    run_dir = only_run_dir(tmp_path / "runs")
    assert not git(run_dir, "status", "--porcelain")
    assert git(run_dir, "log", "-1", "--format=%s").startswith("journal: launch stopped (ReplayDiverged")
    git(tmp_path, "clone", "-q", str(run_dir), str(tmp_path / "clone"))
    assert read_run(tmp_path / "clone").events[-1].kind == "launch.stopped"
    timeline = replay(str(tmp_path / "clone"))
    assert timeline.returncode == 0 and "stopped: ReplayDiverged" in timeline.stdout


def test_a_rebuild_ignores_timings_and_archive_hashes_of_any_template_but_not_values_or_weights():
    """Two executions of the same code differ in their timings (`train_s`, `ms_per_step`) and the
    bytes of their exported archives (hashed under each template's contract keys,
    `encode_sha256`, `denoiser_moons_sha256`); the values, the evaluated weights' hash and the
    harness's hash must still agree."""
    from agent.rebuild import _json_difference

    a = {"metrics": {"kl_mean": 0.7}, "training": {"seed_0": {"circle": {"ms_per_step": 3.6, "train_s": 1.7,
                                                                         "final_loss": 0.63}}},
         "provenance": {"denoiser_moons_sha256": "aa", "encode_sha256": "bb", "weights_sha256": "w",
                        "harness_sha256": "h"}}
    b = json.loads(json.dumps(a))
    b["training"]["seed_0"]["circle"].update(ms_per_step=3.9, train_s=2.0)
    b["provenance"].update(denoiser_moons_sha256="cc", encode_sha256="dd")
    assert _json_difference(a, b, "", 0.0, 0.0) is None
    for path, value in ((("metrics", "kl_mean"), 0.71), (("provenance", "weights_sha256"), "x"),
                        (("provenance", "harness_sha256"), "x"),
                        (("training", "seed_0", "circle", "final_loss"), 0.64)):
        c = json.loads(json.dumps(a))
        node = c
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
        assert _json_difference(a, c, "", 0.0, 0.0), path
