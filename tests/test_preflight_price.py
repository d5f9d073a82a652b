"""`--max-cost` is never silently off: a model without a known price is refused at launch,
and `--price-per-mtok` both makes the budget work and prices the journal."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent import launch
from agent.errors import StoppedResumable, UsageError
from agent.journal import Journal
from agent.llm import Completion, LLMClient, LLMSettings, preflight
from agent.llm import cost as llm_cost
from tests.fakellm import FakeLLM, Reply
from tests.test_template import TEMPLATES

MESSAGES = [{"role": "user", "content": "Plan the experiments."}]


@pytest.fixture(autouse=True)
def _no_registered_prices(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(llm_cost, "_REGISTERED", {})


def test_max_cost_with_an_unknown_price_exits_2_before_anything_saying_what_to_pass(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    runs = tmp_path / "runs"
    with FakeLLM([Reply("ok")]) as srv:
        code = launch.main(["--idea", "toy_idea", "--templates-dir", str(TEMPLATES),
                            "--model", "openai/whatever", "--api-base", srv.base_url,
                            "--max-cost", "2", "--runs-dir", str(runs), "--quiet"])
        assert srv.requests == [], "the price is checked before the check request"
    err = capsys.readouterr().err
    assert code == 2, err
    assert "--max-cost 2 cannot be enforced" in err and "price of openai/whatever is unknown" in err
    assert "--price-per-mtok INPUT,OUTPUT" in err and "drop --max-cost" in err
    assert not runs.exists()


def test_a_model_litellm_prices_needs_no_price_flag() -> None:
    settings = LLMSettings("openai/gpt-4.1", max_cost_usd=1.0)
    assert preflight(settings, env={"OPENAI_API_KEY": "sk-x"}, call=False) is None


def test_a_given_price_lets_max_cost_through_and_prices_every_call(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "journal.jsonl")
    with FakeLLM([Reply("a", usage=(100, 10)), Reply("b", usage=(100, 10))]) as srv:
        settings = LLMSettings("openai/whatever", api_base=srv.base_url, timeout_s=5.0,
                               max_cost_usd=5.0, price_per_mtok=(3.0, 15.0))
        assert preflight(settings, env={}, call=False) is None
        client = LLMClient(settings, journal, env={})
        assert "price is unknown" not in client.banner()
        reply = client.complete(MESSAGES, stage="experiments", prompt_kind="plan")
    assert isinstance(reply, Completion)
    assert reply.cost_usd == pytest.approx(100 * 3e-6 + 10 * 15e-6)
    (response,) = [e.data for e in journal.of_kind("llm.response")]
    assert response["cost_usd"] == pytest.approx(reply.cost_usd)


def test_a_given_price_wins_over_litellms_and_a_replay_stays_free() -> None:
    assert llm_cost.price_per_token("openai/gpt-4.1", (1.0, 2.0)) == (1e-6, 2e-6)
    assert llm_cost.price_per_token("replay:/x.jsonl", (1.0, 2.0)) == (0.0, 0.0)
    assert llm_cost.price_per_token("openai/whatever") is None


def test_the_budget_stops_on_the_given_price(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "journal.jsonl")
    with FakeLLM([Reply("ok", usage=(20, 30)), Reply("never", usage=(20, 30))]) as srv:
        settings = LLMSettings("openai/whatever", api_base=srv.base_url, timeout_s=5.0,
                               max_cost_usd=0.06, max_output_tokens=10,
                               price_per_mtok=(1000.0, 1000.0))
        client = LLMClient(settings, journal, env={})
        first = client.complete(MESSAGES, stage="experiments", prompt_kind="plan")
        assert isinstance(first, Completion) and first.cost_usd == pytest.approx(0.05)
        with pytest.raises(StoppedResumable):
            client.complete(MESSAGES, stage="experiments", prompt_kind="plan")
        assert len(srv.requests) == 1


def test_a_zero_price_is_a_price() -> None:
    settings = LLMSettings("openai/local", api_base="http://127.0.0.1:9/v1", max_cost_usd=1.0,
                           price_per_mtok=(0.0, 0.0))
    from agent.llm.checks import check_price

    check_price(settings)
    with pytest.raises(UsageError, match="--price-per-mtok"):
        check_price(LLMSettings("openai/local", max_cost_usd=1.0))
