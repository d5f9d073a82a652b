"""The second template's main job on the tiny preset: `python -m agent.launch --idea
dual_scale_denoiser` without credentials replays the idea's reference session through the real
loop, real runs of templates/2d_diffusion (3 seeds each, evaluated by harness.diffusion in a
process of its own) and a real LaTeX build, and ends with a grounded, reviewed paper.

One launch (a few minutes on 2 CPU cores) is shared by every test of this module; tests that
would change the run directory work on a `git clone` of it.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from agent.journal import read, read_run
from agent.results import finished_runs
from agent.runs import provenance_problem
from agent.template import load
from tests.conftest import REPO
from tests.e2e_helpers import cli, only_run_dir

TEMPLATE = REPO / "templates" / "2d_diffusion"
SESSION = TEMPLATE / "ideas" / "dual_scale_denoiser.session.jsonl"
SECTIONS = ("Introduction", "Related Work", "Background", "Method", "Experimental Setup", "Results",
            "Conclusion", "References")
FIGURES = ("metrics.png", "datasets.png", "energy.png")
EVALUATOR = "harness.diffusion.evaluator"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("pdflatex") is None or shutil.which("pdftotext") is None,
                       reason="pdflatex and pdftotext are needed to build and read the paper "
                              "(apt-get install texlive-latex-recommended poppler-utils ...)"),
]


@pytest.fixture(scope="module")
def diffusion_job(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str], Path]:
    """The README's 2d_diffusion main job on the tiny preset, launched once for the module."""
    runs = tmp_path_factory.mktemp("runs_diffusion")
    proc = cli("--idea", "dual_scale_denoiser", "--preset", "tiny", "--runs-dir", str(runs), "--quiet",
               timeout=1800)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc, only_run_dir(runs)


def _paper_text(run_dir: Path) -> str:
    text = subprocess.run(["pdftotext", str(run_dir / "paper.pdf"), "-"], capture_output=True,
                          text=True, check=True).stdout
    return " ".join(text.replace("-\n", "").split())


def _session_kinds() -> list[str]:
    lines = SESSION.read_text(encoding="utf-8").splitlines()
    return [json.loads(line)["prompt_kind"] for line in lines if line.strip() and not line.startswith("//")]


def _review(run_dir: Path) -> dict:
    return json.loads((run_dir / "review.json").read_text(encoding="utf-8"))


def test_the_job_exits_0_and_builds_a_pdf_with_every_section_and_figure(diffusion_job):
    proc, run_dir = diffusion_job
    assert proc.returncode == 0
    assert (run_dir / "paper.pdf").read_bytes().startswith(b"%PDF-")
    review = _review(run_dir)
    assert review["compile"]["status"] == "ok" and not review["compile"]["errors"]
    assert not review["compile"]["chktex"] and not review["checks"]
    raw = subprocess.run(["pdftotext", str(run_dir / "paper.pdf"), "-"], capture_output=True, text=True,
                         check=True).stdout
    for heading in SECTIONS:
        assert re.search(rf"^(\d+\s+)?{heading}\s*$", raw, re.M), f"no '{heading}' heading in the PDF"
    assert "not written yet" not in raw and "??" not in raw
    tex = (run_dir / "latex" / "template.tex").read_text(encoding="utf-8")
    included = set(re.findall(r"\\includegraphics(?:\[[^\]]*\])?\{([^}]*)\}", tex))
    assert included == set(FIGURES)
    for name in included:
        assert (run_dir / name).read_bytes().startswith(b"\x89PNG"), name


def test_the_grounding_checker_finds_nothing_and_no_gate_fails(diffusion_job):
    _, run_dir = diffusion_job
    review = _review(run_dir)
    assert review["grounding"]["findings"] == [] and review["grounding"]["clean"]
    assert review["gates"]["failing"] == [] and not review["gates"]["blocked_paper"]


def test_every_run_has_three_seeds_passes_its_fail_gates_and_its_provenance_verifies(diffusion_job):
    from harness.provenance import harness_sha256

    _, run_dir = diffusion_job
    template = load(TEMPLATE)
    runs = finished_runs(run_dir, template)
    assert [r.index for r in runs] == [0, 1, 2]
    declared = {g["name"] for g in tomllib.loads((TEMPLATE / "template.toml").read_text())["gates"]}
    harness = harness_sha256()
    for run in runs:
        info = json.loads((run_dir / run.name / "final_info.json").read_text(encoding="utf-8"))
        assert run.failing("fail") == [], (run.name, run.failing("fail"))
        assert {g["name"] for g in info["gates"]} == declared and declared, run.name
        seeds = info["seeds"]
        assert seeds["succeeded"] == [0, 1, 2] and seeds["independent"] is True, run.name
        assert all(ci is not None and ci[0] <= run.metrics[m] <= ci[1] for m, ci in seeds["ci95"].items())
        assert info["provenance"]["evaluator"] == EVALUATOR
        assert sorted(info["provenance"]["aggregate_of"]) == ["seed_0", "seed_1", "seed_2"]
        assert provenance_problem(run_dir / run.name, harness, template.contract) is None, run.name
    # Each run changed what its description says, and recorded it.
    config = {r.index: r.config for r in runs}
    assert config[0]["denoiser_class"] == "MLPDenoiser"
    assert config[1]["denoiser_class"] == config[2]["denoiser_class"] == "DualScaleDenoiser"
    assert config[1]["learned_weighting"] is True and config[2]["learned_weighting"] is False
    assert config[1]["local_scale"] == config[2]["local_scale"] == 4.0


