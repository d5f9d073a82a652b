"""The exception table covers everything litellm exports; backoff and pacing do what they say."""

from __future__ import annotations

import email.utils
import inspect
import time
from types import ModuleType

import httpx
import pytest

from agent.llm import EXCEPTION_KINDS, TRANSIENT_KINDS, classify
from agent.llm.backend import litellm
from agent.llm.failures import class_key, retry_after_s
from agent.llm.pacing import TokenWindow, backoff_s


def exported_exception_classes() -> dict[str, type]:
    """Every exception class litellm (and the openai client it wraps) exports."""
    import openai

    lit = litellm()
    try:  # litellm loads most of its exports lazily, on first attribute access
        from litellm._lazy_imports import get_lazy_import_registry

        lazy = set(get_lazy_import_registry())
    except ImportError:
        lazy = set()
    modules: list[tuple[ModuleType, set[str]]] = [
        (lit.exceptions, set(dir(lit.exceptions))), (lit, set(dir(lit)) | lazy),
        (openai, set(dir(openai)))]
    found: dict[str, type] = {}
    for module, names in modules:
        for name in sorted(names):
            try:
                obj = getattr(module, name)
            except Exception:  # a lazy export whose optional dependency is missing
                continue
            if (inspect.isclass(obj) and issubclass(obj, Exception)
                    and obj.__module__.split(".")[0] in ("litellm", "openai")):
                found[class_key(obj)] = obj
    return found


@pytest.mark.filterwarnings("ignore::UserWarning")  # pydantic, on importing lazy exports
def test_every_exception_litellm_exports_is_classified() -> None:
    exported = exported_exception_classes()
    assert len(exported) > 30  # the walk found litellm's classes at all
    missing = sorted(set(exported) - set(EXCEPTION_KINDS))
    assert missing == [], (
        f"litellm/openai export exception classes with no FailureKind: {missing}. "
        "Add each to EXCEPTION_KINDS in agent/llm/failures.py.")


@pytest.mark.slow
@pytest.mark.parametrize(("name", "kind"), [
    ("CallerCredentialAuthenticationError", "auth"),
    ("CallerCredentialRateLimitError", "rate_limit"),
    ("EndpointNotSupportedByModelError", "bad_request"),
    ("MalformedRequestFieldError", "bad_request"),
    ("UnsupportedEndpointError", "bad_request"),
])
def test_litellm_1_110_exceptions_have_their_kinds(name: str, kind: str) -> None:
    """Classes litellm added in 1.110: a rejected caller credential fails fast as auth, a
    credential rate limit is retried, and an endpoint or field the model refuses is a bad
    request (also looked up by name in the table, not only reached through the MRO)."""
    cls = getattr(litellm().exceptions, name)
    assert EXCEPTION_KINDS[class_key(cls)] == kind
    args = {"message": "refused", "model": "m"}
    if name != "EndpointNotSupportedByModelError":
        args["llm_provider"] = "openai"
    failure = classify(cls(**args))
    assert failure.kind == kind
    assert failure.transient == (kind == "rate_limit")


def _api_error(status: int, message: str = "boom") -> Exception:
    return litellm().exceptions.APIError(status_code=status, message=message,
                                         llm_provider="openai", model="m")


@pytest.mark.parametrize(("status", "kind"), [
    (403, "permission"), (402, "quota"), (529, "overloaded"), (500, "server_error"),
    (504, "server_error"), (418, "bad_request"), (429, "rate_limit"), (408, "timeout")])
def test_generic_api_errors_are_classified_by_status(status: int, kind: str) -> None:
    assert classify(_api_error(status)).kind == kind


def test_messages_refine_the_class() -> None:
    lit = litellm()
    quota = lit.RateLimitError(message="You exceeded your current quota (insufficient_quota)",
                               llm_provider="openai", model="gpt-4.1")
    assert classify(quota).kind == "quota"
    overloaded = lit.InternalServerError(
        message='{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}',
        llm_provider="anthropic", model="claude")
    assert classify(overloaded).kind == "overloaded"
    overflow = lit.BadRequestError(message="prompt is too long: 210000 tokens > 200000 maximum",
                                   llm_provider="anthropic", model="claude")
    assert classify(overflow).kind == "context_overflow"


def test_anything_else_is_unexpected_and_not_retried() -> None:
    failure = classify(KeyError("choices"))
    assert failure.kind == "unexpected" and not failure.transient
    assert TRANSIENT_KINDS == {"rate_limit", "overloaded", "server_error", "timeout",
                               "connection", "malformed_response"}


class _WithHeaders(Exception):
    def __init__(self, headers: dict[str, str]) -> None:
        super().__init__("x")
        self.litellm_response_headers = httpx.Headers(headers)


def test_retry_after_is_read_in_seconds_milliseconds_and_http_dates() -> None:
    assert retry_after_s(_WithHeaders({"Retry-After": "7"})) == 7.0
    assert retry_after_s(_WithHeaders({"retry-after-ms": "1500", "retry-after": "9"})) == 1.5
    now = time.time()
    date = email.utils.formatdate(now + 30, usegmt=True)
    assert retry_after_s(_WithHeaders({"Retry-After": date}), now=now) == pytest.approx(30, abs=1)
    assert retry_after_s(_WithHeaders({})) is None


def test_backoff_is_exponential_with_full_jitter_capped_and_yields_to_retry_after() -> None:
    ceilings = [backoff_s(n, None, base_s=2, cap_s=20, rng=lambda: 1.0) for n in range(1, 7)]
    assert ceilings == [2, 4, 8, 16, 20, 20]
    assert backoff_s(3, None, base_s=2, cap_s=20, rng=lambda: 0.0) == 0.0
    assert backoff_s(1, 45.0, base_s=2, cap_s=20, rng=lambda: 0.3) == 45.0


def test_token_window_slides_over_sixty_seconds() -> None:
    now = [0.0]
    window = TokenWindow(1000, clock=lambda: now[0])
    window.record(600)
    now[0] = 10.0
    window.record(300)
    assert window.wait_s(100) == 0.0
    assert window.wait_s(200) == pytest.approx(50.0)  # until the 600 sent at t=0 expire
    assert window.wait_s(900) == pytest.approx(60.0)  # until both have expired
    now[0] = 61.0
    assert window.used() == 300 and window.wait_s(700) == 0.0
    assert TokenWindow(10, clock=lambda: 0.0).wait_s(50) == 0.0  # too big to ever fit: goes alone
