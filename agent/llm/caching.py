"""Provider prompt caching: which requests carry cache breakpoints, what a cached token costs,
and which part of a sequence of prompts a provider would serve from its cache.

The rules, as the providers document them (2026):
- **anthropic** (and Claude through other providers): explicit `cache_control` breakpoints on
  content blocks, at most 4 a request. A prefix under 1,024 tokens is not cached. Writing a
  prefix costs 1.25x the input price, reading it 0.1x; an entry lives 5 minutes from its last
  use. A request reads the longest cached prefix that ends at one of its breakpoints or at a
  block boundary up to 20 blocks before one; it writes the prefixes that end at its breakpoints.
- **openai**: automatic for prompts of 1,024 tokens or more: the longest prefix seen before,
  in steps of 128 tokens, at 0.5x the input price (less on newer models; litellm's price map
  says), with no charge for writing.
- anything else: no caching is assumed (a cached token would be priced as input).

Each call says where its breakpoints go (`Breakpoint`; journaled with the request): by default
the end of the system message (the stable part every call of a stage shares). A caller marks
more where the next call reuses it: the writeup marks the paper drafted so far (the next
section's draft starts the same) and the end of a draft's prompt (its refine resends it); an
edit retry marks its last message (a further retry resends it). Marking a part no later call
reads would cost the 1.25x write for nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
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


@dataclass(frozen=True)
class Breakpoint:
    """A place in a request where the provider is asked to cache the prompt's prefix before it
    (Anthropic's `cache_control` on the content block that ends there)."""

    message: int
    """Index of the message the prefix ends in."""
    at: int | None = None
    """Characters of that message's content inside the prefix; None: all of it. A message cut
    by breakpoints is sent as several text blocks, one ending at each."""

    def to_json(self) -> list[int | None]:
        return [self.message, self.at]

    @staticmethod
    def from_json(value: Sequence[int | None]) -> Breakpoint:
        return Breakpoint(int(value[0] or 0), None if value[1] is None else int(value[1]))


def system_breakpoint(messages: Sequence[Message]) -> list[Breakpoint]:
    """What a call marks unless its caller knows better: the system message, the stable part
    every call of a stage shares. The last message is not marked by default: writing it costs
    1.25x its input price, for nothing unless the next call resends it."""
    return [Breakpoint(0)] if messages and messages[0].get("role") == "system" else []


def legacy_breakpoints(messages: Sequence[Message]) -> list[Breakpoint]:
    """What requests journaled before breakpoints were journaled carried: the system message
    and the last message."""
    return sorted({*system_breakpoint(messages), *([Breakpoint(len(messages) - 1)] if messages else [])},
                  key=_order)


def _order(bp: Breakpoint) -> tuple[int, float]:
    return (bp.message, float("inf") if bp.at is None else bp.at)


def normalized(messages: Sequence[Message], breakpoints: Iterable[Breakpoint]) -> list[Breakpoint]:
    """The breakpoints in prompt order, each once, every one ending a block with text in it: a
    cut at a message's end (or with only whitespace after it) is its end, a cut that would leave
    a block of whitespace is dropped (Anthropic refuses empty text blocks). More than
    `MAX_BREAKPOINTS` is a bug of the caller (the provider would refuse the request)."""
    out: set[Breakpoint] = set()
    for bp in breakpoints:
        i = bp.message + len(messages) if bp.message < 0 else bp.message
        if not 0 <= i < len(messages):
            raise ValueError(f"a cache breakpoint in message {bp.message} of {len(messages)}")
        content = messages[i].get("content") or ""
        at = bp.at if bp.at is not None and content[bp.at:].strip() else None
        if at is not None and at <= 0:
            continue
        out.add(Breakpoint(i, at))
    kept: list[Breakpoint] = []
    for bp in sorted(out, key=_order):
        previous = kept[-1] if kept and kept[-1].message == bp.message else None
        start = (previous.at or 0) if previous is not None else 0
        content = messages[bp.message].get("content") or ""
        if bp.at is not None and not content[start:bp.at].strip():
            continue
        kept.append(bp)
    if len(kept) > MAX_BREAKPOINTS:
        raise ValueError(f"{len(kept)} cache breakpoints: the provider accepts at most {MAX_BREAKPOINTS}")
    return kept


def blocks(messages: Sequence[Message], breakpoints: Iterable[Breakpoint]) -> list[list[tuple[str, bool]]]:
    """Each message's content as the text blocks the breakpoints cut it into: (text, whether a
    breakpoint ends the block)."""
    cuts: dict[int, list[int | None]] = {}
    for bp in normalized(messages, breakpoints):
        cuts.setdefault(bp.message, []).append(bp.at)
    out: list[list[tuple[str, bool]]] = []
    for i, message in enumerate(messages):
        content, start, parts = message.get("content") or "", 0, []
        for at in cuts.get(i, []):
            end = len(content) if at is None else at
            parts.append((content[start:end], True))
            start = end
        if start < len(content) or not parts:
            parts.append((content[start:], False))
        out.append(parts)
    return out


def with_breakpoints(messages: Sequence[Message], breakpoints: Iterable[Breakpoint]) -> list[dict[str, Any]]:
    """The messages as Anthropic wants them cached (through litellm): a message with a
    breakpoint goes as text blocks, each block that ends at a breakpoint marked
    `cache_control: ephemeral`; the others go as they are."""
    out: list[dict[str, Any]] = []
    for message, parts in zip(messages, blocks(messages, breakpoints), strict=True):
        if any(marked for _, marked in parts) and isinstance(message.get("content"), str):
            content = [{"type": "text", "text": text, **({"cache_control": {"type": "ephemeral"}} if marked else {})}
                       for text, marked in parts]
            out.append({**message, "content": content})
        else:
            out.append(dict(message))
    return out


def cached_prefix(previous: Sequence[Message], previous_breakpoints: Iterable[Breakpoint],
                  current: Sequence[Message], current_breakpoints: Iterable[Breakpoint],
                  rules: CacheRules) -> list[Message]:
    """The leading part of `current` the cache can serve after `previous` was sent (an estimate
    for the budget check, not what the provider reports): with explicit caching, the longest
    prefix `previous` wrote at one of its breakpoints that ends at one of `current`'s block
    boundaries; with automatic caching, the messages the two share."""
    if not rules.explicit:
        k = 0
        while k < min(len(previous), len(current)) and previous[k] == current[k]:
            k += 1
        return list(current[:k])
    written = {_prefix_key(previous, bp) for bp in normalized(previous, previous_breakpoints)}
    marks = normalized(current, current_breakpoints)
    if not marks:
        return []
    ends = [Breakpoint(i) for i in range(marks[-1].message)] + marks  # block boundaries a read may end at
    hits = [bp for bp in ends if _prefix_key(current, bp) in written]
    if not hits:
        return []
    best = max(hits, key=_order)
    content = current[best.message].get("content") or ""
    return [*current[:best.message], {**current[best.message], "content": content[:best.at]}]


def _prefix_key(messages: Sequence[Message], bp: Breakpoint) -> tuple[Any, ...]:
    head = tuple((m.get("role"), m.get("content")) for m in messages[:bp.message])
    message = messages[bp.message]
    return (head, message.get("role"), (message.get("content") or "")[:bp.at])


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
    messages: tuple[tuple[str, tuple[tuple[int, ...], ...]], ...]
    """(role, token ids of each content block) per message."""
    marked: tuple[int, ...] = ()
    """Indices, over all blocks in prompt order, of the blocks that end at a breakpoint."""


OVERHEAD = 3
"""Tokens a chat message costs beyond its content (OpenAI's count; close for others)."""
LOOKBACK_BLOCKS = 20
"""Anthropic looks for a cached prefix at a breakpoint and at the block boundaries before it,
about this many blocks back."""

ROLES = {"system": 0, "user": 1, "assistant": 2}


def _flat(prompt: Prompt) -> tuple[list[int], list[int]]:
    """The prompt's tokens in one list, and the offsets in it where its blocks end."""
    out: list[int] = []
    ends: list[int] = []
    for role, parts in prompt.messages:
        out += [-1, -2 - ROLES.get(role, len(ROLES)), -1]  # OVERHEAD ids: the message's header
        for tokens in parts:
            out += tokens
            ends.append(len(out))
    return out, ends


def input_tokens(prompt: Prompt) -> int:
    """The request's input tokens: each message's content and overhead, and the reply's 3."""
    return sum(OVERHEAD + sum(len(t) for t in parts) for _, parts in prompt.messages) + OVERHEAD


def _common(a: list[int], b: list[int]) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


def simulate(prompts: Sequence[Prompt], rules: CacheRules) -> list[CacheUse]:
    """What a provider with `rules` would serve from its cache for each prompt of a sequence,
    each sent after the one before (explicit rules: with each prompt's breakpoints, `marked`).
    Message overhead counts as `OVERHEAD` tokens before each message's content."""
    entries: dict[tuple[int, ...], float] = {}  # a cached prefix (flattened tokens) -> last use
    seen: list[tuple[list[int], float]] = []  # automatic caching: earlier prompts, last use
    uses: list[CacheUse] = []
    for prompt in prompts:
        flat, ends = _flat(prompt)
        total = input_tokens(prompt)
        if rules.explicit:
            live = {k for k, t in entries.items() if prompt.at_s - t <= rules.ttl_s}
            # a read ends at a breakpoint or at a block boundary at most LOOKBACK_BLOCKS before one
            looked = {j for b in prompt.marked for j in range(max(0, b - LOOKBACK_BLOCKS + 1), b + 1)}
            hits = [ends[j] for j in looked if ends[j] >= rules.min_tokens and tuple(flat[:ends[j]]) in live]
            read = max(hits, default=0)
            if read:
                entries[tuple(flat[:read])] = prompt.at_s
            written = 0
            for b in prompt.marked:
                if ends[b] >= rules.min_tokens and ends[b] > read:
                    entries[tuple(flat[:ends[b]])] = prompt.at_s
                    written = ends[b] - read
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