def test_every_answer_is_the_reference_sessions_replayed_without_retries(diffusion_job):
    _, run_dir = diffusion_job
    events = read(run_dir / "journal.jsonl").events
    responses = [e for e in events if e.kind == "llm.response"]
    assert responses and all(e.data["replay"] is True for e in responses)
    # No edit retry, run failure, grounding fix or LaTeX fix was needed.
    assert [e.data["prompt_kind"] for e in responses] == _session_kinds()
    assert not any(e.kind in ("edit.failed", "edit.refused") for e in events)


def test_the_hypotheses_were_registered_before_run_1_and_the_paper_states_their_verdicts(diffusion_job):
    _, run_dir = diffusion_job
    subjects = subprocess.run(["git", "log", "--reverse", "--format=%s"], cwd=run_dir, capture_output=True,
                              text=True, check=True).stdout.splitlines()
    registered = next(i for i, s in enumerate(subjects) if s.startswith("experiment: hypotheses registered"))
    run_1 = next(i for i, s in enumerate(subjects) if s.startswith("experiment: run 1 results"))
    assert registered < run_1
    verdicts = json.loads((run_dir / "hypotheses_verdicts.json").read_text())["verdicts"]
    assert [v["id"] for v in verdicts] == ["H1", "H2", "H3"]
    text = _paper_text(run_dir)
    for v in verdicts:
        assert re.search(rf"{v['id']}\b[^.]*?{v['verdict']}", text), v


def test_the_setup_facts_are_those_of_the_records(diffusion_job):
    """What the Experimental Setup says about data, schedule, sampler and training comes from
    run_0's final_info.json (the \\Setup macros of template.toml's [[setup]]), not from the
    session's text: the same session on another preset states that preset's facts."""
    _, run_dir = diffusion_job
    info = json.loads((run_dir / "run_0" / "final_info.json").read_text())
    setup, config = info["setup"], info["config"]
    macros = dict(re.findall(r"\\newcommand\{\\(Setup\w+)\}\{(.*)\\xspace\}",
                             (run_dir / "latex" / "results.tex").read_text(encoding="utf-8")))
    assert macros["SetupPreset"] == r"\texttt{tiny}" and macros["SetupSchedule"] == rf"\texttt{{{setup['beta_schedule']}}}"
    assert macros["SetupDatasets"] == setup["datasets"] == ", ".join(config["datasets"])
    for name, value in (("SetupTrainPoints", setup["n_train"]), ("SetupEvalPoints", setup["n_eval"]),
                        ("SetupGenerated", setup["n_generated"]), ("SetupTimesteps", setup["num_timesteps"]),
                        ("SetupKnnK", setup["knn_k"]), ("SetupSteps", config["num_train_steps"]),
                        ("SetupBatchSize", config["train_batch_size"]), ("SetupHiddenSize", config["hidden_size"]),
                        ("SetupHiddenLayers", config["hidden_layers"])):
        assert macros[name] == f"{value:,}".replace(",", "{,}"), name
    text = _paper_text(run_dir)
    assert "the tiny preset" in text and f"datasets in code: {setup['datasets']}." in text
    assert f"trained on {setup['n_train']:,} points" in text
    assert f"draws {setup['n_eval']:,} held-out points" in text
    assert f"samples {setup['n_generated']:,} points" in text
    assert f"T = {setup['num_timesteps']} steps" in text
    assert f"for {config['num_train_steps']} steps with batches of {config['train_batch_size']} points" in text
    assert f"the sampler is {setup['sampler']}." in text and f"k = {setup['knn_k']}" in text
    assert "8,000" not in text and "1,200 steps" not in text  # the cpu preset's facts


def test_the_paper_is_reviewed_with_its_clean_integrity_report_and_a_report_is_written(diffusion_job):
    _, run_dir = diffusion_job
    llm = _review(run_dir)["llm_review"]
    assert llm["findings"] == [] and llm["Integrity"] == [] and llm["paper_source"] == "pdf"
    assert llm["Decision"] in ("Accept", "Reject") and 1 <= llm["Overall"] <= 10
    report = (run_dir / "report.html").read_text(encoding="utf-8")
    assert all(f"run_{i}" in report for i in (0, 1, 2)) and "dual_scale_denoiser" in report


def test_replay_verify_re_executes_a_seed_of_run_1_and_its_metrics_agree(diffusion_job, tmp_path):
    """Seed 0 of run 1 re-trained and re-evaluated from a clone of the run's repository, at
    the run's commit, with the thread count it had: every value of the seed agrees."""
    _, run_dir = diffusion_job
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(run_dir), str(clone)], check=True, capture_output=True)
    proc = subprocess.run([sys.executable, "-m", "agent.replay", str(clone), "--verify", "run_1", "--seeds", "0"],
                          cwd=REPO, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "run_1: reproduced" in proc.stdout and "(seeds 0 only)" in proc.stdout
    finished = [e for e in read_run(clone).events if e.kind == "verify.finished"][-1]
    assert finished.data["ok"] is True and finished.data["seeds"] == [0]
    assert [r["status"] for r in finished.data["runs"]] == ["reproduced"]
