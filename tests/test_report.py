"""`python -m agent.report RUN` on the toy template through the real CLI: one static page with
every section, from a run directory or a clone of its repository, that escapes what the LLM
wrote, says when a launch stopped or was killed, and shows reproduction, rebuild, secrets,
sandbox and the paper's review in its integrity panel."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

from agent import report, report_steps
from agent.journal import JOURNAL_NAME, Journal, read
from tests.conftest import REPO
from tests.e2e_helpers import (
    PLOT_DESCRIBE,
    PLOT_EDIT,
    TOY_KINDS,
    TOY_KINDS_WITH_PLOT,
    TOY_SESSION,
    TOY_TEMPLATES,
    cli,
    only_run_dir,
    write_session,
)

PLANTED = "<script>document.title='pwned'</script><img src=x onerror=\"document.title='pwned'\">"
# The last experiment reply carries markup a browser would run if it were not escaped.
SESSION = [*TOY_SESSION[:-1], f"Done. {PLANTED}\n" + TOY_SESSION[-1], PLOT_EDIT, PLOT_DESCRIBE]
ARGS = ["--idea", "toy_idea", "--templates-dir", str(TOY_TEMPLATES), "--max-runs", "3", "--quiet"]
SECTIONS = ("top", "integrity", "overview", "cost", "metrics", "figures", "configs", "hypotheses",
            "notes", "paper", "timeline")


def make_report(run_dir: Path) -> tuple[subprocess.CompletedProcess[str], str]:
    proc = subprocess.run([sys.executable, "-m", "agent.report", str(run_dir)], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    page = run_dir / "report.html"
    return proc, page.read_text(encoding="utf-8") if page.exists() else ""


class _Page(HTMLParser):
    """Ids, internal links, images and script tags of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.duplicate_ids: list[str] = []
        self.links: list[str] = []
        self.images: list[str] = []
        self.scripts = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if a.get("id"):
            if a["id"] in self.ids:
                self.duplicate_ids.append(a["id"] or "")
            self.ids.add(a["id"] or "")
        if tag == "a" and (a.get("href") or "").startswith("#"):
            self.links.append((a["href"] or "")[1:])
        if tag == "img":
            self.images.append(a.get("src") or "")
        if tag == "script":
            self.scripts += 1


