"""The main job of the README on the tiny preset: `python -m agent.launch --idea orthogonal_sae`
without credentials replays the idea's reference session through the real loop, real runs and
a real LaTeX build, and ends with a paper whose numbers all trace to the runs.

One launch (a few minutes on 2 CPU cores) is shared by every test of this module.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from agent.journal import read
from agent.results import finished_runs
from agent.template import load
from tests.conftest import REPO
from tests.e2e_helpers import cli, only_run_dir

TEMPLATE = REPO / "templates" / "sae_variants"
SESSION = TEMPLATE / "ideas" / "orthogonal_sae.session.jsonl"
SECTIONS = ("Introduction", "Related Work", "Background", "Method", "Experimental Setup", "Results",
            "Conclusion", "References")
FIGURES = ("metrics.png", "frontier.png", "geometry.png")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("pdflatex") is None,
                       reason="pdflatex is not installed, so the main job cannot build its paper "
                              "(apt-get install texlive-latex-recommended texlive-latex-extra ...)"),
]


def _session_kinds() -> list[str]:
    lines = SESSION.read_text(encoding="utf-8").splitlines()
    return [json.loads(line)["prompt_kind"] for line in lines if line.strip() and not line.startswith("//")]


@pytest.fixture(scope="module")
def main_job(tiny_main_job: tuple[subprocess.CompletedProcess[str], Path]) -> tuple[subprocess.CompletedProcess[str], Path]:
    return tiny_main_job


def test_main_job_exits_0_and_builds_a_pdf(main_job):
    proc, run_dir = main_job
    assert proc.returncode == 0
    assert (run_dir / "paper.pdf").read_bytes().startswith(b"%PDF-")
    review = json.loads((run_dir / "review.json").read_text(encoding="utf-8"))
    assert review["compile"]["status"] == "ok" and not review["compile"]["errors"]
    assert not review["compile"]["chktex"] and not review["checks"]


@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="pdftotext (poppler-utils) is not installed")
def test_the_paper_has_every_section(main_job):
    _, run_dir = main_job
    text = subprocess.run(["pdftotext", str(run_dir / "paper.pdf"), "-"], capture_output=True, text=True,
                          check=True).stdout
    for heading in SECTIONS:
        assert re.search(rf"^(\d+\s+)?{heading}\s*$", text, re.M), f"no '{heading}' heading in the PDF"
    assert "not written yet" not in text and "??" not in text


def test_the_paper_includes_the_figures_plot_py_made(main_job):
    _, run_dir = main_job
    tex = (run_dir / "latex" / "template.tex").read_text(encoding="utf-8")
    included = set(re.findall(r"\\includegraphics(?:\[[^\]]*\])?\{([^}]*)\}", tex))
    assert set(FIGURES) <= included
    for name in included:
        assert (run_dir / name).read_bytes().startswith(b"\x89PNG"), name


def test_the_grounding_checker_finds_nothing(main_job):
    _, run_dir = main_job
    review = json.loads((run_dir / "review.json").read_text(encoding="utf-8"))
    assert review["grounding"]["findings"] == [] and review["grounding"]["clean"]
    assert review["gates"]["failing"] == [] and not review["gates"]["blocked_paper"]


def test_every_run_passes_its_fail_gates_and_records_the_method(main_job):
    _, run_dir = main_job
    runs = finished_runs(run_dir, load(TEMPLATE))
    assert [r.index for r in runs] == [0, 1, 2, 3, 4]
    import tomllib

    declared = {g["name"] for g in tomllib.loads((TEMPLATE / "template.toml").read_text())["gates"]}
    for run in runs:
        assert run.failing("fail") == [], (run.name, run.failing("fail"))
        info = json.loads((run_dir / run.name / "final_info.json").read_text(encoding="utf-8"))
        # every gate the template declares was evaluated (none silently missing), the fail ones passed
        assert {g["name"] for g in info["gates"]} == declared and declared, run.name
        assert all(g["passed"] for g in info["gates"] if g["severity"] == "fail")
    # The method's settings are recorded, the harness measured the SAE's own groups, and each
    # run changed what its description says.
    config = {r.index: r.config for r in runs}
    for i in (1, 2, 3, 4):
        for key in ("ortho_penalty_max", "ortho_warmup_frac", "alpha", "n_groups", "group_bias"):
            assert key in config[i], (i, key)
        measured = json.loads((run_dir / f"run_{i}" / "final_info.json").read_text())["measurements"]
        assert sorted(measured) == ["seed_0", "seed_1", "seed_2"]  # three seeds, each measured
        for groups in (m["groups"] for m in measured.values()):
            assert groups["source"].startswith("sae.groups()") and groups["count"] == config[i]["n_groups"]
    assert (config[1]["alpha"], config[2]["alpha"], config[3]["alpha"]) == (0.0, 0.1, 0.0)
    assert config[1]["ortho_warmup_frac"] > 0 and config[3]["ortho_warmup_frac"] == 0
    assert config[4]["ortho_penalty_max"] == 0 and config[1]["ortho_penalty_max"] > 0


def test_every_answer_is_the_reference_sessions_replayed_without_retries(main_job):
    _, run_dir = main_job
    events = read(run_dir / "journal.jsonl").events
    responses = [e for e in events if e.kind == "llm.response"]
    assert responses and all(e.data["replay"] is True for e in responses)
    # No edit retry, run failure, grounding fix or LaTeX fix was needed: the loop asked exactly
    # the prompts the session answers, in order.
    assert [e.data["prompt_kind"] for e in responses] == _session_kinds()
    assert not any(e.kind in ("edit.failed", "edit.refused") for e in events)


def test_every_run_has_three_seeds_and_the_hypotheses_were_registered_before_run_1(main_job):
    _, run_dir = main_job
    for run in finished_runs(run_dir, load(TEMPLATE)):
        seeds = run.raw["seeds"]
        assert seeds["succeeded"] == [0, 1, 2] and seeds["independent"] is True, run.name
        assert all(ci is not None and ci[0] <= run.metrics[m] <= ci[1] for m, ci in seeds["ci95"].items())
    subjects = subprocess.run(["git", "log", "--reverse", "--format=%s"], cwd=run_dir, capture_output=True,
                              text=True, check=True).stdout.splitlines()
    registered = next(i for i, s in enumerate(subjects) if s.startswith("experiment: hypotheses registered"))
    run_1 = next(i for i, s in enumerate(subjects) if s.startswith("experiment: run 1 results"))
    assert registered < run_1
    doc = json.loads((run_dir / "hypotheses.json").read_text())
    assert [h["id"] for h in doc["hypotheses"]] == ["H1", "H2", "H3", "H4"] and doc["problem"] is None
    verdicts = json.loads((run_dir / "hypotheses_verdicts.json").read_text())["verdicts"]
    assert [v["id"] for v in verdicts] == ["H1", "H2", "H3", "H4"]
    assert {v["verdict"] for v in verdicts} <= {"supported", "refuted", "inconclusive"}
    text = _paper_text(run_dir)
    assert "Pre-registered hypotheses" in text
    for v in verdicts:  # the paper states each verdict the code decided, next to its id
        assert re.search(rf"{v['id']}\b[^.]*?{v['verdict']}", text), v


@pytest.fixture(scope="module")
def deep_job(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same session on another preset (another layer of the tiny model, fewer tokens) with
    one seed: no interval anywhere, so no verdict, and the paper must still say only that. Not
    reviewed: a gate failing here would be an integrity finding the session's review (written
    for the clean main job) does not address."""
    runs = tmp_path_factory.mktemp("runs_deep")
    proc = cli("--idea", "orthogonal_sae", "--preset", "tiny-deep", "--runs-dir", str(runs),
               "--quiet", "--allow-failing-gates", "--seeds", "1", "--stages", "experiment,plot,writeup",
               timeout=1800)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return only_run_dir(runs)


