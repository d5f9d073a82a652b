"""The check request at launch: a key or model the provider refuses stops the launch before
anything is created (exit 2; how fast is `bench/preflight.py`'s figure, not a test's); a failure
that may pass only warns."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from agent import launch
from agent.errors import UsageError
from agent.journal import read
from agent.llm import LLMSettings, preflight
from agent.llm.checks import CHECK_MESSAGES
from tests.e2e_helpers import TOY_SESSION, TOY_TEMPLATES, cli, only_run_dir
from tests.fakellm import FakeLLM, Reply, Slow, Status


def settings_for(srv: FakeLLM, **overrides: Any) -> LLMSettings:
    return LLMSettings("openai/test-model", api_base=srv.base_url, **overrides)


@pytest.mark.slow
def test_a_rejected_key_exits_2_naming_the_key_and_creating_nothing(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    with FakeLLM([Status(401)]) as srv:
        proc = cli("--idea", "toy_idea", "--templates-dir", str(TOY_TEMPLATES), "--model", "openai/x",
                   "--api-base", srv.base_url, "--runs-dir", str(runs), timeout=60)
        requests = list(srv.requests)
    assert proc.returncode == 2, proc.stderr + proc.stdout
    assert "rejected the API key" in proc.stderr and "OPENAI_API_KEY" in proc.stderr
    assert "--no-preflight-call" in proc.stderr and "Traceback" not in proc.stderr
    assert not runs.exists(), "a run directory was created"
    assert len(requests) == 1 and requests[0]["max_tokens"] == 1


@pytest.mark.slow
def test_a_good_key_passes_and_the_check_request_is_the_first_the_server_sees(tmp_path: Path) -> None:
    script = [Reply("ok"), *[Reply(t) for t in TOY_SESSION]]
    with FakeLLM(script, error_status=400) as srv:
        proc = cli("--idea", "toy_idea", "--templates-dir", str(TOY_TEMPLATES), "--model", "openai/test-model",
                   "--api-base", srv.base_url, "--runs-dir", str(tmp_path), "--stages", "experiment",
                   "--max-runs", "3", "--quiet")
        requests = list(srv.requests)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert len(requests) == 1 + len(TOY_SESSION)
    assert requests[0]["messages"] == CHECK_MESSAGES and requests[0]["max_tokens"] == 1
    assert requests[1]["max_tokens"] > 1 and requests[1]["messages"] != CHECK_MESSAGES
    # nothing existed when the check ran: the journal holds the run's own calls only
    events = read(only_run_dir(tmp_path) / "journal.jsonl").events
    assert sum(e.kind == "llm.request" for e in events) == len(TOY_SESSION)


@pytest.mark.parametrize(("status", "kind", "says"), [
    (401, "auth", "rejected the API key"),
    (403, "permission", "may not use openai/test-model"),
    (404, "not_found", "does not know the model 'openai/test-model'"),
    (402, "quota", "out of credit"),
    (400, "bad_request", "refused the request as invalid"),
])
def test_what_every_call_would_meet_is_refused_once_without_retry(status: int, kind: str, says: str) -> None:
    with FakeLLM([Status(status), Reply("never sent")]) as srv:
        with pytest.raises(UsageError) as caught:
            preflight(settings_for(srv), env={})
        assert len(srv.requests) == 1
    assert caught.value.exit_code == 2 and getattr(caught.value, "kind", None) == kind
    assert says in str(caught.value) and "--no-preflight-call" in str(caught.value)


@pytest.mark.parametrize(("step", "kind"), [
    (Status(429, retry_after=30), "rate_limit"), (Status(503), "overloaded"),
    (Status(500), "server_error"),
])
def test_a_failure_that_may_pass_only_warns_and_is_not_retried(
        step: Status, kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[float] = []
    monkeypatch.setattr(time, "sleep", slept.append)  # a wait for the Retry-After would show here
    with FakeLLM([step, Reply("never sent")]) as srv:
        warning = preflight(settings_for(srv), env={})
        assert len(srv.requests) == 1
    assert not [s for s in slept if s >= 1], f"the check waited: {slept}"
    assert warning is not None and f"({kind}:" in warning and "going on" in warning


def test_the_check_request_gives_up_after_its_own_short_timeout() -> None:
    with FakeLLM([Slow(5.0, Reply("too late"))]) as srv:
        warning = preflight(settings_for(srv, timeout_s=0.5), env={})
    # a timeout, not the reply the server sends after 5 s: the request's own limit ended it
    assert warning is not None and "(timeout:" in warning


def test_a_good_answer_passes_silently_and_the_request_is_minimal() -> None:
    with FakeLLM([Reply("Hello")]) as srv:
        assert preflight(settings_for(srv, api_key="sk-test"), env={}) is None
        (request,) = srv.requests
    assert request["messages"] == CHECK_MESSAGES and request["max_tokens"] == 1
    assert request["model"] == "test-model"


def test_without_the_call_and_for_a_replay_nothing_is_sent(tmp_path: Path) -> None:
    session = tmp_path / "s.jsonl"
    session.write_text('{"prompt_kind": "plan", "reply": "ok"}\n')
    with FakeLLM([Status(401)]) as srv:
        assert preflight(settings_for(srv), env={}, call=False) is None
        assert preflight(LLMSettings(f"replay:{session}", api_base=srv.base_url), env={}) is None
        assert srv.requests == []


def test_no_preflight_call_flag_launches_without_the_check(tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    """With the flag a rejected key is met at the run's first call, as before (exit 2 then)."""
    with FakeLLM([Status(401)]) as srv:
        code = launch.main(["--idea", "toy_idea", "--templates-dir", str(TOY_TEMPLATES),
                            "--model", "openai/test-model", "--api-base", srv.base_url,
                            "--runs-dir", str(tmp_path), "--stages", "experiment", "--quiet",
                            "--no-preflight-call"])
        requests = list(srv.requests)
    assert code == 2, capsys.readouterr().err
    assert len(requests) == 1 and requests[0]["max_tokens"] > 1  # the run's own first call
    only_run_dir(tmp_path)  # created: the key was not checked before
