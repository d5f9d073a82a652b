"""Replay and model resolution through the real CLI: a replay says so, reproduces a run, and
stops with a clear message naming the step where the recording and the live run diverge."""

from __future__ import annotations

import json
import shutil

import pytest

from agent.journal import read
from tests.e2e_helpers import (
    TOY_KINDS,
    TOY_SESSION,
    TOY_TEMPLATES,
    block,
    cli,
    only_run_dir,
    write_session,
)
from tests.fakellm import FakeLLM, Reply

ARGS = ["--idea", "toy_idea", "--max-runs", "3", "--stages", "experiment"]


def _toy_templates(tmp_path, session: list[str] | None = None, kinds: list[str] | None = None):
    """A private copy of the toy templates, optionally with a reference session for toy_idea."""
    root = tmp_path / "templates"
    shutil.copytree(TOY_TEMPLATES, root)
    if session is not None:
        write_session(root / "toy_template" / "ideas" / "toy_idea.session.jsonl", session, kinds or TOY_KINDS)
    return root


def _metrics(run_dir):
    return {p.parent.name: json.loads(p.read_text())["metrics"] for p in sorted(run_dir.glob("run_*/final_info.json"))}


@pytest.mark.slow
def test_replaying_a_previous_runs_journal_reproduces_its_results(tmp_path):
    # The first request is the launch's one-token credentials check.
    with FakeLLM([Reply("ok"), *(Reply(t) for t in TOY_SESSION)], error_status=400) as srv:
        live = cli(*ARGS, "--templates-dir", str(TOY_TEMPLATES), "--model", "openai/test-model",
                   "--api-base", srv.base_url, "--runs-dir", str(tmp_path / "live"), "--quiet")
    assert live.returncode == 0, live.stderr
    live_dir = only_run_dir(tmp_path / "live")
    replay = cli(*ARGS, "--templates-dir", str(TOY_TEMPLATES), "--model", f"replay:{live_dir / 'journal.jsonl'}",
                 "--runs-dir", str(tmp_path / "replay"))
    assert replay.returncode == 0, replay.stderr
    assert "replay" in replay.stdout.lower()
    replay_dir = only_run_dir(tmp_path / "replay")
    assert _metrics(replay_dir) == _metrics(live_dir)
    events = read(replay_dir / "journal.jsonl").events
    assert any(e.kind == "llm.replay_started" for e in events)
    responses = [e for e in events if e.kind == "llm.response"]
    assert len(responses) == len(TOY_SESSION) and all(e.data["replay"] for e in responses)


@pytest.mark.slow
def test_without_credentials_the_reference_session_is_replayed_with_a_banner(tmp_path):
    templates = _toy_templates(tmp_path, TOY_SESSION)
    proc = cli(*ARGS, "--templates-dir", str(templates), "--runs-dir", str(tmp_path / "runs"))
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout.lower()
    assert "replay" in out and "--model" in proc.stdout  # says it is a replay, and how to go live
    run_dir = only_run_dir(tmp_path / "runs")
    started = next(e for e in read(run_dir / "journal.jsonl").events if e.kind == "launch.started")
    assert started.data["model_source"] == "reference_session"
    assert (run_dir / "run_2" / "final_info.json").is_file()


def test_without_credentials_or_reference_session_exits_2_listing_the_options(tmp_path):
    templates = _toy_templates(tmp_path)
    proc = cli(*ARGS, "--templates-dir", str(templates), "--runs-dir", str(tmp_path / "runs"))
    assert proc.returncode == 2
    for option in ("--model", "AGENT_MODEL", "ANTHROPIC_API_KEY", "OPENAI_API_KEY"):
        assert option in proc.stderr
    assert not (tmp_path / "runs").exists()


@pytest.mark.slow
def test_agent_model_variable_beats_the_reference_session(tmp_path):
    templates = _toy_templates(tmp_path, TOY_SESSION)
    with FakeLLM([Reply("ok"), *(Reply(t) for t in TOY_SESSION)], error_status=400) as srv:
        proc = cli(*ARGS, "--templates-dir", str(templates), "--api-base", srv.base_url,
                   "--runs-dir", str(tmp_path / "runs"), "--quiet", env={"AGENT_MODEL": "openai/test-model"})
        n_requests = len(srv.requests)
    assert proc.returncode == 0, proc.stderr
    assert n_requests == 1 + len(TOY_SESSION)  # the credentials check, then the session
    started = next(e for e in read(only_run_dir(tmp_path / "runs") / "journal.jsonl").events
                   if e.kind == "launch.started")
    assert started.data["model_source"] == "AGENT_MODEL"


@pytest.mark.slow
def test_replay_whose_prompt_kinds_diverge_stops_naming_the_step(tmp_path):
    kinds = ["experiment.plan", "experiment.results", *TOY_KINDS[2:]]  # step 2 recorded as another kind
    session = write_session(tmp_path / "s.jsonl", TOY_SESSION, kinds)
    proc = cli(*ARGS, "--templates-dir", str(TOY_TEMPLATES), "--model", f"replay:{session}",
               "--runs-dir", str(tmp_path / "runs"), "--quiet")
    assert proc.returncode == 5, proc.stderr
    assert "step 2" in proc.stderr and "edit.retry" in proc.stderr and "experiment.results" in proc.stderr
    assert "--resume" in proc.stderr or "run directory" in proc.stderr


@pytest.mark.slow
def test_replay_whose_edit_no_longer_applies_stops_with_a_clear_message(tmp_path):
    stale = block("experiment.py", "    lr: float = 0.3  # step size\n", "    lr: float = 0.2  # step size\n")
    session = write_session(tmp_path / "s.jsonl", ["Run 1: lr 0.2\n" + stale, *TOY_SESSION[2:]],
                            ["experiment.plan", *TOY_KINDS[2:]])
    proc = cli(*ARGS, "--templates-dir", str(TOY_TEMPLATES), "--model", f"replay:{session}",
               "--runs-dir", str(tmp_path / "runs"), "--quiet")
    assert proc.returncode == 5, proc.stderr
    assert "no longer apply" in proc.stderr and "experiment/run1/attempt1" in proc.stderr
