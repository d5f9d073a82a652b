"""The LLM client against a real HTTP server on loopback: litellm -> openai -> httpx -> FakeLLM."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from agent.errors import StoppedResumable, UsageError
from agent.journal import Event, Journal
from agent.llm import (
    Completion,
    ContextOverflow,
    LLMClient,
    LLMSettings,
    LLMUnavailable,
    register_price,
)
from agent.llm import cost as llm_cost
from tests.fakellm import Drop, FakeLLM, Malformed, Reply, Slow, Status, context_overflow

MESSAGES = [{"role": "system", "content": "You are a careful ML researcher."},
            {"role": "user", "content": "Plan the experiments."}]


@pytest.fixture
def journal(tmp_path: Path) -> Journal:
    return Journal(tmp_path / "journal.jsonl")


@pytest.fixture(autouse=True)
def _no_registered_prices(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(llm_cost, "_REGISTERED", {})


class Clock:
    """A fake monotonic clock that only moves when the client sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def client_for(srv: FakeLLM, journal: Journal, sleeps: list[float], **overrides: Any) -> LLMClient:
    settings = LLMSettings("openai/test-model", api_base=srv.base_url, api_key="sk-test",
                           **{"timeout_s": 5.0, **overrides})
    return LLMClient(settings, journal, sleep=sleeps.append, rng=lambda: 0.5)


def llm_events(journal: Journal) -> list[Event]:
    return [e for e in journal.events() if e.kind.startswith("llm.")]


def ask(client: LLMClient, kind: str = "plan") -> Completion | ContextOverflow:
    return client.complete(MESSAGES, stage="experiments", prompt_kind=kind)


def test_replies_come_back_in_order_and_every_exchange_is_journalled(journal: Journal) -> None:
    sleeps: list[float] = []
    echo = Reply(lambda body: "you said: " + body["messages"][-1]["content"])
    with FakeLLM([Reply("first"), echo]) as srv:
        client = client_for(srv, journal, sleeps)
        one = client.complete(MESSAGES, stage="experiments", prompt_kind="plan", call_id="plan#1")
        two = ask(client, "edit")
    assert isinstance(one, Completion) and isinstance(two, Completion)
    assert (one.text, two.text) == ("first", "you said: Plan the experiments.")
    assert one.input_tokens > 0 and one.output_tokens > 0 and one.retries == 0
    assert not one.replay and one.finish_reason == "stop"
    assert srv.requests[0]["model"] == "test-model"
    assert srv.requests[0]["messages"] == MESSAGES
    assert srv.requests[0]["temperature"] == 0.2
    events = llm_events(journal)
    assert [e.kind for e in events] == ["llm.request", "llm.response"] * 2
    request, response = events[0].data, events[1].data
    assert request["messages"] == MESSAGES and request["estimated_input_tokens"] > 0
    assert (request["stage"], request["prompt_kind"], request["model"]) == (
        "experiments", "plan", "openai/test-model")
    assert request["call_id"] == response["call_id"] == "plan#1"
    assert events[3].data["call_id"] is None
    assert response["text"] == "first" and response["prompt_kind"] == "plan"
    assert response["input_tokens"] == one.input_tokens and response["retries"] == 0
    assert response["replay"] is False and response["latency_s"] >= 0
    assert events[3].data["prompt_kind"] == "edit" and sleeps == []


def test_rate_limit_is_retried_after_the_retry_after_header(journal: Journal) -> None:
    sleeps: list[float] = []
    with FakeLLM([Status(429, retry_after=1), Status(429, retry_after=3), Reply("ok")]) as srv:
        reply = ask(client_for(srv, journal, sleeps))
    assert isinstance(reply, Completion) and reply.text == "ok" and reply.retries == 2
    assert sleeps == [1.0, 3.0]
    assert len(srv.requests) == 3
    retries = [e.data for e in journal.of_kind("llm.retry")]
    assert [(r["attempt"], r["failure"], r["wait_s"], r["status_code"]) for r in retries] == [
        (1, "rate_limit", 1.0, 429), (2, "rate_limit", 3.0, 429)]
    assert "429" in retries[0]["message"]
    assert next(journal.of_kind("llm.response")).data["retries"] == 2


