"""The loop with `--executor slurm` against the real one-node cluster (`.ci/slurm-cluster`):
every seed and evaluation a job with its id journaled, a kill -9 of the orchestrator while a
job runs then `--resume` (reattached, never submitted twice), a timeout that cancels the job,
and the real template's seeds and evaluation as jobs."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agent.journal import read
from tests.conftest import REPO
from tests.e2e_helpers import TOY_TEMPLATES, cli, only_run_dir, write_session
from tests.test_slurm import cluster  # noqa: F401 - the session's cluster fixture

pytestmark = pytest.mark.usefixtures("cluster")


def _toy(tmp_path: Path) -> Path:
    root = tmp_path / "templates"
    shutil.copytree(TOY_TEMPLATES, root)
    write_session(root / "toy_template" / "ideas" / "toy_idea.session.jsonl")
    return root


def _events(run_dir: Path, kind: str) -> list[dict]:
    return [e.data for e in read(run_dir / "journal.jsonl").events if e.kind == kind]


def git_status(run_dir: Path) -> str:
    return subprocess.run(["git", "status", "--porcelain"], cwd=run_dir, capture_output=True,
                          text=True, check=True).stdout.strip()


def _squeue(job_id: str) -> str:
    return subprocess.run(["squeue", "-h", "-j", job_id], capture_output=True, text=True).stdout.strip()


@pytest.mark.slow
def test_a_killed_orchestrator_reattaches_to_its_job_and_never_submits_it_twice(tmp_path):
    templates = _toy(tmp_path)
    args = ["--idea", "toy_idea", "--templates-dir", str(templates), "--max-runs", "3",
            "--stages", "experiment", "--runs-dir", str(tmp_path / "runs"), "--quiet", "--executor", "slurm"]
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    proc = subprocess.Popen([sys.executable, "-m", "agent.launch", *args], cwd=REPO,
                            env={**env, "TOY_SLEEP": "8"}, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    run_dir = None
    while time.monotonic() < deadline:
        dirs = [p for p in (tmp_path / "runs").glob("2*") if p.is_dir()] if (tmp_path / "runs").exists() else []
        if dirs and any(e["key"] == "run0/attempt1/seed0" for e in _events(dirs[0], "slurm.submitted")):
            run_dir = dirs[0]
            break
        time.sleep(0.2)
    assert run_dir is not None, "no job was submitted"
    job = next(e["job_id"] for e in _events(run_dir, "slurm.submitted"))
    proc.send_signal(signal.SIGKILL)  # kill -9 while the baseline's job runs
    proc.wait()
    assert _squeue(job), "the job outlives the orchestrator"
    resumed = cli("--resume", str(run_dir), "--quiet", env={"TOY_SLEEP": "8"}, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    reattached = _events(run_dir, "slurm.reattached")
    assert [e["job_id"] for e in reattached] == [job]
    keys = [e["key"] for e in _events(run_dir, "slurm.submitted")]
    assert len(keys) == len(set(keys)), f"a job was submitted twice: {keys}"
    assert json.loads((run_dir / "run_0" / "final_info.json").read_text())["metrics"]
    assert (run_dir / "run_2" / "final_info.json").is_file()


@pytest.mark.slow
def test_a_job_past_the_runs_timeout_is_cancelled_and_said_so(tmp_path):
    templates = _toy(tmp_path)
    proc = cli("--idea", "toy_idea", "--templates-dir", str(templates), "--stages", "experiment",
               "--runs-dir", str(tmp_path / "runs"), "--quiet", "--executor", "slurm", "--timeout", "3",
               env={"TOY_SLEEP": "60"}, timeout=300)
    assert proc.returncode == 3, proc.stderr  # the baseline cannot run: the template is "broken"
    assert "timed out" in proc.stderr
    run_dir = only_run_dir(tmp_path / "runs")
    finished = _events(run_dir, "slurm.finished")
    assert finished and finished[0]["status"] == "timed_out"
    assert not _squeue(finished[0]["job_id"]), "the timed-out job was cancelled"


def test_bad_slurm_options_are_refused_before_anything_is_created(tmp_path):
    templates = _toy(tmp_path)
    proc = cli("--idea", "toy_idea", "--templates-dir", str(templates), "--executor", "slurm",
               "--slurm-sbatch=--export=ALL", "--runs-dir", str(tmp_path / "runs"))
    assert proc.returncode == 2 and "--export" in proc.stderr
    assert not (tmp_path / "runs").exists()


@pytest.mark.slow
def test_the_real_template_runs_its_seeds_and_evaluation_as_slurm_jobs(tmp_path):
    """The smallest launch that proves the path on the real template: its baseline, two seeds
    (the seeds' aggregation and intervals), each seed and the evaluation a job of the cluster,
    the results recorded and committed. The model then ends the stage (so the launch exits 6:
    no run beyond the baseline); a run after it takes the same path, and the stages after the
    experiment run no process through the executor, so they are left to the local tests. On the
    tiny-deep preset: the tiny model's other layer, a quarter of the tiny preset's training steps."""
    session = write_session(tmp_path / "session.jsonl", ["ALL_COMPLETED"], ["experiment.plan"])
    proc = cli("--idea", "orthogonal_sae", "--preset", "tiny-deep", "--executor", "slurm",
               "--model", f"replay:{session}", "--max-runs", "1", "--seeds", "2",
               "--stages", "experiment", "--runs-dir", str(tmp_path / "runs"), "--quiet", timeout=1200)
    assert proc.returncode == 6, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "no result beyond the baseline" in proc.stderr
    run_dir = only_run_dir(tmp_path / "runs")
    submitted = _events(run_dir, "slurm.submitted")
    assert {e["key"] for e in submitted} == {"run0/attempt1/seed0", "run0/attempt1/seed1", "run0/attempt1/evaluator"}
    info = json.loads((run_dir / "run_0" / "final_info.json").read_text())
    assert info["seeds"]["succeeded"] == [0, 1] and info["seeds"]["independent"] is True
    assert 0 < info["metrics"]["explained_variance"] < 1 and info["seeds"]["ci95"]["explained_variance"]
    finished = _events(run_dir, "slurm.finished")
    assert len(finished) == len(submitted) == 3 and all(e["status"] == "ok" for e in finished)
    assert not git_status(run_dir), "everything the jobs wrote is committed"


@pytest.mark.slow
def test_the_second_template_runs_its_seeds_and_evaluation_as_slurm_jobs(tmp_path):
    """2d_diffusion through the same path: its seeds (four denoisers each) and its own evaluator
    (the DDPM sampler run by the harness) as jobs of the cluster, the aggregate's provenance
    naming harness.diffusion.evaluator, everything committed."""
    session = write_session(tmp_path / "session.jsonl", ["ALL_COMPLETED"], ["experiment.plan"])
    proc = cli("--idea", "cosine_noise_schedule", "--preset", "tiny", "--executor", "slurm",
               "--model", f"replay:{session}", "--max-runs", "1", "--seeds", "2",
               "--stages", "experiment", "--runs-dir", str(tmp_path / "runs"), "--quiet", timeout=900)
    assert proc.returncode == 6, proc.stdout[-3000:] + proc.stderr[-3000:]
    run_dir = only_run_dir(tmp_path / "runs")
    submitted = _events(run_dir, "slurm.submitted")
    assert {e["key"] for e in submitted} == {"run0/attempt1/seed0", "run0/attempt1/seed1", "run0/attempt1/evaluator"}
    info = json.loads((run_dir / "run_0" / "final_info.json").read_text())
    assert info["provenance"]["evaluator"] == "harness.diffusion.evaluator"
    assert info["seeds"]["succeeded"] == [0, 1] and info["seeds"]["independent"] is True
    assert info["metrics"]["kl_mean"] > 0 and info["seeds"]["ci95"]["kl_mean"]
    assert all(g["passed"] for g in info["gates"] if g.get("severity", "fail") == "fail")
    finished = _events(run_dir, "slurm.finished")
    assert len(finished) == len(submitted) == 3 and all(e["status"] == "ok" for e in finished)
    assert not git_status(run_dir), "everything the jobs wrote is committed"
