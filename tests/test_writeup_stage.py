"""The writeup stage on the toy template: results.tex from the runs, sections drafted and
refined, grounding checked, the paper compiled; plausibility gates block a paper. The launches
run every stage, so the paper is then reviewed (tests/test_review_stage.py has the details)."""

from __future__ import annotations

import json
import shutil

import pytest

from agent.journal import read
from tests.e2e_helpers import (
    REVIEW,
    TOY_KINDS_WITH_PLOT,
    TOY_SESSION_WITH_PLOT,
    TOY_TEMPLATES,
    block,
    cli,
    only_run_dir,
    write_session,
    writeup_replies,
)

needs_pdflatex = pytest.mark.skipif(shutil.which("pdflatex") is None, reason="pdflatex is not installed")
ARGS = ["--idea", "toy_idea", "--templates-dir", str(TOY_TEMPLATES), "--max-runs", "3", "--quiet"]


def _session(tmp_path, experiment=TOY_SESSION_WITH_PLOT, kinds=TOY_KINDS_WITH_PLOT):
    replies, wkinds = writeup_replies()
    return write_session(tmp_path / "session.jsonl", [*experiment, *replies, REVIEW],
                         [*kinds, *wkinds, "review.paper"])


@pytest.mark.slow
@needs_pdflatex
def test_writeup_builds_a_grounded_paper_from_the_runs(tmp_path):
    proc = cli(*ARGS, "--model", f"replay:{_session(tmp_path)}", "--runs-dir", str(tmp_path / "runs"))
    assert proc.returncode == 0, proc.stderr + proc.stdout
    run_dir = only_run_dir(tmp_path / "runs")
    results_tex = (run_dir / "latex" / "results.tex").read_text()
    info1 = json.loads((run_dir / "run_1" / "final_info.json").read_text())
    assert f"{info1['metrics']['final_loss']:.4g}" in results_tex  # the macro holds the run's number
    assert "Untrusted: metrics written by the experiment itself" in results_tex  # the toy has no evaluator
    assert (run_dir / "paper.pdf").read_bytes().startswith(b"%PDF-")
    review = json.loads((run_dir / "review.json").read_text())
    assert review["grounding"]["clean"] and review["compile"]["status"] == "ok"
    assert review["llm_review"]["findings"] == [] and review["llm_review"]["paper_source"] == "pdf"
    tex = (run_dir / "latex" / "template.tex").read_text()
    assert "\\writeupstub" not in tex.split("\\begin{document}")[1]
    events = read(run_dir / "journal.jsonl").events
    assert [e.data["part"] for e in events if e.kind == "writeup.checked" and e.data["after"] == "draft"] == [
        "Title and Abstract", "Introduction", "Background", "Method", "Experimental Setup", "Results",
        "Conclusion", "Related Work"]
    import subprocess

    text = subprocess.run(["pdftotext", str(run_dir / "paper.pdf"), "-"], capture_output=True, text=True).stdout
    for heading in ("Introduction", "Related Work", "Background", "Method", "Experimental Setup", "Results",
                    "Conclusion", "References"):
        assert heading in text
    assert "Momentum on a Quadratic Bowl" in text


@pytest.mark.slow
def test_failing_gates_block_the_paper_unless_allowed(tmp_path):
    # Run 1 diverges (lr 1.5): it fails the toy template's "converged" gate.
    diverge = ("Run 1: step size 1.5\n" + block("experiment.py", "    lr: float = 0.1  # step size\n",
                                                "    lr: float = 1.5  # step size\n"))
    done = "ALL_COMPLETED"
    plot = TOY_SESSION_WITH_PLOT[-2:]
    session = _session(tmp_path, [diverge, done, *plot],
                       ["experiment.plan", "experiment.results", "plot.edit", "plot.describe"])
    proc = cli(*ARGS, "--model", f"replay:{session}", "--runs-dir", str(tmp_path / "runs"))
    assert proc.returncode == 6, proc.stderr
    assert "plausibility gates" in proc.stderr and "diverged" in proc.stderr
    run_dir = only_run_dir(tmp_path / "runs")
    review = json.loads((run_dir / "review.json").read_text())
    assert review["gates"]["blocked_paper"] and review["gates"]["failing"]
    assert not (run_dir / "paper.pdf").exists()


@pytest.mark.slow
@needs_pdflatex
def test_a_kill_during_the_paper_compile_resumes_to_the_same_paper(tmp_path):
    """kill -9 right after pdflatex started: resume stops whatever it left, compiles again,
    and journals each compile attempt once."""
    import signal

    from agent.workspace import Workspace

    session = _session(tmp_path)
    runs = tmp_path / "runs"
    proc = cli(*ARGS, "--model", f"replay:{session}", "--runs-dir", str(runs),
               env={"AGENT_TEST_CRASH_AT": "latex_started:2"})
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    run_dir = only_run_dir(runs)
    assert not (run_dir / "paper.pdf").exists()
    resumed = cli("--resume", str(run_dir), "--quiet")
    assert resumed.returncode == 0, resumed.stderr + resumed.stdout
    assert (run_dir / "paper.pdf").read_bytes().startswith(b"%PDF-")
    review = json.loads((run_dir / "review.json").read_text())
    assert review["grounding"]["clean"] and review["compile"]["status"] == "ok"
    events = read(run_dir / "journal.jsonl").events
    compiled = [e.data["attempt"] for e in events if e.kind == "writeup.compiled"]
    assert len(compiled) == len(set(compiled)) >= 1
    checked = [(e.data["part"], e.data["after"]) for e in events if e.kind == "writeup.checked"]
    assert len(checked) == len(set(checked))
    ws = Workspace(run_dir)
    assert ws.is_linear() and not ws.is_dirty()
    assert [e.data["stage"] for e in events if e.kind == "stage.finished"] == ["experiment", "plot", "writeup",
                                                                               "review"]
