"""The one call every stage makes: `LLMClient.complete(messages, stage=..., prompt_kind=...)`.

Live models and replays take the same path: the budget check, the tokens-per-minute wait, the
`llm.request` event, the `llm.response` event. A replay differs only in where the reply comes
from: the recording, instead of litellm (and retries on transient failures), which it never
imports: importing litellm takes seconds of CPU in every process, and an offline launch or a
test starts many (the live path is tested against a loopback OpenAI-compatible server).
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from agent.errors import ReplayDiverged, StoppedResumable
from agent.journal import Journal
from agent.llm import caching, cost
from agent.llm.backend import litellm
from agent.llm.failures import LLMUnavailable, classify, permanent_error
from agent.llm.pacing import TokenWindow, backoff_s
from agent.llm.providers import has_key, key_env
from agent.llm.records import Completion, ContextOverflow, Failure, LLMSettings, Message
from agent.llm.replay import RecordedReply, ReplayCursor, banner, load_recording, replay_path
from agent.llm.shared import SharedLedger

NO_KEY = "sk-no-key-needed"
"""Sent to an api_base when no key is configured: the openai client refuses to send none."""


class CostLimitReached(StoppedResumable):
    """The next call would take the run past --max-cost (exit 4, resumable)."""


class LLMClient:
    """Talks to one model for one run, journalling every exchange in the run's journal."""

    def __init__(self, settings: LLMSettings, journal: Journal, *,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep,
                 rng: Callable[[], float] = random.random,
                 env: Mapping[str, str] = os.environ) -> None:
        self.settings = settings
        self.journal = journal
        self._clock, self._sleep, self._rng, self._env = clock, sleep, rng, env
        path = replay_path(settings.model)
        self._recording = load_recording(path) if path is not None else None
        self._cursor: ReplayCursor | None = None
        self._pending: list[Message] | None = None
        """The messages of the call being made (for the budget check's cache estimate)."""
        self._pending_breakpoints: list[caching.Breakpoint] = []
        """Its cache breakpoints."""
        self._window = TokenWindow(settings.tpm_limit, clock) if settings.tpm_limit else None
        self._shared = SharedLedger.from_env(env, clock)
        """Set when this launch is one idea of several: budgets shared with the others."""

    @property
    def is_replay(self) -> bool:
        return self._recording is not None

    def banner(self) -> str:
        """What the CLI prints before the first call: loud for a replay."""
        if self._recording is not None:
            return banner(self._recording)
        s = self.settings
        where = f" at {s.api_base}" if s.api_base else ""
        unpriced = (s.max_cost_usd is not None
                    and cost.price_per_token(s.model, s.price_per_mtok) is None)
        warning = (" (its price is unknown, so --max-cost cannot be enforced: "
                   "pass --price-per-mtok INPUT,OUTPUT)") if unpriced else ""
        return f"LLM: {s.model}{where}{warning}"

    def complete(self, messages: list[Message], *, stage: str, prompt_kind: str,
                 call_id: str | None = None,
                 cache: Sequence[caching.Breakpoint] | None = None) -> Completion | ContextOverflow:
        """Ask the model. Transient failures are retried here; a prompt too long for the model
        comes back as `ContextOverflow`; anything the user must fix raises a UsageError.
        `call_id` (the caller's name for this exchange) is copied into every event it causes.
        `cache`: where the provider should cache the prompt's prefix (`caching.Breakpoint`,
        sent where the provider caches only what is marked); None: the system message."""
        where = {"stage": stage, "prompt_kind": prompt_kind, "call_id": call_id,
                 "model": self.settings.model}
        breakpoints = caching.normalized(messages, caching.system_breakpoint(messages) if cache is None else cache)
        estimated = cost.estimate_tokens(messages, self.settings.model)
        self._pending, self._pending_breakpoints = messages, breakpoints
        self._check_budget(estimated, where)
        self._pace(estimated, where)
        self._start_replay()
        self.journal.append("llm.request", **where, messages=messages,
                            cache_breakpoints=[bp.to_json() for bp in breakpoints],
                            estimated_input_tokens=estimated)
        recorded = self._next_recorded(prompt_kind, where)
        return self._send(messages, breakpoints, estimated, recorded, where)

    # -- before sending ---------------------------------------------------------------------

    def _check_budget(self, estimated: int, where: dict[str, Any]) -> None:
        limit = self.settings.max_cost_usd
        if limit is None or self.is_replay:
            return
        events = self.journal.events()
        spent = cost.spent_usd(events)
        upcoming = cost.estimate_call_usd(self.settings.model, estimated, events,
                                          self.settings.max_output_tokens,
                                          self.settings.price_per_mtok, self._cached_guess(events))
        if self._shared is not None:  # one budget for every idea of the command
            together = max(spent, self._shared.spent())
            if together + upcoming <= limit:
                return
            self.journal.append("llm.budget_stopped", **where, spent_usd=together, own_spent_usd=spent,
                                estimate_usd=upcoming, max_cost_usd=limit, shared=True)
            raise CostLimitReached(
                f"stopped before the next LLM call: the ideas of this command spent ${together:.4f} "
                f"together (this one ${spent:.4f}) and the call is estimated at ${upcoming:.4f}, "
                f"which would pass --max-cost {limit:g} (it applies to the whole command). Nothing "
                f"is lost: continue this idea with --resume {self.journal.path.parent} --max-cost "
                f"{max(2 * limit, spent + 10 * upcoming):.2f}")
        if spent + upcoming <= limit:
            return
        self.journal.append("llm.budget_stopped", **where, spent_usd=spent,
                            estimate_usd=upcoming, max_cost_usd=limit)
        run_dir = self.journal.path.parent
        suggested = max(2 * limit, spent + 10 * upcoming)
        raise CostLimitReached(
            f"stopped before the next LLM call: ${spent:.4f} spent so far and the call is "
            f"estimated at ${upcoming:.4f}, which would pass --max-cost {limit:g}. Nothing is "
            f"lost: continue with --resume {run_dir} --max-cost {suggested:.2f}")

    def _cached_guess(self, events: list[Any]) -> int:
        """Tokens of the next prompt the provider's cache will probably serve: the prefix the
        request before wrote that this one starts with (`caching.cached_prefix`)."""
        rules = caching.rules_for(self.settings.model)
        previous = next((e for e in reversed(events) if e.kind == "llm.request"), None)
        if rules is None or previous is None or self._pending is None:
            return 0
        before = previous.data.get("messages") or []
        marked = previous.data.get("cache_breakpoints")
        before_marks = (caching.legacy_breakpoints(before) if marked is None
                        else [caching.Breakpoint.from_json(bp) for bp in marked])
        prefix = caching.cached_prefix(before, before_marks, self._pending, self._pending_breakpoints, rules)
        shared = cost.estimate_tokens(prefix, self.settings.model) if prefix else 0
        return shared if shared >= rules.min_tokens else 0

    def _pace(self, estimated: int, where: dict[str, Any]) -> None:
        if self._window is None:
            return
        if self._shared is not None:  # the window is the model's, across every idea
            limit = self._window.tpm_limit
            while (wait := self._shared.reserve(self.settings.model, estimated, limit)) > 0:
                self.journal.append("llm.throttled", **where, wait_s=round(wait, 3),
                                    estimated_input_tokens=estimated, shared=True,
                                    window_tokens=self._shared.used(self.settings.model),
                                    tpm_limit=limit)
                self._sleep(wait)
            return
        wait = self._window.wait_s(estimated)
        if wait > 0:
            self.journal.append("llm.throttled", **where,
                                wait_s=round(wait, 3), estimated_input_tokens=estimated,
                                window_tokens=self._window.used(), tpm_limit=self._window.tpm_limit)
            self._sleep(wait)
        self._window.record(estimated)

    def _start_replay(self) -> None:
        """On first use: the cursor starts after the replies this run already got (resume)."""
        if self._recording is None or self._cursor is not None:
            return
        start = sum(1 for _ in self.journal.of_kind("llm.response"))
        self.journal.append("llm.replay_started", path=str(self._recording.path),
                            source=self._recording.source,
                            replies=len(self._recording.replies), start_step=start)
        self._cursor = ReplayCursor(self._recording, start)

    def _next_recorded(self, prompt_kind: str, where: dict[str, Any]) -> RecordedReply | None:
        if self._cursor is None:
            return None
        try:
            return self._cursor.next(prompt_kind)
        except ReplayDiverged as exc:
            self.journal.append("llm.failed", **where, failure="replay_diverged",
                                message=str(exc), attempts=0)
            raise

    # -- sending ----------------------------------------------------------------------------

    def _request(self, messages: list[Message], breakpoints: list[caching.Breakpoint]) -> dict[str, Any]:
        s = self.settings
        _, model_max = cost.model_limits(s.model)
        max_tokens = min(s.max_output_tokens, model_max or s.max_output_tokens)
        return request_args(s, messages, max_tokens, self._env, breakpoints)

    def _send(self, messages: list[Message], breakpoints: list[caching.Breakpoint], estimated: int,
              recorded: RecordedReply | None, where: dict[str, Any]) -> Completion | ContextOverflow:
        s = self.settings
        if recorded is not None:  # a replay: the recorded reply, as a model that stopped
            return self._record(Parsed(recorded.text, "stop"), estimated, recorded, 0.0, 0, where)
        retries, waited = 0, 0.0
        while True:
            started = self._clock()
            error: Exception | None = None
            try:
                response = litellm().completion(**self._request(messages, breakpoints))
                parsed = _parse(response)
            except Exception as exc:  # every provider failure; classified below
                error, parsed = exc, None
            latency = self._clock() - started
            if parsed is not None:
                return self._record(parsed, estimated, recorded, latency, retries, where)
            failure = classify(error) if error is not None else Failure(
                "malformed_response", "the response has no choices or no message")
            if failure.kind == "context_overflow":
                self.journal.append("llm.failed", **where, failure=failure.kind,
                                    message=failure.message, attempts=retries + 1)
                return ContextOverflow(failure.message, estimated, cost.model_limits(s.model)[0],
                                       s.model)
            if not failure.transient:
                self.journal.append("llm.failed", **where, failure=failure.kind,
                                    message=failure.message, attempts=retries + 1)
                raise permanent_error(failure, s.model, s.api_base, key_env(s.model)) from error
            wait = backoff_s(retries + 1, failure.retry_after_s, base_s=s.backoff_base_s,
                             cap_s=s.backoff_cap_s, rng=self._rng)
            if retries + 1 >= s.max_attempts or waited + wait > s.max_total_wait_s:
                self.journal.append("llm.failed", **where, failure=failure.kind,
                                    message=failure.message, attempts=retries + 1)
                raise LLMUnavailable(
                    f"{s.model} did not answer: {retries + 1} attempts and {waited:.0f} s of "
                    f"backoff (limits: {s.max_attempts} attempts, {s.max_total_wait_s:g} s); last "
                    f"failure {failure.kind}: {failure.message}. Nothing is lost: continue later "
                    f"with --resume {self.journal.path.parent}") from error
            self.journal.append("llm.retry", **where, attempt=retries + 1, failure=failure.kind,
                                wait_s=round(wait, 3), status_code=failure.status_code,
                                message=failure.message)
            self._sleep(wait)
            waited += wait
            retries += 1

    def _record(self, parsed: Parsed, estimated: int, recorded: RecordedReply | None,
                latency: float, retries: int, where: dict[str, Any]) -> Completion:
        text, finish_reason, input_tokens, output_tokens = (parsed.text, parsed.finish_reason,
                                                            parsed.input_tokens, parsed.output_tokens)
        model = self.settings.model
        if recorded is not None or input_tokens is None:
            input_tokens = estimated
        if recorded is not None or output_tokens is None:
            output_tokens = cost.estimate_tokens([{"role": "assistant", "content": text}], model)
        read = min(parsed.cache_read_tokens, input_tokens)
        written = min(parsed.cache_write_tokens, input_tokens - read)
        price = cost.call_cost(model, input_tokens, output_tokens, self.settings.price_per_mtok,
                               cache_read_tokens=read, cache_write_tokens=written)
        completion = Completion(text, input_tokens, output_tokens, price, latency, retries, model,
                                recorded is not None, finish_reason, read, written)
        self.journal.append("llm.response", **where, text=text, input_tokens=input_tokens,
                            cache_read_tokens=read, cache_write_tokens=written,
                            uncached_input_tokens=input_tokens - read - written,
                            output_tokens=output_tokens, cost_usd=price,
                            latency_s=round(latency, 3), retries=retries,
                            replay=completion.replay, finish_reason=finish_reason)
        if self._shared is not None:
            self._shared.add_cost(price)
        return completion


