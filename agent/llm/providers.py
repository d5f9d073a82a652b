"""Which credentials a model needs, which model to use, and whether it can be reached —
answered before the first call, in well under 5 s, without importing litellm (the one call
that checks the key itself is `agent.llm.checks`)."""

from __future__ import annotations

import os
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from pathlib import Path

from agent.errors import UsageError
from agent.llm.records import ModelChoice, ModelSource
from agent.llm.replay import REPLAY_PREFIX, banner, load_recording, replay_path

DEFAULT_ANTHROPIC_MODEL = "anthropic/claude-sonnet-4-5"
DEFAULT_OPENAI_MODEL = "openai/gpt-4.1"
REACH_TIMEOUT_S = 3.0

PROVIDER_KEYS: dict[str, tuple[str, ...]] = {
    "anthropic": ("ANTHROPIC_API_KEY",),
    "openai": ("OPENAI_API_KEY",),
    "gemini": ("GEMINI_API_KEY", "GOOGLE_API_KEY"),
    "mistral": ("MISTRAL_API_KEY",),
    "groq": ("GROQ_API_KEY",),
    "deepseek": ("DEEPSEEK_API_KEY",),
    "openrouter": ("OPENROUTER_API_KEY",),
    "together_ai": ("TOGETHERAI_API_KEY", "TOGETHER_API_KEY"),
    "xai": ("XAI_API_KEY",),
    "cohere": ("COHERE_API_KEY",),
    "fireworks_ai": ("FIREWORKS_AI_API_KEY", "FIREWORKS_API_KEY"),
    "perplexity": ("PERPLEXITYAI_API_KEY",),
}
"""Hosted providers and the environment variables litellm reads their key from (first = the
one we tell users to set). Providers not listed (bedrock, vertex_ai, azure, ...) are not checked."""

LOCAL_PROVIDERS: dict[str, tuple[str, str, str]] = {
    "ollama": ("OLLAMA_API_BASE", "http://localhost:11434", "/api/tags"),
    "ollama_chat": ("OLLAMA_API_BASE", "http://localhost:11434", "/api/tags"),
}
"""Keyless local providers: (env variable for the base URL, its default, a cheap GET path)."""

_BARE_PREFIXES = (("claude", "anthropic"), ("gpt-", "openai"), ("chatgpt", "openai"),
                  ("o1", "openai"), ("o3", "openai"), ("o4", "openai"))


def provider_of(model: str) -> str | None:
    """The litellm provider prefix of a model string (`anthropic/...` -> anthropic); a few
    bare names are recognised (`claude-...`, `gpt-...`); None when unknown."""
    if "/" in model:
        return model.split("/", 1)[0]
    for prefix, provider in _BARE_PREFIXES:
        if model.startswith(prefix):
            return provider
    return None


def key_env(model: str) -> str | None:
    """The variable a hosted model's key is read from (the first one, if several work)."""
    names = PROVIDER_KEYS.get(provider_of(model) or "")
    return names[0] if names else None


def has_key(model: str, env: Mapping[str, str]) -> bool:
    names = PROVIDER_KEYS.get(provider_of(model) or "", ())
    return any(env.get(name) for name in names)


def _get(url: str, timeout_s: float) -> None:
    """Raise OSError unless something answers HTTP at `url` (any status counts)."""
    host = urllib.parse.urlsplit(url).hostname or ""
    loopback = host in ("localhost", "::1") or host.startswith("127.")
    handlers = [urllib.request.ProxyHandler({})] if loopback else []
    try:
        with urllib.request.build_opener(*handlers).open(url, timeout=timeout_s):
            pass
    except urllib.error.HTTPError:
        pass  # it answered: 401/404 here still means the server is up


def check_reachable(base: str, path: str = "/models", timeout_s: float = REACH_TIMEOUT_S) -> None:
    """UsageError unless an HTTP server answers at `base` within `timeout_s`."""
    parts = urllib.parse.urlsplit(base)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"--api-base {base!r} is not an http(s) URL (e.g. http://localhost:8000/v1)")
    outcome: list[BaseException | None] = []

    def probe() -> None:
        try:
            _get(base.rstrip("/") + path, timeout_s)
            outcome.append(None)
        except (OSError, ValueError) as exc:  # timeouts are OSErrors
            outcome.append(exc)

    # A thread bounds the whole probe: urllib's timeout does not cover name resolution.
    worker = threading.Thread(target=probe, daemon=True)
    worker.start()
    worker.join(timeout_s + 0.5)
    if outcome and outcome[0] is None:
        return
    reason = getattr(outcome[0], "reason", outcome[0]) if outcome else "no answer"
    raise UsageError(
        f"cannot reach the model server at {base} ({reason}) within {timeout_s:g} s: start "
        f"the server, or fix --api-base / --model")


def check_offline(model: str, api_base: str | None = None,
                  env: Mapping[str, str] = os.environ) -> None:
    """Fail fast (UsageError, exit 2) on what makes the first LLM call fail for sure and can
    be seen without asking the model: a missing key for a hosted provider, an unreachable
    server, an unreadable recording."""
    path = replay_path(model)
    if path is not None:
        load_recording(path)
        return
    if api_base:
        check_reachable(api_base)
        return
    provider = provider_of(model)
    if provider in LOCAL_PROVIDERS:
        var, default, probe = LOCAL_PROVIDERS[provider]
        check_reachable(env.get(var) or default, probe)
        return
    names = PROVIDER_KEYS.get(provider or "")
    if names and not has_key(model, env):
        raise UsageError(
            f"{model} needs an API key: {names[0]} is not set. Export it "
            f"(export {names[0]}=...), or choose another model with --model MODEL "
            f"(e.g. ollama/llama3.1) or an OpenAI-compatible server with --api-base URL.")


def resolve_model(flag: str | None, env: Mapping[str, str],
                  reference_session: Path | None) -> ModelChoice:
    """Pick the model: --model, then AGENT_MODEL, then a key in the environment, then the
    idea's reference session (a replay, announced loudly); with none of these, a UsageError."""
    if flag:
        return _choice(flag, "flag")
    if env.get("AGENT_MODEL"):
        return _choice(env["AGENT_MODEL"], "AGENT_MODEL")
    if env.get("ANTHROPIC_API_KEY"):
        return ModelChoice(DEFAULT_ANTHROPIC_MODEL, "ANTHROPIC_API_KEY", False, None)
    if env.get("OPENAI_API_KEY"):
        return ModelChoice(DEFAULT_OPENAI_MODEL, "OPENAI_API_KEY", False, None)
    if reference_session is not None and reference_session.is_file():
        return _choice(f"{REPLAY_PREFIX}{reference_session}", "reference_session")
    raise UsageError(
        "no model to run with. Do one of: pass --model MODEL (a litellm name such as "
        f"{DEFAULT_ANTHROPIC_MODEL}, {DEFAULT_OPENAI_MODEL} or ollama/llama3.1, with "
        "--api-base URL for an OpenAI-compatible server); set AGENT_MODEL; export "
        "ANTHROPIC_API_KEY or OPENAI_API_KEY; or pass --model replay:PATH to replay a recorded "
        "session.")


def _choice(model: str, source: ModelSource) -> ModelChoice:
    path = replay_path(model)
    if path is None:
        return ModelChoice(model, source, False, None)
    return ModelChoice(model, source, True, banner(load_recording(path)))