def parse(html: str) -> _Page:
    page = _Page()
    page.feed(html)
    return page


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished toy launch (experiment and plot stages, one crash and a failed edit)."""
    tmp = tmp_path_factory.mktemp("report")
    session = write_session(tmp / "session.jsonl", SESSION, TOY_KINDS_WITH_PLOT)
    proc = cli(*ARGS, "--stages", "experiment,plot", "--model", f"replay:{session}",
               "--runs-dir", str(tmp / "runs"))
    assert proc.returncode == 0, proc.stderr
    return only_run_dir(tmp / "runs")


@pytest.fixture
def run_copy(toy_run: Path, tmp_path: Path) -> Path:
    """A copy of the toy run directory (journal included) a test may change."""
    copy = tmp_path / toy_run.name
    shutil.copytree(toy_run, copy, symlinks=True)
    return copy


@pytest.mark.slow
def test_the_cli_writes_one_page_with_every_section_and_prints_its_size(run_copy):
    proc, html = make_report(run_copy)
    assert proc.returncode == 0, proc.stderr
    assert str(run_copy / "report.html") in proc.stdout and "KiB" in proc.stdout
    page = parse(html)
    for section in SECTIONS:
        assert section in page.ids, section
    steps = [line for line in subprocess.run(["git", "-C", str(run_copy), "rev-list", "HEAD"],
                                             capture_output=True, text=True).stdout.split()]
    assert {f"step-{n}" for n in range(1, len(steps) + 1)} <= page.ids
    assert {f"step-{n}" for n in range(1, len(steps) + 1)} <= set(page.links), "the contents list every step"
    assert set(page.links) <= page.ids, "an internal link points nowhere"
    assert not page.duplicate_ids
    assert page.images and all(src.startswith("data:image/png;base64,") for src in page.images)
    for text in ("Momentum on a quadratic bowl", "REPLAY", "Final loss", "run 2", "momentum", "0.9",
                 "H1", "inconclusive", "Analysis of run 1", "1/1 pass",
                 "RuntimeError: boom: planted crash", "an edit block did not apply", "No paper.pdf",
                 'class="gi"', "<details class=\"step\""):
        assert text in html, text
    assert "http://" not in html.replace("http://www.w3.org", "") and "https://" not in html
    assert "<link" not in html and 'src="http' not in html


@pytest.mark.slow
def test_a_planted_script_in_a_reply_is_escaped(run_copy):
    _, html = make_report(run_copy)
    assert "&lt;script&gt;document.title=" in html
    assert "<script>document.title" not in html and "<img src=x" not in html
    assert parse(html).scripts == 1, "only the page's own script"


def test_the_report_of_a_clone_with_the_original_deleted(run_copy, tmp_path):
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(run_copy), str(clone)], check=True)
    shutil.rmtree(run_copy)
    proc, html = make_report(clone)
    assert proc.returncode == 0, proc.stderr
    assert not (clone / JOURNAL_NAME).exists()
    assert "a clone of the run repository" in html
    # The journal came from the committed segments: replies, stages and the ending are there.
    assert "&lt;script&gt;document.title=" in html and "experiment.plan" in html
    assert "LLM replies (" in html and "0.1112" in html and ">finished<" in html


def test_a_folder_that_is_not_a_run_directory_exits_2(tmp_path):
    proc, html = make_report(tmp_path)
    assert proc.returncode == 2 and "not a run directory" in proc.stderr
    assert not html and "Traceback" not in proc.stderr


@pytest.mark.slow
def test_a_launch_stopped_by_a_diverging_replay_gets_a_report_that_says_so(tmp_path):
    kinds = ["experiment.plan", "experiment.results", *TOY_KINDS[2:]]  # step 2 recorded as another kind
    session = write_session(tmp_path / "s.jsonl", TOY_SESSION, kinds)
    proc = cli(*ARGS, "--stages", "experiment", "--model", f"replay:{session}", "--runs-dir", str(tmp_path / "runs"))
    assert proc.returncode == 5, proc.stderr
    run_dir = only_run_dir(tmp_path / "runs")
    proc, html = make_report(run_dir)
    assert proc.returncode == 0, proc.stderr
    assert "STOPPED" in html and "ReplayDiverged" in html and "(exit 5)" in html
    assert "partial run" in html and "--resume" in html
    assert "baseline (run_0)" in html  # what exists is shown
    assert "not reached" in html or "not finished" in html
    page = parse(html)
    assert set(page.links) <= page.ids


@pytest.mark.slow
def test_a_killed_launch_gets_a_report_with_its_uncommitted_events(tmp_path):
    session = write_session(tmp_path / "s.jsonl")
    proc = cli(*ARGS, "--stages", "experiment", "--model", f"replay:{session}", "--runs-dir", str(tmp_path / "runs"),
               env={"AGENT_TEST_CRASH_AT": "run_finished:2"})  # SIGKILL after run 1, before its commit
    assert proc.returncode < 0, proc.stderr
    run_dir = only_run_dir(tmp_path / "runs")
    proc, html = make_report(run_dir)
    assert proc.returncode == 0, proc.stderr
    assert "UNFINISHED" in html and "killed, or is still running" in html
    assert 'id="step-pending"' in html and "run.finished" in html
    assert "not committed" in html  # run 1 finished but its results were never recorded


def test_reproduction_rebuild_secrets_and_sandbox_reach_the_integrity_panel(run_copy):
    journal = Journal(run_copy / JOURNAL_NAME)
    journal.append("verify.finished", ok=False, rtol=1e-6, atol=1e-9, runs=[
        {"run": 0, "commit": "a" * 40, "status": "reproduced", "max_abs_diff": 0.0, "differences": [], "message": ""},
        {"run": 2, "commit": "b" * 40, "status": "differs", "max_abs_diff": 0.25,
         "differences": [{"metric": "final_loss", "recorded": 0.1112, "reproduced": 0.3612}],
         "message": "1 metric differs"}])
    journal.append("rebuild.finished", same=False, first_difference="step 7: <b>subject</b> differs",
                   steps=20, dir="/tmp/rebuilt")
    journal.append("secret.blocked", path="notes.txt", found=[{"source": "OPENAI_API_KEY", "how": "value", "line": 3}],
                   step="notes/run1", restored=True)
    lines = (run_copy / JOURNAL_NAME).read_text().splitlines()
    first = json.loads(lines[0])
    first["data"]["sandbox"] = "off: --no-sandbox"
    (run_copy / JOURNAL_NAME).write_text("\n".join([json.dumps(first), *lines[1:]]) + "\n")
    _, html = make_report(run_copy)
    integrity = html[html.index('id="integrity"'):html.index('id="overview"')]
    assert "run_2 at bbbbbbbb: differs" in integrity and "final_loss: recorded 0.1112, reproduced 0.3612" in integrity
    assert "step 7: &lt;b&gt;subject&lt;/b&gt; differs" in integrity
    assert "notes.txt" in integrity and "OPENAI_API_KEY" in integrity
    assert "UNSANDBOXED" in integrity and "NOT SANDBOXED" in html
    assert ">clean<" not in integrity
    assert read(run_copy / JOURNAL_NAME).events[-1].kind == "secret.blocked"


def test_runs_of_a_template_without_an_evaluator_are_marked_untrusted(run_copy):
    """The toy has no trusted evaluator: its only warning says so, and each run has a badge."""
    _, html = make_report(run_copy)
    integrity = html[html.index('id="integrity"'):html.index('id="overview"')]
    assert "UNTRUSTED METRICS: the template has no trusted evaluator" in integrity
    assert integrity.count('class="c-warning"') == 1 and 'class="c-problem"' not in integrity
    metrics = html[html.index('id="metrics"'):html.index('id="figures"')]
    runs = len(list(run_copy.glob("run_*/final_info.json")))
    assert runs >= 2 and metrics.count(">untrusted</span>") == runs


def test_a_clean_run_says_clean(run_copy):
    """The same runs as if the template's evaluator had written them: no mark, a clean panel."""
    manifest = run_copy / "template.toml"
    manifest.write_text(manifest.read_text().replace('seeds = 1', 'seeds = 1\nevaluator = "harness.sae.evaluator"'))
    for info in run_copy.glob("run_*/final_info.json"):
        record = json.loads(info.read_text())
        info.write_text(json.dumps({**record, "provenance": {"evaluator": "harness.sae.evaluator"}}))
    _, html = make_report(run_copy)
    integrity = html[html.index('id="integrity"'):html.index('id="overview"')]
    assert ">clean<" in integrity and "No check below found a problem or a warning" in integrity
    assert "computed by the trusted evaluator (harness.sae.evaluator)" in integrity
    assert "not re-executed" in integrity  # what was not checked is said
    assert ">untrusted</span>" not in html


