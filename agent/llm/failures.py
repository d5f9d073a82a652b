"""Every exception litellm (or the openai client under it) can raise, mapped once into a
`FailureKind`, and the errors the client raises for the kinds it does not retry.

The table is keyed by `module.QualName` so this module never imports litellm; `classify` walks
an exception's MRO, so a class litellm adds later still lands on its parent's kind, and
`tests/test_llm_failures.py` fails until the new class is written down here.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Iterator, Mapping

from agent.errors import AgentError, StoppedResumable, UsageError
from agent.llm.records import Failure, FailureKind

BY_STATUS = None
"""Marks a generic class whose kind depends on the HTTP status it carries."""

EXCEPTION_KINDS: dict[str, FailureKind | None] = {
    # litellm.exceptions (also exported at the top of `litellm`)
    "litellm.exceptions.AuthenticationError": "auth",
    "litellm.exceptions.CallerCredentialAuthenticationError": "auth",
    "litellm.exceptions.PermissionDeniedError": "permission",
    "litellm.exceptions.NotFoundError": "not_found",
    "litellm.exceptions.LiteLLMUnknownProvider": "not_found",
    "litellm.exceptions.ModelNotMappedError": "not_found",
    "litellm.exceptions.BadRequestError": "bad_request",
    "litellm.exceptions.InvalidRequestError": "bad_request",
    "litellm.exceptions.UnprocessableEntityError": "bad_request",
    "litellm.exceptions.UnsupportedParamsError": "bad_request",
    "litellm.exceptions.MalformedRequestFieldError": "bad_request",
    "litellm.exceptions.UnsupportedEndpointError": "bad_request",
    "litellm.exceptions.EndpointNotSupportedByModelError": "bad_request",
    "litellm.exceptions.ImageFetchError": "bad_request",
    "litellm.exceptions.VectorStoreSearchError": "bad_request",
    "litellm.exceptions.ContextWindowExceededError": "context_overflow",
    "litellm.exceptions.ContentPolicyViolationError": "content_filter",
    "litellm.exceptions.RejectedRequestError": "content_filter",
    "litellm.exceptions.GuardrailRaisedException": "content_filter",
    "litellm.exceptions.BlockedPiiEntityError": "content_filter",
    "litellm.exceptions.SensitiveDataRouteException": "content_filter",
    "litellm.exceptions.ModifyResponseException": "content_filter",
    "litellm.exceptions.PaymentRequiredError": "quota",
    "litellm.exceptions.BudgetExceededError": "quota",
    "litellm.exceptions.RateLimitError": "rate_limit",
    "litellm.exceptions.CallerCredentialRateLimitError": "rate_limit",
    "litellm.exceptions.Timeout": "timeout",
    "litellm.exceptions.APIConnectionError": "connection",
    "litellm.exceptions.ServiceUnavailableError": "overloaded",
    "litellm.exceptions.BadGatewayError": "server_error",
    "litellm.exceptions.InternalServerError": "server_error",
    "litellm.exceptions.MidStreamFallbackError": "server_error",
    "litellm.exceptions.APIResponseValidationError": "malformed_response",
    "litellm.exceptions.JSONSchemaValidationError": "malformed_response",
    "litellm.exceptions.APIError": BY_STATUS,
    "litellm.exceptions.MockException": BY_STATUS,
    "litellm.exceptions.OpenAIError": BY_STATUS,
    "litellm.llms.openai.common_utils.OpenAIError": BY_STATUS,
    # provider-specific errors litellm normally wraps; they all carry a status code
    "litellm.llms.base_llm.chat.transformation.BaseLLMException": BY_STATUS,
    "litellm.llms.fal_ai.chat.transformation.FalAIError": BY_STATUS,
    # other classes exported at the top of `litellm`
    "litellm.types.router.RouterRateLimitError": "rate_limit",
    "litellm.types.router.RouterRateLimitErrorBasic": "rate_limit",
    "litellm.tool_loop.ToolLoopMaxRoundsExceeded": "bad_request",
    # the openai client litellm uses for OpenAI-compatible servers
    "openai.OpenAIError": BY_STATUS,
    "openai.APIError": BY_STATUS,
    "openai.APIStatusError": BY_STATUS,
    "openai.APIConnectionError": "connection",
    "openai.APITimeoutError": "timeout",
    "openai.AuthenticationError": "auth",
    "openai.OAuthError": "auth",
    "openai.PermissionDeniedError": "permission",
    "openai.NotFoundError": "not_found",
    "openai.BadRequestError": "bad_request",
    "openai.UnprocessableEntityError": "bad_request",
    "openai.InvalidWebhookSignatureError": "bad_request",
    "openai._AmbiguousModuleClientUsageError": "bad_request",
    "openai.ConflictError": "server_error",
    "openai.RateLimitError": "rate_limit",
    "openai.InternalServerError": "server_error",
    "openai.APIResponseValidationError": "malformed_response",
    "openai.LengthFinishReasonError": "malformed_response",
    "openai.ContentFilterFinishReasonError": "content_filter",
    "openai.WebSocketConnectionClosedError": "connection",
    "openai.WebSocketQueueFullError": "overloaded",
    # transport errors, should one escape unwrapped
    "httpx.TimeoutException": "timeout",
    "httpx.TransportError": "connection",
    "httpx.DecodingError": "malformed_response",
    "json.decoder.JSONDecodeError": "malformed_response",
    "builtins.TimeoutError": "timeout",
    "builtins.ConnectionError": "connection",
}

_STATUS_KINDS: dict[int, FailureKind] = {
    400: "bad_request", 401: "auth", 402: "quota", 403: "permission", 404: "not_found",
    408: "timeout", 409: "server_error", 413: "context_overflow", 422: "bad_request",
    429: "rate_limit", 503: "overloaded", 529: "overloaded",
}

# Words in a message that say more than the class does (providers reuse status codes).
_QUOTA_WORDS = ("insufficient_quota", "exceeded your current quota", "credit balance is too low")
_OVERFLOW_WORDS = ("context_length_exceeded", "maximum context length", "prompt is too long",
                   "context window")


def class_key(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        yield cur
        cur = cur.__cause__ or cur.__context__


def _by_class(exc: BaseException) -> tuple[bool, FailureKind | None]:
    for cls in type(exc).__mro__:
        key = class_key(cls)
        if key in EXCEPTION_KINDS:
            return True, EXCEPTION_KINDS[key]
    return False, None


def _status(exc: BaseException) -> int | None:
    status = getattr(exc, "status_code", None)
    return status if isinstance(status, int) else None


def _by_status(status: int | None) -> FailureKind:
    if status is None or status >= 500:
        return _STATUS_KINDS.get(status or 500, "server_error")
    return _STATUS_KINDS.get(status, "bad_request")


def retry_after_s(exc: BaseException, now: float | None = None) -> float | None:
    """Seconds the provider asked us to wait (Retry-After / retry-after-ms), if it said."""
    for headers in _header_sources(exc):
        ms = headers.get("retry-after-ms")
        if ms is not None:
            try:
                return max(0.0, float(ms) / 1000.0)
            except ValueError:
                pass
        value = headers.get("retry-after")
        if value is None:
            continue
        try:
            return max(0.0, float(value))
        except ValueError:
            when = email.utils.parsedate_to_datetime(value) if value else None
            if when is not None:
                return max(0.0, when.timestamp() - (time.time() if now is None else now))
    return None


def _header_sources(exc: BaseException) -> Iterator[Mapping[str, str]]:
    for source in (getattr(exc, "litellm_response_headers", None),
                   getattr(getattr(exc, "response", None), "headers", None),
                   getattr(exc, "headers", None)):
        if source is not None and hasattr(source, "get"):
            yield {str(k).lower(): str(v) for k, v in dict(source).items()}


def _refine(kind: FailureKind, exc: BaseException, text: str) -> FailureKind:
    lower = text.lower()
    if kind in ("rate_limit", "bad_request", "quota") and any(w in lower for w in _QUOTA_WORDS):
        return "quota"
    if kind == "bad_request" and any(w in lower for w in _OVERFLOW_WORDS):
        return "context_overflow"
    if kind == "server_error":
        if "overloaded" in lower:
            return "overloaded"
        for cause in list(_chain(exc))[1:]:
            found, cause_kind = _by_class(cause)
            if found and cause_kind in ("timeout", "connection", "malformed_response"):
                return cause_kind
    return kind


def classify(exc: BaseException) -> Failure:
    """Map any exception from a completion call into a `Failure`."""
    found, kind = _by_class(exc)
    status = _status(exc)
    text = str(exc)
    if not found:
        kind = "unexpected"
    elif kind is BY_STATUS:
        kind = _by_status(status)
    assert kind is not None
    kind = _refine(kind, exc, text)
    message = " ".join(text.split())
    message = message if len(message) <= 600 else message[:600] + " ..."
    return Failure(kind, message, status, retry_after_s(exc))


class LLMConfigError(UsageError):
    """The provider refused the request for a reason the user must fix (exit 2)."""

    def __init__(self, message: str, kind: FailureKind) -> None:
        super().__init__(message)
        self.kind = kind


class LLMUnavailable(StoppedResumable):
    """Transient failures outlasted the retry budget; the run is saved and resumable (exit 4)."""


class LLMUnexpectedError(AgentError):
    """A completion call failed in a way no provider error explains: a bug (exit 1)."""


def permanent_error(failure: Failure, model: str, api_base: str | None,
                    key_env: str | None) -> AgentError:
    """The error to raise for a non-transient failure, saying what to set or change."""
    where = f"the server at {api_base}" if api_base else f"the provider of {model}"
    alternatives = "or choose another model with --model MODEL / --api-base URL"
    said = f"({failure.kind}: {failure.message})"
    if failure.kind == "auth":
        if api_base:
            text = (f"{where} rejected the API key: pass the key it expects "
                    f"({key_env or 'OPENAI_API_KEY'}), {alternatives}. {said}")
        else:
            env = key_env or "the provider's API key variable"
            text = f"{env} is not set or was rejected: export it, {alternatives}. {said}"
    elif failure.kind == "permission":
        text = (f"the key in {key_env or 'the environment'} may not use {model}: ask for "
                f"access, {alternatives}. {said}")
    elif failure.kind == "not_found":
        text = (f"{where} does not know the model {model!r}: check the name as litellm spells "
                f"it (e.g. anthropic/claude-sonnet-4-5, openai/gpt-4.1), {alternatives}. {said}")
    elif failure.kind == "quota":
        text = (f"{where} says the account is out of credit or quota: add credit, "
                f"{alternatives}. {said}")
    elif failure.kind == "content_filter":
        text = f"{where} refused the request under its content policy. {said}"
    elif failure.kind == "bad_request":
        text = (f"{where} refused the request as invalid; check --model and the model's "
                f"parameters (temperature, max output tokens). {said}")
    else:
        return LLMUnexpectedError(f"the LLM call to {model} failed unexpectedly {said}")
    return LLMConfigError(text, failure.kind)
