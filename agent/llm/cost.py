"""Prices, token estimates and spend. Spend is a fold over the journal, never a counter.

An unknown price is None all the way to the journal: a local or unlisted model must not crash
the run, and must not be reported as free either. `LLMSettings.price_per_mtok` (the
`--price-per-mtok` flag) or `register_price` fills the gap.

Cached input is priced apart (`Prices`): tokens read from a provider's prompt cache and
tokens written to it, at litellm's cache prices for the model, or, for a price given by hand,
at the provider's documented factors of the input price (`agent.llm.caching`; no discount
where the provider is not known to cache).
"""

from __future__ import annotations

import importlib.util
import math
import os
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from agent.journal import Event
from agent.llm.backend import litellm
from agent.llm.caching import Breakpoint, Prompt, blocks, rules_for
from agent.llm.records import Message

Price = tuple[float, float]
"""(input, output) USD per million tokens, as a user states a price (--price-per-mtok)."""

_REGISTERED: dict[str, tuple[float, float]] = {}
"""Prices set with `register_price`: model -> (USD per input token, USD per output token)."""

DEFAULT_OUTPUT_GUESS = 1024
"""Reply tokens assumed for a cost estimate before the journal has any reply to average."""


def register_price(model: str, input_per_mtok: float, output_per_mtok: float) -> None:
    """Price a model litellm does not know (a local server, a fine-tune), in USD per million
    tokens; it takes precedence over litellm's price map."""
    _REGISTERED[model] = (input_per_mtok / 1e6, output_per_mtok / 1e6)


def is_replay(model: str) -> bool:
    return model.startswith("replay:")


def price_per_token(model: str, given: Price | None = None) -> tuple[float, float] | None:
    """(input, output) USD per token, or None if nobody knows. A replay is free; else `given`
    (USD per million tokens, from --price-per-mtok) wins over everything else."""
    if is_replay(model):
        return (0.0, 0.0)
    if given is not None:
        return (given[0] / 1e6, given[1] / 1e6)
    if model in _REGISTERED:
        return _REGISTERED[model]
    try:
        cost_in, cost_out = litellm().cost_per_token(
            model=model, prompt_tokens=1_000_000, completion_tokens=1_000_000)
        return (float(cost_in) / 1e6, float(cost_out) / 1e6)
    except Exception:  # litellm raises several kinds for "not in the map"
        return None


@dataclass(frozen=True)
class Prices:
    """USD per token of one model, cached input apart."""

    input: float
    """An uncached input token."""
    output: float
    """A reply token."""
    cache_read: float
    """An input token served from the provider's prompt cache."""
    cache_write: float
    """An input token written to the provider's prompt cache."""


def prices(model: str, given: Price | None = None) -> Prices | None:
    """The model's prices with its cache prices, or None if nobody knows its price: litellm's
    map where it lists cache prices (and no --price-per-mtok overrides it), else the provider's
    documented factors of the input price (`caching.rules_for`), else the input price."""
    price = price_per_token(model, given)
    if price is None:
        return None
    rules = rules_for(model)
    read = price[0] * (rules.read_factor if rules else 1.0)
    write = price[0] * (rules.write_factor if rules else 1.0)
    if given is None and not is_replay(model) and model not in _REGISTERED:
        try:
            info = litellm().get_model_info(model)
        except Exception:  # not in the map: the factors above
            info = {}
        listed_read, listed_write = info.get("cache_read_input_token_cost"), info.get("cache_creation_input_token_cost")
        read = float(listed_read) if isinstance(listed_read, (int, float)) else read
        write = float(listed_write) if isinstance(listed_write, (int, float)) else write
    return Prices(price[0], price[1], read, write)


def call_cost(model: str, input_tokens: int, output_tokens: int, given: Price | None = None, *,
              cache_read_tokens: int = 0, cache_write_tokens: int = 0) -> float | None:
    """USD for one call, or None when the model's price is unknown. `input_tokens` counts every
    input token, those read from or written to the cache included."""
    p = prices(model, given)
    if p is None:
        return None
    uncached = max(0, input_tokens - cache_read_tokens - cache_write_tokens)
    return (p.input * uncached + p.cache_read * cache_read_tokens + p.cache_write * cache_write_tokens
            + p.output * output_tokens)


