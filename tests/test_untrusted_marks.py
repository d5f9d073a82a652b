"""Runs of a template without a trusted evaluator are marked untrusted wherever they appear:
their notes section, the paper's results table, report.html (a badge per run and an integrity
line; see tests/test_report.py). Runs an evaluator wrote carry no such mark."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from agent import baseline, ideas, notes
from agent import template as template_mod
from agent.config import LaunchConfig
from agent.context import RunContext
from agent.journal import JOURNAL_NAME, Journal
from agent.paper.build.results_tex import build_results_tex
from agent.paper.build.spec import MetricSpec
from agent.progress import Console
from agent.results import UNTRUSTED, evaluated, load_run
from agent.workspace import Workspace
from tests.e2e_helpers import TOY_TEMPLATES

TOY = TOY_TEMPLATES / "toy_template"
MARK = "UNTRUSTED: these metrics were written by the experiment itself"


def _ctx(runs_dir: Path, evaluator: str | None = None) -> RunContext:
    template = replace(template_mod.load(TOY), evaluator=evaluator)
    idea = ideas.load(TOY / "ideas" / "toy_idea.json")
    ws = Workspace.create(runs_dir, idea.name, template.root, idea.fields)
    config = LaunchConfig(idea=idea.name, runs_dir=str(runs_dir), quiet=True)
    return RunContext(ws, Journal(ws.root / JOURNAL_NAME), template, idea, config, Console(quiet=True), "none", None)


def test_the_toys_baseline_notes_say_its_metrics_are_untrusted(tmp_path):
    ctx = _ctx(tmp_path / "runs")
    baseline.ensure(ctx)
    text = (ctx.ws.root / "notes.txt").read_text()
    assert "## Run 0 (baseline)" in text and MARK in text and "the template has none" in text
    assert not evaluated(ctx.template, load_run(ctx.ws.root, 0, ctx.template))


def test_a_forged_provenance_does_not_make_a_run_trusted(tmp_path):
    """A template without an evaluator: whatever its experiment writes, its runs are untrusted."""
    ctx = _ctx(tmp_path / "runs")
    baseline.ensure(ctx)
    info = ctx.ws.root / "run_0" / "final_info.json"
    info.write_text(json.dumps({**json.loads(info.read_text()), "provenance": {"evaluator": "harness.sae.evaluator"}}))
    assert not evaluated(ctx.template, load_run(ctx.ws.root, 0, ctx.template))


def test_notes_of_an_evaluated_run_carry_no_mark(tmp_path):
    ctx = _ctx(tmp_path / "runs", evaluator="harness.sae.evaluator")
    run_0 = ctx.ws.root / "run_0"
    run_0.mkdir()
    (run_0 / "final_info.json").write_text(json.dumps({
        "metrics": {"final_loss": 0.5, "steps_to_tol": 3}, "config": {}, "code": {"commit": ctx.ws.head()},
        "provenance": {"evaluator": "harness.sae.evaluator"}}))
    notes.append_notes(ctx, 0, "the unmodified template (baseline)")
    text = (ctx.ws.root / "notes.txt").read_text()
    assert "## Run 0 (baseline)" in text and "UNTRUSTED" not in text
    assert evaluated(ctx.template, load_run(ctx.ws.root, 0, ctx.template))


RUNS = {"run_0": {"metrics": {"final_loss": 0.5}}, "run_1": {"metrics": {"final_loss": 0.25}}}
SPECS = [MetricSpec("final_loss", "Final loss", "lower", True)]


def test_the_results_table_says_when_no_trusted_evaluator_wrote_the_metrics():
    marked = build_results_tex(RUNS, SPECS, untrusted=True).text
    caption = next(line for line in marked.splitlines() if line.startswith("\\caption{"))
    assert f"Untrusted: {UNTRUSTED}." in caption
    assert "no trusted evaluator" not in build_results_tex(RUNS, SPECS).text


def test_the_main_jobs_evaluated_runs_carry_no_untrusted_mark(tiny_main_job):
    """sae_variants's runs are written by harness.sae.evaluator: no mark in notes, paper or report."""
    _, run_dir = tiny_main_job
    assert "UNTRUSTED" not in (run_dir / "notes.txt").read_text()
    assert "no trusted evaluator" not in (run_dir / "latex" / "results.tex").read_text()
    html = (run_dir / "report.html").read_text()
    assert ">untrusted</span>" not in html and "UNTRUSTED METRICS" not in html
    assert "computed by the trusted evaluator (harness.sae.evaluator)" in html