def test_server_errors_are_retried_with_exponential_backoff(journal: Journal) -> None:
    sleeps: list[float] = []
    with FakeLLM([Status(500), Status(502), Status(503), Reply("ok")]) as srv:
        reply = ask(client_for(srv, journal, sleeps))
    assert isinstance(reply, Completion) and reply.text == "ok" and reply.retries == 3
    # full jitter with rng=0.5 under ceilings 2, 4, 8 s
    assert sleeps == [1.0, 2.0, 4.0]
    kinds = [e.data["failure"] for e in journal.of_kind("llm.retry")]
    assert kinds == ["server_error", "server_error", "overloaded"]


def test_auth_error_is_not_retried_and_says_what_to_set(journal: Journal) -> None:
    sleeps: list[float] = []
    with FakeLLM([Status(401), Reply("never sent")]) as srv:
        with pytest.raises(UsageError) as caught:
            ask(client_for(srv, journal, sleeps))
        assert len(srv.requests) == 1
    assert caught.value.exit_code == 2
    assert "rejected the API key" in str(caught.value) and "--api-base" in str(caught.value)
    assert sleeps == []
    events = llm_events(journal)
    assert [e.kind for e in events] == ["llm.request", "llm.failed"]
    assert events[1].data["failure"] == "auth" and events[1].data["attempts"] == 1


def test_slow_response_past_the_timeout_is_retried(journal: Journal) -> None:
    sleeps: list[float] = []
    with FakeLLM([Slow(3.0, Reply("too late")), Reply("ok")]) as srv:
        reply = ask(client_for(srv, journal, sleeps, timeout_s=0.3))
    assert isinstance(reply, Completion) and reply.text == "ok" and reply.retries == 1
    assert [e.data["failure"] for e in journal.of_kind("llm.retry")] == ["timeout"]


def test_dropped_connection_is_retried(journal: Journal) -> None:
    sleeps: list[float] = []
    with FakeLLM([Drop(), Reply("ok")]) as srv:
        reply = ask(client_for(srv, journal, sleeps))
    assert isinstance(reply, Completion) and reply.text == "ok"
    assert [e.data["failure"] for e in journal.of_kind("llm.retry")] == ["connection"]


def test_malformed_json_is_retried(journal: Journal) -> None:
    sleeps: list[float] = []
    with FakeLLM([Malformed(), Reply("ok")]) as srv:
        reply = ask(client_for(srv, journal, sleeps))
    assert isinstance(reply, Completion) and reply.text == "ok"
    assert [e.data["failure"] for e in journal.of_kind("llm.retry")] == ["malformed_response"]


def test_context_overflow_comes_back_as_a_value(journal: Journal) -> None:
    sleeps: list[float] = []
    with FakeLLM([context_overflow(limit=8192, asked=12000), Reply("unused")]) as srv:
        reply = ask(client_for(srv, journal, sleeps))
        assert len(srv.requests) == 1
    assert isinstance(reply, ContextOverflow)
    assert "maximum context length is 8192" in reply.message
    assert reply.estimated_input_tokens > 0 and reply.model == "openai/test-model"
    failed = next(journal.of_kind("llm.failed")).data
    assert failed["failure"] == "context_overflow" and sleeps == []


def test_retries_stop_after_max_attempts_and_the_run_is_resumable(journal: Journal) -> None:
    sleeps: list[float] = []
    with FakeLLM([Status(500)] * 5) as srv:
        with pytest.raises(LLMUnavailable) as caught:
            ask(client_for(srv, journal, sleeps, max_attempts=3))
        assert len(srv.requests) == 3
    assert caught.value.exit_code == 4
    assert "3 attempts" in str(caught.value)
    assert f"--resume {journal.path.parent}" in str(caught.value)
    assert [e.kind for e in llm_events(journal)] == [
        "llm.request", "llm.retry", "llm.retry", "llm.failed"]