def estimate_tokens(messages: list[Message], model: str) -> int:
    """Prompt tokens, estimated before sending: litellm's counter for the model; for a replay,
    GPT-4's tokenizer (`replay_tokens`); else ~3 characters a token."""
    try:
        if is_replay(model):
            return replay_tokens(messages)
        return int(litellm().token_counter(model=model, messages=messages))
    except Exception:
        chars = sum(len(m.get("content") or "") for m in messages)
        return math.ceil(chars / 3) + 4 * len(messages) + 3


def replay_tokens(messages: list[Message]) -> int:
    """A replayed call's tokens, as GPT-4 would count them: cl100k_base (the tiktoken file that
    litellm ships, read without importing litellm, which takes seconds a process: an offline
    launch never needs it) plus OpenAI's chat overhead (3 per message, 3 for the reply). Within
    a fraction of a percent of litellm's own count; the figures are informative (a replay is free)."""
    encoding = _cl100k()
    total = 3
    for message in messages:
        total += 3 + sum(len(encoding.encode(value, disallowed_special=()))
                         for value in message.values() if isinstance(value, str))
    return total


@cache
def _cl100k() -> Any:
    spec = importlib.util.find_spec("litellm")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("litellm")
    bundled = Path(next(iter(spec.submodule_search_locations))) / "litellm_core_utils" / "tokenizers"
    os.environ.setdefault("TIKTOKEN_CACHE_DIR", str(bundled))  # offline: litellm's copy of the file
    import tiktoken

    return tiktoken.get_encoding("cl100k_base")


def model_limits(model: str) -> tuple[int | None, int | None]:
    """(max input tokens, max output tokens) from litellm's map, None where unknown."""
    if is_replay(model):
        return (None, None)
    try:
        info = litellm().get_model_info(model)
    except Exception:
        return (None, None)
    limits = (info.get("max_input_tokens"), info.get("max_output_tokens"))
    return (limits[0] if isinstance(limits[0], int) else None,
            limits[1] if isinstance(limits[1], int) else None)


def spent_usd(events: Iterable[Event]) -> float:
    """Dollars spent by the run so far: the sum of known costs of `llm.response` events."""
    return sum(e.data.get("cost_usd") or 0.0 for e in events if e.kind == "llm.response")


def estimate_call_usd(model: str, input_tokens: int, events: Iterable[Event],
                      max_output_tokens: int, given: Price | None = None, cached_tokens: int = 0) -> float:
    """What the next call will probably cost: its prompt (`cached_tokens` of it at the cache's
    read price: the prefix it shares with the call before), plus a reply as long as the run's
    replies so far on average. 0.0 when the price is unknown."""
    p = prices(model, given)
    if p is None:
        return 0.0
    outputs = [e.data.get("output_tokens") or 0 for e in events if e.kind == "llm.response"]
    guess = round(sum(outputs) / len(outputs)) if outputs else DEFAULT_OUTPUT_GUESS
    cached = min(cached_tokens, input_tokens)
    return p.input * (input_tokens - cached) + p.cache_read * cached + p.output * min(guess, max_output_tokens)


def cache_prompt(messages: list[Message], breakpoints: Iterable[Breakpoint], at_s: float = 0.0) -> Prompt:
    """A request as `caching.simulate` sees it: each message's content in cl100k tokens, cut
    into the blocks its cache `breakpoints` make (each block encoded on its own, as sent)."""
    encoding = _cl100k()
    parts = blocks(messages, breakpoints)
    flags = [marked for message in parts for _, marked in message]
    return Prompt(at_s, tuple((m.get("role") or "", tuple(tuple(encoding.encode(text, disallowed_special=()))
                                                          for text, _ in message))
                              for m, message in zip(messages, parts, strict=True)),
                  tuple(i for i, marked in enumerate(flags) if marked))
