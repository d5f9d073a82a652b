"""Replays answer from a recording through the same client path as a live model, less litellm."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from agent.errors import ReplayDiverged, UsageError
from agent.journal import Journal, read
from agent.llm import Completion, LLMClient, LLMSettings, load_recording
from tests.fakellm import FakeLLM, Reply

MESSAGES = [{"role": "user", "content": "What next?"}]

SESSION = """\
{"session": {"idea": "topk_sae", "recorded_with": "anthropic/claude-sonnet-4-5"}}
// the plan, then the first edit

{"prompt_kind": "plan_experiments", "stage": "experiments", "reply": "Run 1: k=32"}
{"prompt_kind": "edit", "stage": "experiments", "reply": "experiment.py\\n<<<<<<< SEARCH"}
"""


def write_session(tmp_path: Path, text: str = SESSION) -> Path:
    path = tmp_path / "reference_session.jsonl"
    path.write_text(text, encoding="utf-8")
    return path


def replay_client(path: Path, journal: Journal) -> LLMClient:
    return LLMClient(LLMSettings(f"replay:{path}"), journal, sleep=lambda s: None)


def ask(client: LLMClient, kind: str) -> Completion:
    reply = client.complete(MESSAGES, stage="experiments", prompt_kind=kind)
    assert isinstance(reply, Completion)
    return reply


def test_session_file_is_replayed_in_order_without_litellm(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_litellm() -> Any:
        raise AssertionError("a replay imported litellm")

    from agent.llm import client as llm_client
    from agent.llm import cost as llm_cost

    monkeypatch.setattr(llm_client, "litellm", no_litellm)
    monkeypatch.setattr(llm_cost, "litellm", no_litellm)
    journal = Journal(tmp_path / "journal.jsonl")
    client = replay_client(write_session(tmp_path), journal)
    assert client.is_replay and client.banner().startswith("REPLAY")
    assert "2 replies" in client.banner() and "--model" in client.banner()
    plan, edit = ask(client, "plan_experiments"), ask(client, "edit")
    assert plan.text == "Run 1: k=32" and edit.text.startswith("experiment.py\n")
    assert plan.replay and plan.cost_usd == 0.0 and plan.input_tokens > 0
    assert plan.finish_reason == "stop" and plan.retries == 0 and plan.output_tokens > 0
    kinds = [e.kind for e in journal.events()]
    assert kinds == ["llm.replay_started", "llm.request", "llm.response",
                     "llm.request", "llm.response"]
    started = journal.events()[0].data
    assert started == {"path": str(tmp_path / "reference_session.jsonl"), "source": "session",
                       "replies": 2, "start_step": 0}
    responses = [e.data for e in journal.of_kind("llm.response")]
    assert all(r["replay"] is True for r in responses)
    assert [r["prompt_kind"] for r in responses] == ["plan_experiments", "edit"]


def test_a_runs_journal_replays_what_the_live_model_said(tmp_path: Path) -> None:
    live_dir, replay_dir = tmp_path / "live", tmp_path / "replayed"
    live_dir.mkdir()
    replay_dir.mkdir()
    live_journal = Journal(live_dir / "journal.jsonl")
    with FakeLLM([Reply("plan A"), Reply("edit B")]) as srv:
        live = LLMClient(LLMSettings("openai/test-model", api_base=srv.base_url,
                                     api_key="sk-test", timeout_s=5.0), live_journal)
        said = [ask(live, "plan_experiments").text, ask(live, "edit").text]
    replayed = replay_client(live_journal.path, Journal(replay_dir / "journal.jsonl"))
    assert [ask(replayed, "plan_experiments").text, ask(replayed, "edit").text] == said
    assert load_recording(live_journal.path).source == "journal"


def test_a_resumed_replay_continues_where_the_run_stopped(tmp_path: Path) -> None:
    session = write_session(tmp_path)
    journal = Journal(tmp_path / "journal.jsonl")
    ask(replay_client(session, journal), "plan_experiments")
    resumed = replay_client(session, Journal(journal.path))
    assert ask(resumed, "edit").text.startswith("experiment.py")
    # Read the file: the first Journal object no longer sees what a second writer appended
    # (a journal has one writer at a time; a resume opens it anew).
    started = [e.data["start_step"] for e in read(journal.path).events if e.kind == "llm.replay_started"]
    assert started == [0, 1]


def test_replay_diverges_loudly_when_the_run_asks_for_another_prompt(tmp_path: Path) -> None:
    session = write_session(tmp_path)
    journal = Journal(tmp_path / "journal.jsonl")
    client = replay_client(session, journal)
    with pytest.raises(ReplayDiverged) as caught:
        ask(client, "write_section")
    message = str(caught.value)
    assert caught.value.exit_code == 5
    assert "step 1 of" in message and "'write_section'" in message
    assert "'plan_experiments'" in message and str(session) in message
    failed = journal.events()[-1]
    assert failed.kind == "llm.failed" and failed.data["failure"] == "replay_diverged"


def test_replay_that_runs_out_of_replies_says_so(tmp_path: Path) -> None:
    session = write_session(tmp_path)
    client = replay_client(session, Journal(tmp_path / "journal.jsonl"))
    ask(client, "plan_experiments")
    ask(client, "edit")
    with pytest.raises(ReplayDiverged, match=r"exhausted at step 3: .* holds 2 replies"):
        ask(client, "edit")


def test_malformed_session_file_is_a_usage_error_naming_the_line(tmp_path: Path) -> None:
    bad = write_session(tmp_path, SESSION + json.dumps({"prompt_kind": "edit"}) + "\n")
    with pytest.raises(UsageError, match=r"reference_session.jsonl:6: .*'reply'"):
        replay_client(bad, Journal(tmp_path / "journal.jsonl"))
    with pytest.raises(UsageError, match="does not exist"):
        replay_client(tmp_path / "missing.jsonl", Journal(tmp_path / "journal.jsonl"))
