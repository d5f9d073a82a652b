"""The values that go in and out of the LLM client. No litellm here."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

FailureKind = Literal[
    # transient: retried with backoff
    "rate_limit",  # 429, or a provider's "slow down"
    "overloaded",  # 503/529, "overloaded_error"
    "server_error",  # other 5xx
    "timeout",  # no answer within LLMSettings.timeout_s
    "connection",  # refused, reset, dropped before a response
    "malformed_response",  # a 200 whose body is not a completion
    # permanent: the user must change something
    "auth",  # missing or rejected API key
    "permission",  # the key may not use this model
    "not_found",  # unknown model or endpoint
    "bad_request",  # the provider refused the request's shape or parameters
    "quota",  # out of credit or budget: retrying will not help today
    "content_filter",  # refused by a content policy or guardrail
    "context_overflow",  # the prompt does not fit: a value the caller acts on
    "unexpected",  # not a provider error at all: our bug or litellm's
]
TRANSIENT_KINDS: frozenset[FailureKind] = frozenset(
    {"rate_limit", "overloaded", "server_error", "timeout", "connection", "malformed_response"}
)

ModelSource = Literal[
    "flag", "AGENT_MODEL", "ANTHROPIC_API_KEY", "OPENAI_API_KEY", "reference_session"]

Message = dict[str, str]


@dataclass(frozen=True)
class LLMSettings:
    """How to reach the model and how patient to be with it."""

    model: str
    """A litellm model string (`anthropic/claude-sonnet-4-5`, `openai/gpt-4.1`, `ollama/llama3.1`)
    or `replay:PATH` to answer from a recorded session."""
    api_base: str | None = None
    """URL of an OpenAI-compatible server (vLLM, llama.cpp, LM Studio); None = provider default."""
    api_key: str | None = None
    """Key to send; None = the provider's environment variable (or none for a local api_base)."""
    timeout_s: float = 300.0
    """Seconds one request may take before it counts as a `timeout` failure."""
    max_attempts: int = 6
    """Requests per call, first one included, before giving up on transient failures."""
    max_total_wait_s: float = 600.0
    """Seconds of backoff sleep per call, summed, before giving up."""
    tpm_limit: int | None = None
    """Client-side tokens-per-minute budget (estimated input tokens, sliding 60 s window)."""
    max_cost_usd: float | None = None
    """Stop (resumable) before a call would take the run's journalled spend past this."""
    price_per_mtok: tuple[float, float] | None = None
    """(input, output) USD per million tokens, for a model litellm has no price for; it wins
    over litellm's price map. None = litellm's price, if it has one."""
    temperature: float = 0.2
    """Sampling temperature (dropped for models that do not take one)."""
    max_output_tokens: int = 8192
    """Cap on reply tokens (lowered to the model's own limit when litellm knows it)."""
    backoff_base_s: float = 2.0
    """First backoff ceiling in seconds; doubles each retry (full jitter below it)."""
    backoff_cap_s: float = 60.0
    """Largest backoff ceiling in seconds (a Retry-After header may ask for more)."""


@dataclass(frozen=True)
class Completion:
    """A reply the model gave."""

    text: str
    """The reply's text."""
    input_tokens: int
    """Prompt tokens, as the provider counted them (estimated for a replay)."""
    output_tokens: int
    """Reply tokens, as the provider counted them (estimated for a replay)."""
    cost_usd: float | None
    """Price of this call in US dollars; None = the price of this model is unknown."""
    latency_s: float
    """Seconds the successful request took."""
    retries: int
    """Failed attempts before this one."""
    model: str
    """The model string that answered (as in LLMSettings.model)."""
    replay: bool
    """True when the reply came from a recording, not a live model."""
    finish_reason: str | None = None
    """`stop`, `length` (cut at max_output_tokens), ...; None if the provider did not say."""
    cache_read_tokens: int = 0
    """Of `input_tokens`, those the provider served from its prompt cache (priced apart)."""
    cache_write_tokens: int = 0
    """Of `input_tokens`, those written to the provider's prompt cache (priced apart)."""


@dataclass(frozen=True)
class ContextOverflow:
    """The prompt does not fit the model's context window: shrink it and ask again."""

    message: str
    """The provider's words."""
    estimated_input_tokens: int
    """Our estimate of the prompt's size."""
    max_input_tokens: int | None
    """The model's input limit if litellm knows it."""
    model: str
    """The model string asked."""


@dataclass(frozen=True)
class Failure:
    """One failed request, classified."""

    kind: FailureKind
    """What went wrong, from the closed set."""
    message: str
    """The provider's message, shortened."""
    status_code: int | None = None
    """HTTP status if there was one."""
    retry_after_s: float | None = None
    """What the provider's Retry-After header asked for, in seconds."""

    @property
    def transient(self) -> bool:
        return self.kind in TRANSIENT_KINDS


@dataclass(frozen=True)
class ModelChoice:
    """Which model a launch uses, and why."""

    model: str
    """A litellm model string or `replay:PATH`."""
    source: ModelSource
    """Where the choice came from (flag, environment, or the idea's reference session)."""
    is_replay: bool
    """True when answers come from a recording."""
    banner: str | None
    """A loud line for the CLI to print (replays), else None."""