def test_the_review_is_shown_with_its_findings_sentences_and_the_models_form(run_copy):
    finding = {"section": "Results", "line": 4, "kind": "number", "text": "0.42",
               "context": "Momentum reached a loss of 0.42 <i>quickly</i>.", "reason": "matches no result",
               "closest": ["run_2 final_loss 0.1112"]}
    review = {"gates": {"failing": [], "blocked_paper": False, "allowed_by_flag": False},
              "grounding": {"findings": [finding], "clean": False}, "checks": ["figure missing.png does not exist"],
              "compile": {"status": "ok", "message": "compiled to paper.pdf", "errors": [], "chktex": []},
              "llm_review": {"Summary": "A toy.", "Strengths": ["clear"], "Weaknesses": ["tiny"], "Originality": 1,
                             "Quality": 2, "Clarity": 3, "Significance": 1, "Questions": ["why?"],
                             "Limitations": ["toy"], "Ethical Concerns": False, "Soundness": 2, "Presentation": 3,
                             "Contribution": 1, "Overall": 3, "Confidence": 4, "Decision": "Reject",
                             "Integrity": [{"finding": "F1", "response": "The 0.42 is wrong; the table says 0.1112."}],
                             "model": "replay:x", "paper_source": "pdf",
                             "findings": [{"id": "F1", "source": "grounding", "text": "grounding checker: 0.42"}]}}
    (run_copy / "review.json").write_text(json.dumps(review))
    _, html = make_report(run_copy)
    integrity = html[html.index('id="integrity"'):html.index('id="overview"')]
    assert "Momentum reached a loss of 0.42 &lt;i&gt;quickly&lt;/i&gt;." in integrity
    assert "figure missing.png does not exist" in integrity
    paper = html[html.index('id="paper"'):html.index('id="timeline"')]
    for text in ("Reject", "Overall 3/10", "Confidence 4/5", "The 0.42 is wrong", "grounding checker: 0.42",
                 "clear", "tiny", "run_2 final_loss 0.1112"):
        assert text in paper, text


