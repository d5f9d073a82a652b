"""Provider prompt caching: which requests carry cache breakpoints, what a cached token costs,
and which part of a sequence of prompts a provider would serve from its cache.

The rules, as the providers document them (2026):
- **anthropic** (and Claude through other providers): explicit `cache_control` breakpoints on
  content blocks, at most 4 a request. A prefix under 1,024 tokens is not cached. Writing a
  prefix costs 1.25x the input price, reading it 0.1x; an entry lives 5 minutes from its last
  use. A request reads the longest cached prefix that ends at one of its block boundaries
  (looking back from its breakpoints); it writes the prefixes that end at its breakpoints.
- **openai**: automatic for prompts of 1,024 tokens or more: the longest prefix seen before,
  in steps of 128 tokens, at 0.5x the input price (less on newer models; litellm's price map
  says), with no charge for writing.
- anything else: no caching is assumed (a cached token would be priced as input).

We put one breakpoint at the end of the system message (the stable part every call of a stage
shares) and one at the end of the last message (so the next call, which resends this one and
adds to it — a refine, an edit retry — reads all of it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from agent.llm.providers import provider_of
from agent.llm.records import Message


@dataclass(frozen=True)
class CacheRules:
    """How one provider caches prompt prefixes."""

    provider: str
    """The litellm provider prefix the rules are for."""
    explicit: bool
    """True when a prefix is cached only up to a `cache_control` breakpoint we send."""
    min_tokens: int
    """The shortest prefix the provider caches."""
    step_tokens: int
    """Cached prefixes are whole multiples of this past `min_tokens` (1 = any length)."""
    read_factor: float
    """A cached input token's price as a fraction of an uncached one."""
    write_factor: float
    """A token written to the cache, as a fraction of the input price."""
    ttl_s: float
    """Seconds an entry lives after its last use."""


ANTHROPIC = CacheRules("anthropic", True, 1024, 1, 0.1, 1.25, 300.0)
OPENAI = CacheRules("openai", False, 1024, 128, 0.5, 1.0, 300.0)
MAX_BREAKPOINTS = 4
"""Anthropic refuses a request with more `cache_control` blocks than this."""


def rules_for(model: str) -> CacheRules | None:
    """The caching rules of the provider that serves `model`; None where none is assumed."""
    provider = provider_of(model)
    if provider == "anthropic" or "claude" in model.lower():
        return ANTHROPIC
    if provider in ("openai", "azure"):
        return OPENAI
    return None


def with_breakpoints(messages: Sequence[Message]) -> list[dict[str, Any]]:
    """The messages as Anthropic wants them cached (through litellm): the system message and
    the last message as one text block each, marked `cache_control: ephemeral`."""
    marked = set(breakpoint_indices(messages))
    out: list[dict[str, Any]] = []
    for i, message in enumerate(messages):
        if i in marked and isinstance(message.get("content"), str):
            block = {"type": "text", "text": message["content"], "cache_control": {"type": "ephemeral"}}
            out.append({**message, "content": [block]})
        else:
            out.append(dict(message))
    return out


def breakpoint_indices(messages: Sequence[Message]) -> list[int]:
    """Indices of the messages `with_breakpoints` marks."""
    marked = {len(messages) - 1} if messages else set()
    if messages and messages[0].get("role") == "system":
        marked.add(0)
    return sorted(marked)


@dataclass(frozen=True)
class CacheUse:
    """How one request's input tokens split between the cache and the rest."""

    input_tokens: int
    """All input tokens."""
    read_tokens: int
    """Served from the cache."""
    write_tokens: int
    """Written to the cache (priced at the write factor)."""

    @property
    def uncached_tokens(self) -> int:
        return max(0, self.input_tokens - self.read_tokens - self.write_tokens)


@dataclass(frozen=True)
class Prompt:
    """One request as the simulation sees it."""

    at_s: float
    """When it was sent, in seconds (any origin)."""
    messages: tuple[tuple[str, tuple[int, ...]], ...]
    """(role, token ids of the content) per message."""


OVERHEAD = 3
"""Tokens a chat message costs beyond its content (OpenAI's count; close for others)."""


ROLES = {"system": 0, "user": 1, "assistant": 2}


def _flat(prompt: Prompt) -> list[int]:
    out: list[int] = []
    for role, tokens in prompt.messages:
        out += [-1, -2 - ROLES.get(role, len(ROLES)), -1, *tokens]  # OVERHEAD ids: its header
    return out


def _boundaries(prompt: Prompt) -> list[int]:
    """Token offsets of the ends of the messages, in the flattened prompt."""
    ends, total = [], 0
    for _, tokens in prompt.messages:
        total += OVERHEAD + len(tokens)
        ends.append(total)
    return ends


def _common(a: list[int], b: list[int]) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


def simulate(prompts: Sequence[Prompt], rules: CacheRules) -> list[CacheUse]:
    """What a provider with `rules` would serve from its cache for each prompt of a sequence,
    each sent after the one before (with the breakpoints of `with_breakpoints` for explicit
    rules). Message overhead counts as `OVERHEAD` tokens before each message's content."""
    entries: dict[tuple[int, ...], float] = {}  # a cached prefix (flattened tokens) -> last use
    seen: list[tuple[list[int], float]] = []  # automatic caching: earlier prompts, last use
    uses: list[CacheUse] = []
    for prompt in prompts:
        flat = _flat(prompt)
        # the request's input tokens: each message's content and overhead, and the reply's 3
        total = sum(OVERHEAD + len(t) for _, t in prompt.messages) + OVERHEAD
        if rules.explicit:
            ends = _boundaries(prompt)
            live = {k: t for k, t in entries.items() if prompt.at_s - t <= rules.ttl_s}
            read = 0
            for end in reversed(ends):
                key = tuple(flat[:end])
                if end >= rules.min_tokens and key in live:
                    read, entries[key] = end, prompt.at_s
                    break
            marks = [ends[i] for i in breakpoint_indices([{"role": r} for r, _ in prompt.messages])]
            written = 0
            for end in marks:
                if end >= rules.min_tokens and end > read:
                    entries[tuple(flat[:end])] = prompt.at_s
                    written = end - read
            uses.append(CacheUse(total, read, written))
            continue
        best = 0
        for i, (earlier, used) in enumerate(seen):
            if prompt.at_s - used > rules.ttl_s:
                continue
            shared = _common(flat, earlier)
            if shared > best:
                best = shared
                seen[i] = (earlier, prompt.at_s)
        read = 0 if best < rules.min_tokens else (
            rules.min_tokens + (best - rules.min_tokens) // rules.step_tokens * rules.step_tokens)
        seen.append((flat, prompt.at_s))
        uses.append(CacheUse(total, read, 0))
    return uses


def reusable_messages(previous: Sequence[Message], current: Sequence[Message], rules: CacheRules) -> int:
    """How many leading messages of `current` the cache can serve after `previous` was sent
    (whole messages only: an estimate for the budget check, not what the provider reports)."""
    k = 0
    while k < min(len(previous), len(current)) and previous[k] == current[k]:
        k += 1
    if not rules.explicit:
        return k
    written = [i + 1 for i in breakpoint_indices(previous)]  # prefixes the call before wrote
    return max((n for n in written if n <= k), default=0)
