"""Before the first call: which model, whether its credentials and server are there."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from agent.errors import UsageError
from agent.llm import (
    DEFAULT_ANTHROPIC_MODEL,
    DEFAULT_OPENAI_MODEL,
    LLMSettings,
    ModelChoice,
    resolve_model,
)
from agent.llm import preflight as full_preflight
from tests.fakellm import FakeLLM

REPO = Path(__file__).resolve().parents[1]


def preflight(model: str, api_base: str | None, env: dict[str, str]) -> None:
    """The checks that need no request to the model (the check request has its own tests)."""
    assert full_preflight(LLMSettings(model, api_base), env, call=False) is None


def test_importing_agent_llm_does_not_import_litellm() -> None:
    code = "import sys, agent.llm; print('litellm' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                         check=True, timeout=60)
    assert out.stdout.strip() == "False"


def test_preflight_with_a_missing_key_fails_without_a_request_saying_what_to_set(
        monkeypatch: pytest.MonkeyPatch) -> None:
    def no_connection(*args: object) -> None:
        raise AssertionError("a missing key must be found without reaching the provider")

    monkeypatch.setattr(socket.socket, "connect", no_connection)
    with pytest.raises(UsageError) as caught:
        preflight("anthropic/claude-sonnet-4-5", None, env={})
    assert caught.value.exit_code == 2
    message = str(caught.value)
    assert "ANTHROPIC_API_KEY is not set" in message and "--model" in message
    assert "--api-base" in message


@pytest.mark.parametrize(("model", "variable"), [
    ("openai/gpt-4.1", "OPENAI_API_KEY"), ("gpt-4o", "OPENAI_API_KEY"),
    ("claude-3-5-sonnet-20240620", "ANTHROPIC_API_KEY"),
    ("gemini/gemini-2.5-pro", "GEMINI_API_KEY"),
    ("groq/llama-3.3-70b", "GROQ_API_KEY"), ("openrouter/x/y", "OPENROUTER_API_KEY")])
def test_preflight_knows_each_hosted_providers_key(model: str, variable: str) -> None:
    with pytest.raises(UsageError, match=variable):
        preflight(model, None, env={})
    preflight(model, None, env={variable: "sk-x"})


def test_preflight_checks_that_an_api_base_answers() -> None:
    with FakeLLM([]) as srv:
        preflight("openai/test-model", srv.base_url, env={})
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(UsageError, match=rf"cannot reach .*127.0.0.1:{port}") as caught:
        preflight("openai/test-model", f"http://127.0.0.1:{port}/v1", env={})
    assert caught.value.exit_code == 2
    with pytest.raises(UsageError, match="not an http"):
        preflight("openai/test-model", "localhost:8000", env={})


def test_preflight_of_a_replay_reads_the_recording(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="does not exist"):
        preflight(f"replay:{tmp_path / 'nope.jsonl'}", None, env={})
    session = tmp_path / "s.jsonl"
    session.write_text('{"prompt_kind": "plan", "reply": "ok"}\n')
    preflight(f"replay:{session}", None, env={})


def test_model_resolution_order(tmp_path: Path) -> None:
    session = tmp_path / "reference_session.jsonl"
    session.write_text('{"prompt_kind": "plan", "reply": "ok"}\n')
    everything = {"AGENT_MODEL": "ollama/llama3.1", "ANTHROPIC_API_KEY": "a", "OPENAI_API_KEY": "o"}
    assert resolve_model("openai/gpt-4o", everything, session) == ModelChoice(
        "openai/gpt-4o", "flag", False, None)
    assert resolve_model(None, everything, session).source == "AGENT_MODEL"
    keys = {"ANTHROPIC_API_KEY": "a", "OPENAI_API_KEY": "o"}
    assert resolve_model(None, keys, session) == ModelChoice(
        DEFAULT_ANTHROPIC_MODEL, "ANTHROPIC_API_KEY", False, None)
    assert resolve_model(None, {"OPENAI_API_KEY": "o"}, session) == ModelChoice(
        DEFAULT_OPENAI_MODEL, "OPENAI_API_KEY", False, None)
    replay = resolve_model(None, {}, session)
    assert (replay.model, replay.source, replay.is_replay) == (
        f"replay:{session}", "reference_session", True)
    assert replay.banner is not None and replay.banner.startswith("REPLAY")
    assert "ANTHROPIC_API_KEY" in replay.banner and "--model" in replay.banner


def test_no_model_at_all_is_a_usage_error_listing_the_options(tmp_path: Path) -> None:
    with pytest.raises(UsageError) as caught:
        resolve_model(None, {}, tmp_path / "no_session.jsonl")
    message = str(caught.value)
    assert caught.value.exit_code == 2
    for option in ("--model", "AGENT_MODEL", "ANTHROPIC_API_KEY", "OPENAI_API_KEY", "replay:"):
        assert option in message
    with pytest.raises(UsageError):
        resolve_model(None, {}, None)


def test_a_replay_flag_is_announced_too(tmp_path: Path) -> None:
    session = tmp_path / "s.jsonl"
    session.write_text('{"prompt_kind": "plan", "reply": "ok"}\n')
    choice = resolve_model(f"replay:{session}", {}, None)
    assert choice.is_replay and choice.source == "flag" and choice.banner