def request_args(settings: LLMSettings, messages: list[Message], max_tokens: int,
                 env: Mapping[str, str], breakpoints: Sequence[caching.Breakpoint] | None = None) -> dict[str, Any]:
    """The keyword arguments of one `litellm.completion` call to the configured model, with
    cache `breakpoints` (None: the system message's) where the provider caches only what is marked."""
    s = settings
    args: dict[str, Any] = {
        "model": s.model, "messages": messages, "timeout": s.timeout_s,
        "temperature": s.temperature, "max_tokens": max_tokens, "drop_params": True,
        # ours decide: litellm's own retries would retry a 401 and sleep unseen
        "num_retries": 0, "max_retries": 0,
    }
    rules = caching.rules_for(s.model)
    if rules is not None and rules.explicit:  # the provider caches only what we mark
        marks = caching.system_breakpoint(messages) if breakpoints is None else breakpoints
        args["messages"] = caching.with_breakpoints(messages, marks)
    if s.api_base:
        args["api_base"] = s.api_base
    if s.api_key:
        args["api_key"] = s.api_key
    elif s.api_base and not has_key(s.model, env):
        args["api_key"] = NO_KEY
    return args


@dataclass(frozen=True)
class Parsed:
    """What a response says, before it is priced."""

    text: str
    """The reply's text."""
    finish_reason: str | None
    """Why the model stopped, if it said."""
    input_tokens: int | None = None
    """Every prompt token the provider counted (cached ones included); None if it did not say."""
    output_tokens: int | None = None
    """Reply tokens the provider counted; None if it did not say."""
    cache_read_tokens: int = 0
    """Prompt tokens served from the provider's cache (`prompt_tokens_details.cached_tokens`)."""
    cache_write_tokens: int = 0
    """Prompt tokens written to the cache (Anthropic's `cache_creation_input_tokens`)."""


def _field(obj: Any, name: str) -> Any:
    return obj.get(name) if isinstance(obj, dict) else getattr(obj, name, None)


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _parse(response: Any) -> Parsed | None:
    """The response's text, finish reason and token counts; None for a malformed response."""
    try:
        choice = response.choices[0]
        content = choice.message.content
    except (AttributeError, IndexError, KeyError, TypeError):
        return None
    usage = getattr(response, "usage", None)
    details = _field(usage, "prompt_tokens_details")
    read = _count(_field(details, "cached_tokens")) or _count(_field(usage, "cache_read_input_tokens")) or 0
    written = (_count(_field(usage, "cache_creation_input_tokens"))
               or _count(_field(details, "cache_creation_tokens")) or _count(_field(details, "cache_write_tokens")) or 0)
    return Parsed(content if isinstance(content, str) else "", getattr(choice, "finish_reason", None),
                  _count(_field(usage, "prompt_tokens")), _count(_field(usage, "completion_tokens")),
                  read, written)
