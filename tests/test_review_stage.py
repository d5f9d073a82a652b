"""The review stage: the paper scored on the NeurIPS form with the integrity report in hand.

The toy run is written once (experiment, plot, writeup); each test reviews a copy of it with
`--resume RUN --stages review`, replaying review replies through the real CLI.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from agent import integrity
from agent.journal import Journal, read
from agent.review import FIELDS, SCHEMA, check
from agent.workspace import Workspace
from tests.e2e_helpers import (
    REVIEW,
    REVIEW_FORM,
    TOY_KINDS_WITH_PLOT,
    TOY_SESSION_WITH_PLOT,
    TOY_TEMPLATES,
    cli,
    only_run_dir,
    review_reply,
    write_session,
    writeup_replies,
)
from tests.test_paper_prompts import PROMPTS, _documented, _env

needs_pdflatex = pytest.mark.skipif(shutil.which("pdflatex") is None or shutil.which("pdftotext") is None,
                                    reason="pdflatex and pdftotext (poppler-utils) are needed for the toy paper")
WRITTEN_REPLIES = [*TOY_SESSION_WITH_PLOT, *writeup_replies()[0]]
WRITTEN_KINDS = [*TOY_KINDS_WITH_PLOT, *writeup_replies()[1]]
VERIFY_DIFFERS = {
    "ok": False, "rtol": 1e-6, "atol": 1e-9,
    "runs": [{"run": 0, "commit": "a" * 40, "status": "reproduced", "max_abs_diff": 0.0, "differences": [],
              "message": ""},
             {"run": 1, "commit": "b" * 40, "status": "differs", "max_abs_diff": 0.25,
              "differences": [{"metric": "final_loss", "recorded": 0.5, "reproduced": 0.75}],
              "message": "1 metric outside the tolerance"}],
}
ADDRESSED = [{"finding": "F1", "response": "run_1 does not reproduce, so its final loss is not established."}]


# --- the form ----------------------------------------------------------------------------------

def test_a_fenced_form_validates_and_its_scores_are_integers() -> None:
    checked = check(review_reply(Overall=6.0, Decision="Accept"), [])
    assert checked.errors == () and checked.review is not None
    assert list(checked.review.form) == list(FIELDS)
    assert checked.review.overall == 6 and isinstance(checked.review.form["Overall"], int)
    assert checked.review.decision == "Accept" and checked.review.confidence == 4


def test_a_bare_json_object_without_a_fence_is_read_too() -> None:
    assert check("Here it is: " + json.dumps(REVIEW_FORM) + " Thanks.", []).review is not None


@pytest.mark.parametrize(("reply", "expected"), [
    ("Overall 7, accept.", "holds no JSON object"),
    ("```json\n{\"Summary\": \"x\",}\n```", "does not parse: Expecting property name enclosed in double quotes (line 1"),
    ("```json\n[1, 2]\n```", "expected a JSON object, got list"),
])
def test_a_reply_that_is_no_form_says_why(reply: str, expected: str) -> None:
    checked = check(reply, [])
    assert checked.review is None and any(expected in e for e in checked.errors), checked.errors


def test_schema_errors_name_the_field_and_the_rule() -> None:
    form = {k: v for k, v in REVIEW_FORM.items() if k != "Decision"}
    errors = check(review_reply(form, Overall=11, Clarity="3", Verdict="ok",
                                Strengths="good"), []).errors
    assert "Overall: 11 is greater than the maximum of 10" in errors
    assert "Clarity: '3' is not of type 'integer'" in errors
    assert "Strengths: 'good' is not of type 'array'" in errors
    assert "the form: 'Decision' is a required property" in errors
    assert any(e.startswith("the form: Additional properties are not allowed ('Verdict'") for e in errors)
    assert check(review_reply(Decision="Maybe"), []).errors == ("Decision: 'Maybe' is not one of ['Accept', 'Reject']",)
    assert check(review_reply(**{"Ethical Concerns": "no"}), []).errors == (
        "Ethical Concerns: 'no' is not of type 'boolean'",)
    assert set(SCHEMA["required"]) == set(FIELDS)


def test_every_finding_must_be_addressed_once_and_no_other() -> None:
    assert check(review_reply(), ["F1", "F2"]).errors == (
        'Integrity: finding F1 is not addressed; add {"finding": "F1", "response": "..."}',
        'Integrity: finding F2 is not addressed; add {"finding": "F2", "response": "..."}')
    both = [{"finding": "F1", "response": "a"}, {"finding": "F3", "response": "b"},
            {"finding": "F1", "response": "c"}]
    errors = check(review_reply(Integrity=both), ["F1"]).errors
    assert errors == ("Integrity: F3 is not a finding of the integrity report (its findings: F1); remove it",
                      "Integrity: finding F1 is addressed 2 times; address it once")
    assert check(review_reply(Integrity=both[:1]), []).errors == (
        "Integrity: F1 is not a finding of the integrity report (its findings: none: the report has no "
        "findings); remove it",)
    assert check(review_reply(Integrity=[{"finding": "F1"}]), ["F1"]).errors == (
        "Integrity[0]: 'response' is a required property",)


# --- the integrity report ----------------------------------------------------------------------

def test_the_report_numbers_every_problem_of_review_json_and_the_reproduction() -> None:
    written = {
        "gates": {"failing": ["run_2: the loss diverged"], "blocked_paper": False, "allowed_by_flag": True},
        "grounding": {"clean": False, "findings": [
            {"section": "Results", "kind": "number", "text": "0.42", "context": "Momentum reached 0.42.",
             "reason": "matches no result", "closest": ["run_1 final_loss = 0.4312"], "line": 7}]},
        "checks": ["line 9: figure file 'x.png' does not exist"],
        "compile": {"status": "failed", "message": "pdflatex failed", "errors": ["line 3: ! Undefined control sequence."],
                    "chktex": []},
    }
    failed_run = {"run": 2, "commit": "c" * 40, "status": "failed", "max_abs_diff": None, "differences": [],
                  "message": "exit code 1"}
    report = integrity.build(written, {**VERIFY_DIFFERS, "runs": [*VERIFY_DIFFERS["runs"], failed_run]})
    assert report.ids == ["F1", "F2", "F3", "F4", "F5", "F6"]
    assert [f.source for f in report.findings] == ["gates", "grounding", "checks", "compile", "reproduction",
                                                   "reproduction"]
    text = [f.text for f in report.findings]
    assert "run_2: the loss diverged" in text[0] and "--allow-failing-gates" in text[0]
    assert '"0.42"' in text[1] and "Momentum reached 0.42." in text[1] and "run_1 final_loss = 0.4312" in text[1]
    assert "x.png" in text[2] and "Undefined control sequence" in text[3]
    assert "run_1 (commit bbbbbbbbbbbb)" in text[4] and "final_loss recorded 0.5, reproduced 0.75" in text[4]
    assert "run_2" in text[5] and "could not be re-executed" in text[5] and "exit code 1" in text[5]
    assert len(report.context) == 1 and "run_0" in report.context[0] and "Reproduced" in report.context[0]


def test_a_clean_paper_that_was_never_reproduced_has_no_findings_and_says_so() -> None:
    clean = {"gates": {"failing": []}, "grounding": {"findings": []}, "checks": [],
             "compile": {"status": "ok", "message": "", "errors": [], "chktex": []}}
    report = integrity.build(clean, None)
    assert report.findings == () and "not re-executed" in report.context[0]


# --- prompts -----------------------------------------------------------------------------------

PROMPT_SAMPLES = {
    "review_system": {},
    "review_paper": dict(paper_source="pdf", paper="Momentum on a Quadratic Bowl\n1 Introduction ...",
                         findings=[{"id": "F1", "source": "reproduction", "text": "run_1 differs"}],
                         context=["Reproduced: run_0 ..."]),
    "review_fix": dict(errors=["Overall: 11 is greater than the maximum of 10"], finding_ids=["F1"],
                       attempt=1, max_attempts=2),
}


@pytest.mark.parametrize("name", sorted(PROMPT_SAMPLES))
def test_review_prompts_render_with_exactly_their_documented_variables(name: str) -> None:
    import jinja2.meta

    source = (PROMPTS / f"{name}.j2").read_text()
    assert _documented(name) == set(PROMPT_SAMPLES[name])
    assert jinja2.meta.find_undeclared_variables(_env().parse(source)) == set(PROMPT_SAMPLES[name])
    text = _env().get_template(f"{name}.j2").render(**PROMPT_SAMPLES[name])
    assert "{{" not in text and "{%" not in text and len(text) > 300


def test_the_paper_prompt_says_when_the_report_is_empty() -> None:
    empty = _env().get_template("review_paper.j2").render(**{**PROMPT_SAMPLES["review_paper"], "findings": []})
    assert "No integrity findings" in empty and '"Integrity" is an empty list' in empty
    full = _env().get_template("review_paper.j2").render(**PROMPT_SAMPLES["review_paper"])
    assert "F1 (reproduction): run_1 differs" in full and "No integrity findings" not in full


# --- the stage, through the real CLI -----------------------------------------------------------

@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The toy run with its paper written and nothing reviewed (shared; tests review copies)."""
    if shutil.which("pdflatex") is None or shutil.which("pdftotext") is None:
        pytest.skip("pdflatex and pdftotext are needed for the toy paper")
    tmp = tmp_path_factory.mktemp("written")
    session = write_session(tmp / "session.jsonl", WRITTEN_REPLIES, WRITTEN_KINDS)
    proc = cli("--idea", "toy_idea", "--templates-dir", str(TOY_TEMPLATES), "--max-runs", "3", "--quiet",
               "--stages", "experiment,plot,writeup", "--model", f"replay:{session}", "--runs-dir", str(tmp / "runs"))
    assert proc.returncode == 0, proc.stderr + proc.stdout
    return only_run_dir(tmp / "runs")