def test_retries_stop_when_the_total_wait_would_pass_its_bound(journal: Journal) -> None:
    sleeps: list[float] = []
    with FakeLLM([Status(429, retry_after=2)] * 5) as srv:
        with pytest.raises(LLMUnavailable):
            ask(client_for(srv, journal, sleeps, max_total_wait_s=5.0))
        assert len(srv.requests) == 3
    assert sleeps == [2.0, 2.0]  # a third wait would make 6 s > 5 s


def test_max_cost_stops_before_the_call_that_would_pass_it(journal: Journal) -> None:
    register_price("openai/test-model", input_per_mtok=1000.0, output_per_mtok=1000.0)
    sleeps: list[float] = []
    with FakeLLM([Reply("ok", usage=(20, 30)), Reply("ok again", usage=(20, 30))]) as srv:
        client = client_for(srv, journal, sleeps, max_cost_usd=0.06, max_output_tokens=10)
        first = ask(client)
        assert isinstance(first, Completion) and first.cost_usd == pytest.approx(0.05)
        with pytest.raises(StoppedResumable) as caught:
            ask(client)
        assert len(srv.requests) == 1
        assert caught.value.exit_code == 4
        assert f"--resume {journal.path.parent} --max-cost" in str(caught.value)
        stop = journal.events()[-1]
        assert stop.kind == "llm.budget_stopped" and stop.data["spent_usd"] == pytest.approx(0.05)
        assert sum(1 for _ in journal.of_kind("llm.request")) == 1
        # resumed with a larger budget, the spend so far still counts (it lives in the journal)
        resumed = client_for(srv, Journal(journal.path), sleeps, max_cost_usd=1.0)
        again = ask(resumed)
        assert isinstance(again, Completion) and again.text == "ok again"


def test_unknown_price_is_journalled_as_none_and_a_registered_one_is_used(journal: Journal) -> None:
    sleeps: list[float] = []
    with FakeLLM([Reply("a", usage=(100, 10)), Reply("b", usage=(100, 10))]) as srv:
        client = client_for(srv, journal, sleeps, max_cost_usd=5.0)
        assert "price is unknown" in client.banner()
        unknown = ask(client)
        register_price("openai/test-model", input_per_mtok=3.0, output_per_mtok=15.0)
        assert client.banner() == f"LLM: openai/test-model at {srv.base_url}"
        known = ask(client)
    assert isinstance(unknown, Completion) and unknown.cost_usd is None
    assert isinstance(known, Completion)
    assert known.cost_usd == pytest.approx(100 * 3e-6 + 10 * 15e-6)
    costs = [e.data["cost_usd"] for e in journal.of_kind("llm.response")]
    assert costs[0] is None and costs[1] == pytest.approx(known.cost_usd)


def test_tokens_per_minute_budget_waits_instead_of_sending(journal: Journal) -> None:
    clock = Clock()
    estimate = llm_cost.estimate_tokens(MESSAGES, "openai/test-model")
    with FakeLLM([Reply("ok")], repeat=True) as srv:
        settings = LLMSettings("openai/test-model", api_base=srv.base_url, api_key="sk-test",
                               timeout_s=5.0, tpm_limit=2 * estimate + 1)
        client = LLMClient(settings, journal, clock=clock, sleep=clock.sleep)
        for _ in range(3):
            assert isinstance(ask(client), Completion)
    # the third call waits for the first to leave the window
    assert clock.sleeps == [pytest.approx(60.0)]
    throttled = [e.data for e in journal.of_kind("llm.throttled")]
    assert len(throttled) == 1 and throttled[0]["tpm_limit"] == 2 * estimate + 1
    assert throttled[0]["window_tokens"] == 2 * estimate
    kinds = [e.kind for e in llm_events(journal)]
    assert kinds.index("llm.throttled") == 4  # after two full exchanges, before the third request


