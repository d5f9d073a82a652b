"""What is checked before a run directory exists, so that a launch that cannot work stops at
once (UsageError, exit 2) instead of after the baseline:

1. without asking the model: the key variable is set, the server answers, the recording reads
   (`providers.check_offline`);
2. `--max-cost` needs a price: litellm's price map, or `--price-per-mtok`;
3. one minimal request (one word in, at most one token out) shows that the provider takes the
   key and knows the model. Nothing exists yet, so it is not journalled; its cost is a few
   tokens.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import replace

from agent.errors import UsageError
from agent.llm import cost
from agent.llm.backend import litellm
from agent.llm.client import request_args
from agent.llm.failures import classify, permanent_error
from agent.llm.providers import check_offline, key_env
from agent.llm.records import Failure, FailureKind, LLMSettings, Message
from agent.llm.replay import replay_path

CHECK_TIMEOUT_S = 10.0
"""Seconds the check request may take (less when --llm-timeout is shorter)."""

CHECK_MESSAGES: list[Message] = [{"role": "user", "content": "Hi"}]
"""The check request's prompt: one word."""

REFUSED_KINDS: frozenset[FailureKind] = frozenset(
    {"auth", "permission", "not_found", "quota", "bad_request"})
"""Failures of the check request that every later call would meet too: the launch is refused.
Other failures (rate limit, overload, timeout, ...) may pass; the run's calls retry them."""

SKIP_FLAG = "--no-preflight-call"


def preflight(settings: LLMSettings, env: Mapping[str, str] = os.environ, *,
              call: bool = True) -> str | None:
    """Raise a UsageError (exit 2) for what would make the run's LLM calls fail for sure;
    with `call`, make the check request. Returns a warning for the CLI when that request
    failed in a way that may pass, else None. A replay needs only its recording."""
    check_offline(settings.model, settings.api_base, env)
    if replay_path(settings.model) is not None:
        return None
    check_price(settings)
    if not call:
        return None
    failure = check_call(settings, env)
    if failure is None:
        return None
    if failure.kind in REFUSED_KINDS:
        error = permanent_error(failure, settings.model, settings.api_base,
                                key_env(settings.model))
        error.args = (f"{error} Found by one check request before anything was created "
                      f"({SKIP_FLAG} skips it).",)
        raise error
    return (f"the check request to {settings.model} failed ({failure.kind}: "
            f"{failure.message}); going on: the run's own calls retry such failures")


def check_price(settings: LLMSettings) -> None:
    """`--max-cost` cannot be enforced without a price: refuse it rather than ignore it."""
    limit = settings.max_cost_usd
    if limit is None or cost.price_per_token(settings.model, settings.price_per_mtok) is not None:
        return
    raise UsageError(
        f"--max-cost {limit:g} cannot be enforced: the price of {settings.model} is unknown "
        "(litellm's price map has no entry for it). Pass its price with --price-per-mtok "
        "INPUT,OUTPUT (US dollars per million input and output tokens, e.g. --price-per-mtok "
        "3,15; 0,0 for a server that costs nothing per call), or drop --max-cost.")


def check_call(settings: LLMSettings, env: Mapping[str, str] = os.environ) -> Failure | None:
    """Send the check request (no retries): None when the model answered, else the failure."""
    quick = replace(settings, timeout_s=min(settings.timeout_s, CHECK_TIMEOUT_S))
    try:
        litellm().completion(**request_args(quick, CHECK_MESSAGES, 1, env))
    except Exception as exc:  # every provider failure; classified here
        return classify(exc)
    return None