def _copy(written: Path, tmp_path: Path) -> Path:
    run_dir = tmp_path / "run"
    shutil.copytree(written, run_dir, symlinks=True)
    return run_dir


def _review(run_dir: Path, replies: list[str], kinds: list[str] | None = None,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`--resume RUN --stages review`, the replay answering with the run's own replies, then these."""
    kinds = kinds or ["review.paper", *["review.fix"] * (len(replies) - 1)]
    session = write_session(run_dir.parent / f"session{len(list(run_dir.parent.glob('session*')))}.jsonl",
                            [*WRITTEN_REPLIES, *replies], [*WRITTEN_KINDS, *kinds])
    return cli("--resume", str(run_dir), "--stages", "review", "--model", f"replay:{session}", "--quiet", env=env)


def _requests(run_dir: Path, call_id: str) -> list[dict[str, str]]:
    request = next(e for e in read(run_dir / "journal.jsonl").events
                   if e.kind == "llm.request" and e.data["call_id"] == call_id)
    return request.data["messages"]


def _git(run_dir: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=run_dir, capture_output=True, text=True, check=True).stdout


@pytest.mark.slow
@needs_pdflatex
def test_a_valid_review_is_added_to_review_json_and_committed(written: Path, tmp_path: Path) -> None:
    run_dir = _copy(written, tmp_path)
    before = json.loads((run_dir / "review.json").read_text())
    proc = _review(run_dir, [REVIEW])
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert "review: Overall 2/10 (Reject), confidence 4; 0 integrity findings addressed" in proc.stdout
    after = json.loads((run_dir / "review.json").read_text())
    assert {k: v for k, v in after.items() if k != "llm_review"} == before  # the writeup's report kept
    llm = after["llm_review"]
    assert {k: llm[k] for k in FIELDS} == REVIEW_FORM
    assert llm["model"].startswith("replay:") and llm["findings"] == [] and llm["paper_source"] == "pdf"
    ws = Workspace(run_dir)
    sha = ws.step_commit("review/paper")
    assert sha is not None and not ws.is_dirty()
    assert _git(run_dir, "log", "-1", "--format=%s", sha).strip() == "review: NeurIPS-form review (Overall 2/10, Reject)"
    assert "llm_review" in _git(run_dir, "show", f"{sha}:review.json")
    events = read(run_dir / "journal.jsonl").events
    started = next(e for e in events if e.kind == "review.started")
    assert started.data["paper_source"] == "pdf" and started.data["findings"] == 0
    finished = next(e for e in events if e.kind == "review.finished")
    assert finished.data["scores"]["Overall"] == 2 and finished.data["decision"] == "Reject"
    assert finished.data["findings"] == 0 and finished.data["sha"] == sha
    prompt = _requests(run_dir, "review/paper")[1]["content"]
    assert "Momentum on a Quadratic Bowl" in prompt  # the text of the PDF
    assert "No integrity findings" in prompt and "not re-executed" in prompt


@pytest.mark.slow
@needs_pdflatex
def test_a_malformed_review_goes_back_with_its_validation_errors(written: Path, tmp_path: Path) -> None:
    run_dir = _copy(written, tmp_path)
    malformed = review_reply({k: v for k, v in REVIEW_FORM.items() if k != "Decision"}, Overall=11)
    proc = _review(run_dir, [malformed, REVIEW])
    assert proc.returncode == 0, proc.stderr + proc.stdout
    fix = _requests(run_dir, "review/fix1")
    assert fix[-2] == {"role": "assistant", "content": malformed}
    assert "Overall: 11 is greater than the maximum of 10" in fix[-1]["content"]
    assert "the form: 'Decision' is a required property" in fix[-1]["content"]
    events = read(run_dir / "journal.jsonl").events
    invalid = [e.data for e in events if e.kind == "review.invalid"]
    assert [d["call_id"] for d in invalid] == ["review/paper"] and len(invalid[0]["errors"]) == 2
    assert next(e for e in events if e.kind == "review.finished").data["replies"] == 2
    assert json.loads((run_dir / "review.json").read_text())["llm_review"]["Overall"] == 2


@pytest.mark.slow
@needs_pdflatex
def test_a_differing_reproduction_is_a_finding_the_review_must_address(written: Path, tmp_path: Path) -> None:
    run_dir = _copy(written, tmp_path)
    Journal(run_dir / "journal.jsonl").append("verify.finished", ok=True, rtol=1e-6, atol=1e-9, runs=[])
    Journal(run_dir / "journal.jsonl").append("verify.finished", **VERIFY_DIFFERS)  # the last one counts
    proc = _review(run_dir, [review_reply(Integrity=ADDRESSED)])
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert "1 integrity finding addressed" in proc.stdout
    prompt = _requests(run_dir, "review/paper")[1]["content"]
    assert "F1 (reproduction): run_1 (commit bbbbbbbbbbbb), re-executed at its commit, gives other metrics" in prompt
    assert "final_loss recorded 0.5, reproduced 0.75" in prompt
    assert "Reproduced: run_0 (commit aaaaaaaaaaaa)" in prompt and "No integrity findings" not in prompt
    llm = json.loads((run_dir / "review.json").read_text())["llm_review"]
    assert [f["id"] for f in llm["findings"]] == ["F1"] and llm["findings"][0]["source"] == "reproduction"
    assert llm["Integrity"] == ADDRESSED


@pytest.mark.slow
@needs_pdflatex
def test_a_verify_after_the_review_makes_the_next_resume_review_again_with_its_results(
        written: Path, tmp_path: Path) -> None:
    run_dir = _copy(written, tmp_path)
    assert _review(run_dir, [REVIEW]).returncode == 0
    Journal(run_dir / "journal.jsonl").append("verify.finished", **VERIFY_DIFFERS)
    proc = _review(run_dir, [REVIEW, review_reply(Integrity=ADDRESSED)],
                   kinds=["review.paper", "review.paper"])
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert "1 integrity finding addressed" in proc.stdout
    prompt = _requests(run_dir, "review/round2/paper")[1]["content"]
    assert "F1 (reproduction)" in prompt
    assert json.loads((run_dir / "review.json").read_text())["llm_review"]["Integrity"] == ADDRESSED
    ws = Workspace(run_dir)
    assert ws.step_commit("review/paper") and ws.step_commit("review/paper/round2")
    again = _review(run_dir, [REVIEW, review_reply(Integrity=ADDRESSED)], kinds=["review.paper", "review.paper"])
    assert again.returncode == 0 and "(already done)" in again.stdout  # nothing new: not asked again


@pytest.mark.slow
@needs_pdflatex
def test_a_review_that_ignores_a_finding_is_sent_back_naming_it(written: Path, tmp_path: Path) -> None:
    run_dir = _copy(written, tmp_path)
    Journal(run_dir / "journal.jsonl").append("verify.finished", **VERIFY_DIFFERS)
    proc = _review(run_dir, [REVIEW, review_reply(Integrity=ADDRESSED)])
    assert proc.returncode == 0, proc.stderr + proc.stdout
    fix = _requests(run_dir, "review/fix1")[-1]["content"]
    assert 'Integrity: finding F1 is not addressed; add {"finding": "F1", "response": "..."}' in fix
    assert "exactly these findings, each once: F1" in fix


@pytest.mark.slow
@needs_pdflatex
def test_replies_invalid_beyond_the_bound_fail_clearly_lose_nothing_and_resume(written: Path, tmp_path: Path) -> None:
    run_dir = _copy(written, tmp_path)
    before = (run_dir / "review.json").read_bytes()
    head = Workspace(run_dir).head()
    bad = ["I would accept this paper.", review_reply(Overall=0), review_reply(Decision="Weak accept")]
    proc = _review(run_dir, bad)
    assert proc.returncode == 6, proc.stderr + proc.stdout
    err = " ".join(proc.stderr.split())
    assert "not a valid form after 2 fixes (3 replies)" in err
    assert "Decision: 'Weak accept' is not one of ['Accept', 'Reject']" in err
    assert f"--resume {run_dir} --stages review" in err
    assert (run_dir / "review.json").read_bytes() == before
    ws = Workspace(run_dir)
    assert not ws.is_dirty() and ws.step_commit("review/paper") is None
    assert _git(run_dir, "diff", "--stat", head, "HEAD", "--", ".", ":!journal").strip() == ""
    events = read(run_dir / "journal.jsonl").events
    assert [e.data["call_id"] for e in events if e.kind == "review.invalid"] == [
        "review/paper", "review/fix1", "review/fix2"]
    assert [e.kind for e in events if e.kind in ("review.failed", "launch.stopped")] == [
        "review.failed", "launch.stopped"]
    # Resumed, the stage asks again in a new round (new call ids): the model is not stuck with its replies.
    resumed = _review(run_dir, [*bad, REVIEW], ["review.paper", "review.fix", "review.fix", "review.paper"])
    assert resumed.returncode == 0, resumed.stderr + resumed.stdout
    assert json.loads((run_dir / "review.json").read_text())["llm_review"]["Decision"] == "Reject"
    assert _requests(run_dir, "review/round2/paper")[1]["content"] == _requests(run_dir, "review/paper")[1]["content"]


@pytest.mark.slow
@needs_pdflatex
def test_a_kill_after_the_review_commit_resumes_without_asking_or_committing_again(
        written: Path, tmp_path: Path) -> None:
    run_dir = _copy(written, tmp_path)
    killed = _review(run_dir, [REVIEW], env={"AGENT_TEST_CRASH_AT": "review_committed"})
    assert killed.returncode == -9, killed.stderr
    resumed = cli("--resume", str(run_dir), "--stages", "review", "--quiet")
    assert resumed.returncode == 0, resumed.stderr + resumed.stdout
    events = read(run_dir / "journal.jsonl").events
    assert sum(e.kind == "llm.response" and e.data["stage"] == "review" for e in events) == 1
    assert [e.kind for e in events].count("review.finished") == 1
    subjects = _git(run_dir, "log", "--format=%s").splitlines()
    assert sum(s.startswith("review: NeurIPS-form review") for s in subjects) == 1


@pytest.mark.slow
def test_without_a_paper_the_review_says_what_to_run(tmp_path: Path) -> None:
    session = write_session(tmp_path / "empty.jsonl", [], [])
    proc = cli("--idea", "toy_idea", "--templates-dir", str(TOY_TEMPLATES), "--stages", "review", "--quiet",
               "--model", f"replay:{session}", "--runs-dir", str(tmp_path / "runs"))
    assert proc.returncode == 6, proc.stderr + proc.stdout
    err = " ".join(proc.stderr.split())
    run_dir = only_run_dir(tmp_path / "runs")
    assert "no paper to review" in err and f"--resume {run_dir} --stages writeup,review" in err
    assert not any(e.kind == "llm.request" for e in read(run_dir / "journal.jsonl").events)