def test_a_long_diff_is_cut_with_a_note_saying_how_to_see_it(run_copy, monkeypatch):
    monkeypatch.setattr(report_steps, "MAX_DIFF_CHARS", 300)
    html = report.write(run_copy).read_text(encoding="utf-8")
    assert "The diff was cut here" in html and f"python -m agent.replay {run_copy.name} --step 1" in html


def test_missing_pieces_are_said_missing_not_raised(run_copy):
    for name in ("notes.txt", "hypotheses.json", "hypotheses_verdicts.json", "idea.json", "loss.png"):
        (run_copy / name).unlink()
    (run_copy / "run_1" / "final_info.json").write_text("[1, 2]")
    # Shapes a hand-edited or older review.json may have: said as they are, never a crash.
    (run_copy / "review.json").write_text(json.dumps({
        "gates": [], "grounding": {"findings": ["a bare string", {"text": "0.5"}]}, "checks": "one check",
        "compile": {"status": "failed"}, "llm_review": {"Integrity": "none", "Strengths": "short", "Overall": 2}}))
    html = report.write(run_copy).read_text(encoding="utf-8")
    assert "could not be built" not in html
    for text in ("notes.txt is missing", "No hypotheses.json", "idea.json is missing",
                 "loss.png: declared by the template but missing", "run_1/final_info.json is unreadable",
                 "one check", "Overall 2/10", "compile failed"):
        assert text in html, text


def test_a_bug_in_the_report_leaves_a_page_saying_so_and_write_does_not_raise(run_copy, monkeypatch):
    def broken(data):
        raise RuntimeError("<b>planted bug</b>")

    monkeypatch.setattr(report, "render", broken)
    html = report.write(run_copy).read_text(encoding="utf-8")
    assert "could not be built" in html and "&lt;b&gt;planted bug&lt;/b&gt;" in html
    assert f"python -m agent.replay {run_copy}" in html


def test_cache_hits_are_shown_in_the_report_and_the_replay_timeline(run_copy):
    """A live provider's cached input (`cache_read_tokens` of llm.response) reaches the page's
    cost table and replies, and `agent.replay`'s timeline."""
    journal = run_copy / "journal.jsonl"
    lines = journal.read_text(encoding="utf-8").splitlines()
    for i, line in enumerate(lines):
        event = json.loads(line)
        if event["kind"] == "llm.response":
            event["data"]["cache_read_tokens"] = 1234
            lines[i] = json.dumps(event)
    journal.write_text("\n".join(lines) + "\n", encoding="utf-8")
    n = sum(1 for line in lines if '"llm.response"' in line)
    proc, html = make_report(run_copy)
    assert proc.returncode == 0, proc.stderr
    cost = html[html.index('id="cost"'):html.index('id="metrics"')]
    assert "from cache" in cost and "1,234 from cache" in html
    timeline = subprocess.run([sys.executable, "-m", "agent.replay", str(run_copy)], cwd=REPO,
                              capture_output=True, text=True, timeout=120)
    assert f"({1234 * n:,} input tokens from the provider's cache)" in timeline.stdout, timeline.stdout[:2000]


def test_a_generated_ideas_novelty_evidence_is_shown(run_copy):
    """A generated idea carries its novelty check: the page shows the outcome, every search with
    its status, and the papers seen, the ones the decision relied on marked."""
    idea = json.loads((run_copy / "idea.json").read_text(encoding="utf-8"))
    idea.update(novelty="unknown", provenance={"novelty": {
        "outcome": "unknown", "reason": "a search was rate limited", "literature_mode": "live",
        "queries": [{"query": "momentum <b>quadratic</b>", "status": "ok", "papers": ["arxiv:1"]},
                    {"query": "heavy ball", "status": "rate_limited", "reason": "429 past the deadline",
                     "papers": []}],
        "papers_seen": [{"ref": "arxiv:1", "title": "On momentum", "year": 1964}],
        "papers_relied_on": ["arxiv:1"]}})
    (run_copy / "idea.json").write_text(json.dumps(idea), encoding="utf-8")
    proc, html = make_report(run_copy)
    assert proc.returncode == 0, proc.stderr
    assert "Novelty check: <strong>unknown</strong>" in html and "2 search(es), 1 paper(s) seen" in html
    assert "rate_limited (429 past the deadline)" in html and "On momentum" in html and "relied on" in html
    assert "momentum &lt;b&gt;quadratic&lt;/b&gt;" in html  # model-written text is escaped