def test_no_key_is_needed_for_a_local_api_base(journal: Journal) -> None:
    with FakeLLM([Reply("local")]) as srv:
        settings = LLMSettings("openai/local-model", api_base=srv.base_url, timeout_s=5.0)
        reply = LLMClient(settings, journal, env={}).complete(
            MESSAGES, stage="experiments", prompt_kind="plan")
    assert isinstance(reply, Completion) and reply.text == "local"


def test_exhausted_script_answers_500_with_a_clear_body(journal: Journal) -> None:
    with FakeLLM([]) as srv:
        with pytest.raises(LLMUnavailable) as caught:
            ask(client_for(srv, journal, [], max_attempts=1))
    assert "script exhausted" in str(caught.value)


def test_a_responder_that_raises_fails_the_call_at_once_with_error_status_400(
        journal: Journal) -> None:
    def broken(body: dict[str, Any]) -> str:
        raise RuntimeError("no reply scripted for this prompt")

    with FakeLLM([Reply(broken)], error_status=400) as srv:
        with pytest.raises(UsageError, match="no reply scripted for this prompt"):
            ask(client_for(srv, journal, []))
        assert len(srv.requests) == 1


def test_the_llm_timeout_flag_bounds_each_request_and_a_timeout_is_retried(journal: Journal) -> None:
    from dataclasses import replace

    from agent import launch, orchestrator
    from agent.llm import TRANSIENT_KINDS

    args = launch.build_parser().parse_args(["--idea", "x", "--llm-timeout", "0.3"])
    sleeps: list[float] = []
    with FakeLLM([Slow(3.0, Reply("too late")), Reply("ok")]) as srv:
        config = replace(launch.config_from_args(args), api_base=srv.base_url)
        made = orchestrator._llm_factory("openai/test-model", config, journal)()
        assert isinstance(made, LLMClient) and made.settings.timeout_s == 0.3
        client = LLMClient(config.llm_settings("openai/test-model"), journal,
                           sleep=sleeps.append, rng=lambda: 0.5)
        reply = ask(client)
    assert isinstance(reply, Completion) and reply.text == "ok" and reply.retries == 1
    (retry,) = [e.data for e in journal.of_kind("llm.retry")]
    assert retry["failure"] == "timeout" and "timeout" in TRANSIENT_KINDS


def test_a_replay_counts_tokens_as_gpt4_without_importing_litellm() -> None:
    """An offline launch pays no litellm import (seconds a process): a replayed call's tokens
    come from GPT-4's tokenizer read directly, within half a percent of litellm's own count."""
    import json
    import subprocess
    import sys

    from agent.llm.backend import litellm
    from tests.conftest import REPO

    session = REPO / "templates" / "sae_variants" / "ideas" / "orthogonal_sae.session.jsonl"
    replies = [json.loads(line)["reply"] for line in session.read_text(encoding="utf-8").splitlines()
               if line.strip() and not line.startswith("//")]
    for reply in replies[:8] + [replies[-1]]:
        messages = [{"role": "system", "content": "You are a careful researcher."},
                    {"role": "user", "content": reply}, {"role": "assistant", "content": "<|endoftext|>"}]
        ours = llm_cost.estimate_tokens(messages, "replay:session.jsonl")
        theirs = litellm().token_counter(model="gpt-4", messages=messages)
        assert abs(ours - theirs) <= max(2, 0.005 * theirs), (ours, theirs)
    probe = ("import sys; from agent.llm import cost; "
             "n = cost.estimate_tokens([{'role': 'user', 'content': 'hello world'}], 'replay:x'); "
             "print(n, 'litellm' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO,
                         check=True).stdout.split()
    assert out == ["9", "False"]  # reply 3, message 3, 'user' 1, 'hello world' 2; no litellm
