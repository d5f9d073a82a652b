"""LLM access for every stage: one client over litellm, with retries, pacing, cost, replay.

Importing this package does not import litellm (that happens at the first call), so
`python -m agent.launch --help` stays fast.

    settings = LLMSettings("anthropic/claude-sonnet-4-5", max_cost_usd=5.0)
    warning = preflight(settings)           # UsageError now (one check request), not mid-run
    client = LLMClient(settings, journal)
    reply = client.complete(messages, stage="experiments", prompt_kind="plan_experiments")
    if isinstance(reply, ContextOverflow): ...             # shrink the history, ask again
"""

from agent.llm.checks import check_call, preflight
from agent.llm.client import CostLimitReached, LLMClient
from agent.llm.cost import register_price, spent_usd
from agent.llm.failures import (
    EXCEPTION_KINDS,
    LLMConfigError,
    LLMUnavailable,
    LLMUnexpectedError,
    classify,
)
from agent.llm.providers import (
    DEFAULT_ANTHROPIC_MODEL,
    DEFAULT_OPENAI_MODEL,
    PROVIDER_KEYS,
    check_offline,
    resolve_model,
)
from agent.llm.records import (
    TRANSIENT_KINDS,
    Completion,
    ContextOverflow,
    Failure,
    FailureKind,
    LLMSettings,
    Message,
    ModelChoice,
    ModelSource,
)
from agent.llm.replay import Recording, load_recording, replay_path

__all__ = [
    "DEFAULT_ANTHROPIC_MODEL",
    "DEFAULT_OPENAI_MODEL",
    "EXCEPTION_KINDS",
    "PROVIDER_KEYS",
    "TRANSIENT_KINDS",
    "Completion",
    "ContextOverflow",
    "CostLimitReached",
    "Failure",
    "FailureKind",
    "LLMClient",
    "LLMConfigError",
    "LLMSettings",
    "LLMUnavailable",
    "LLMUnexpectedError",
    "Message",
    "ModelChoice",
    "ModelSource",
    "Recording",
    "check_call",
    "check_offline",
    "classify",
    "load_recording",
    "preflight",
    "register_price",
    "replay_path",
    "resolve_model",
    "spent_usd",
]