def test_with_one_seed_the_paper_claims_no_verdict_and_the_checker_accepts_it(deep_job):
    review = json.loads((deep_job / "review.json").read_text(encoding="utf-8"))
    assert review["grounding"]["findings"] == [] and review["grounding"]["clean"]
    verdicts = json.loads((deep_job / "hypotheses_verdicts.json").read_text())["verdicts"]
    assert {v["verdict"] for v in verdicts} == {"inconclusive"}  # no interval from one seed
    text = _paper_text(deep_job)
    assert "no interval (1 seed)" in text and "verdict: better" not in text and "verdict: worse" not in text


def _paper_text(run_dir: Path) -> str:
    text = subprocess.run(["pdftotext", str(run_dir / "paper.pdf"), "-"], capture_output=True,
                          text=True, check=True).stdout
    return " ".join(text.replace("-\n", "").split())


def _assert_setup_facts_of(preset: str, run_dir: Path) -> None:
    """The setup section of one session, written for two presets: model, layer, data, token
    counts, sizes, seed and gate results come from each run directory's own records."""
    from harness.sae.presets import DATASET_LABELS, MODEL_LABELS, PRESETS

    text = _paper_text(run_dir)
    info = json.loads((run_dir / "run_0" / "final_info.json").read_text())
    p = PRESETS[preset]
    assert f"after block {p.layer}," in text, preset
    other = PRESETS["tiny-deep" if preset == "tiny" else "tiny"]
    assert f"after block {other.layer}," not in text, preset
    assert MODEL_LABELS[p.model] in text and DATASET_LABELS[p.dataset].split(" (")[0] in text
    assert f"{preset} preset" in text
    assert f"trained on {info['config']['tokens']:,} activations" in text
    assert f"evaluated on {info['evaluation']['reconstruction_tokens']:,} held-out tokens" in text
    assert f"dictionary of {info['config']['d_sae']:,} latents" in text
    infos = [json.loads(f.read_text()) for f in sorted(run_dir.glob("run_*/final_info.json"))]
    failed = [g["name"] for i in infos for g in i["gates"] if g["passed"] is False and g["severity"] == "fail"]
    if failed:
        assert all(name.replace("_", " ") in text.replace("_", " ") for name in failed)
    else:
        assert "pass every plausibility gate" in text
    assert "Shakespeare text, with special tokens" not in text  # the old hand-typed fact


# One test per paper, so that each runs beside its own launch (they are made on different
# pytest-xdist workers, each once).
def test_the_main_papers_setup_facts_are_those_of_its_preset(main_job):
    _assert_setup_facts_of("tiny", main_job[1])


def test_the_deep_papers_setup_facts_are_those_of_its_preset(deep_job):
    _assert_setup_facts_of("tiny-deep", deep_job)


def test_the_paper_is_reviewed_with_its_clean_integrity_report_in_hand(main_job):
    _, run_dir = main_job
    llm = json.loads((run_dir / "review.json").read_text(encoding="utf-8"))["llm_review"]
    assert llm["findings"] == [] and llm["Integrity"] == [] and llm["paper_source"] == "pdf"
    assert llm["Decision"] in ("Accept", "Reject") and 1 <= llm["Overall"] <= 10
    subject = subprocess.run(["git", "log", "--format=%s", "--grep", "^review: "], cwd=run_dir,
                             capture_output=True, text=True, check=True).stdout.split("\n")[0]
    assert subject == f"review: NeurIPS-form review (Overall {llm['Overall']}/10, {llm['Decision']})"
