"""Provider prompt caching: breakpoints sent, cached tokens journaled and priced apart, the
budget check counting a shared prefix at the cache's price, and the cache simulation's rules."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.journal import Journal
from agent.llm import Completion, LLMClient, LLMSettings, caching, register_price
from agent.llm import cost as llm_cost
from agent.llm.caching import ANTHROPIC, OPENAI, Breakpoint, Prompt, simulate
from agent.llm.client import request_args
from tests.fakellm import FakeLLM, Reply

SYSTEM = {"role": "system", "content": "You write papers. " * 50}
DRAFT = [SYSTEM, {"role": "user", "content": "Write the Method section."}]
REFINE = [*DRAFT, {"role": "assistant", "content": "Here it is."}, {"role": "user", "content": "Refine it."}]


@pytest.fixture(autouse=True)
def _no_registered_prices(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(llm_cost, "_REGISTERED", {})


def _client(srv: FakeLLM, journal: Journal, **overrides: object) -> LLMClient:
    settings = LLMSettings("openai/test-model", api_base=srv.base_url, api_key="sk-test", timeout_s=5.0,
                           **overrides)  # type: ignore[arg-type]
    return LLMClient(settings, journal, sleep=lambda _: None, rng=lambda: 0.5)


def test_cached_tokens_are_journaled_and_priced_at_the_cache_price(tmp_path: Path) -> None:
    register_price("openai/test-model", input_per_mtok=3.0, output_per_mtok=15.0)
    journal = Journal(tmp_path / "journal.jsonl")
    with FakeLLM([Reply("a", usage=(2000, 100)), Reply("b", usage=(2100, 100), cached_tokens=1920)]) as srv:
        client = _client(srv, journal)
        first = client.complete(DRAFT, stage="writeup", prompt_kind="writeup.draft")
        second = client.complete(REFINE, stage="writeup", prompt_kind="writeup.refine")
    assert isinstance(first, Completion) and isinstance(second, Completion)
    assert (first.cache_read_tokens, second.cache_read_tokens) == (0, 1920)
    # OpenAI's documented cache price: half the input price
    assert second.cost_usd == pytest.approx(180 * 3e-6 + 1920 * 1.5e-6 + 100 * 15e-6)
    replies = [e.data for e in journal.of_kind("llm.response")]
    assert [(r["cache_read_tokens"], r["cache_write_tokens"], r["uncached_input_tokens"]) for r in replies] == [
        (0, 0, 2000), (1920, 0, 180)]
    assert llm_cost.spent_usd(journal.events()) == pytest.approx(first.cost_usd + second.cost_usd)


def test_anthropic_requests_mark_the_system_message_and_not_the_last_message_by_default() -> None:
    """The last message is marked only where the caller says the next call resends it: writing
    it costs 1.25x its input price, for nothing otherwise."""
    args = request_args(LLMSettings("anthropic/claude-sonnet-4-5"), REFINE, 1000, {})
    marked = [i for i, m in enumerate(args["messages"]) if isinstance(m["content"], list)]
    assert marked == [0]
    assert args["messages"][0]["content"] == [{"type": "text", "text": SYSTEM["content"],
                                               "cache_control": {"type": "ephemeral"}}]
    assert args["messages"][1:] == REFINE[1:]
    # OpenAI caches by itself: the messages go as they are
    assert request_args(LLMSettings("openai/gpt-4.1"), REFINE, 1000, {})["messages"] == REFINE


def test_a_breakpoint_inside_a_message_sends_it_as_blocks_with_the_cut_marked() -> None:
    user = "The paper so far.\nThe request."
    messages = [SYSTEM, {"role": "user", "content": user}]
    cut = user.index("The request.")
    args = request_args(LLMSettings("anthropic/claude-sonnet-4-5"), messages, 1000, {},
                        [Breakpoint(0), Breakpoint(1, cut), Breakpoint(1)])
    assert args["messages"][1]["content"] == [
        {"type": "text", "text": user[:cut], "cache_control": {"type": "ephemeral"}},
        {"type": "text", "text": "The request.", "cache_control": {"type": "ephemeral"}}]
    # a cut with no text after it is the message's end; one with no text before it is dropped
    # (Anthropic refuses empty blocks); a cut not at the end leaves an unmarked last block
    assert caching.normalized(messages, [Breakpoint(1, len(user)), Breakpoint(1, 0)]) == [Breakpoint(1)]
    assert caching.blocks(messages, [Breakpoint(1, cut)])[1] == [(user[:cut], True), ("The request.", False)]
    with pytest.raises(ValueError, match="at most 4"):
        caching.normalized(messages, [Breakpoint(0), *(Breakpoint(1, i) for i in (3, 6, 9)), Breakpoint(1)])


def test_the_budget_check_prices_the_prefix_shared_with_the_last_call_at_the_cache_price(tmp_path: Path) -> None:
    register_price("anthropic/claude-test", input_per_mtok=3.0, output_per_mtok=15.0)
    journal = Journal(tmp_path / "journal.jsonl")
    system = {"role": "system", "content": "stable context " * 2000}  # ~4,000 tokens, cached
    first = [system, {"role": "user", "content": "part one"}]
    second = [system, {"role": "user", "content": "part two"}]
    full = llm_cost.estimate_call_usd("anthropic/claude-test", llm_cost.estimate_tokens(second, "openai/gpt-4"),
                                      [], 10)
    journal.append("llm.request", stage="writeup", prompt_kind="writeup.draft", messages=first)
    client = LLMClient(LLMSettings("anthropic/claude-test"), journal)
    client._pending, client._pending_breakpoints = second, [Breakpoint(0)]
    cached = client._cached_guess(journal.events())
    assert cached >= 3000
    cheaper = llm_cost.estimate_call_usd("anthropic/claude-test", llm_cost.estimate_tokens(second, "openai/gpt-4"),
                                         [], 10, cached_tokens=cached)
    assert cheaper < 0.3 * full
    # only prefixes the call before wrote at a breakpoint count: the first user message differs,
    # the system is shared; a refine reads its draft when the draft marked its end
    assert caching.cached_prefix(first, [Breakpoint(0)], second, [Breakpoint(0)], ANTHROPIC) == [system]
    assert caching.cached_prefix(DRAFT, [Breakpoint(0)], REFINE, [Breakpoint(0), Breakpoint(1)], ANTHROPIC) == [SYSTEM]
    assert caching.cached_prefix(DRAFT, [Breakpoint(0), Breakpoint(1)], REFINE, [Breakpoint(0), Breakpoint(1)],
                                 ANTHROPIC) == DRAFT


def _prompt(at: float, *contents: tuple[str, int, int], marked: tuple[int, ...] | None = None) -> Prompt:
    """A prompt of one-block messages (role, first token id, length): equal ids = equal content;
    marked: the blocks that end at a breakpoint (default: the system message and the last one)."""
    if marked is None:
        marked = (0, len(contents) - 1)
    return Prompt(at, tuple((role, (tuple(range(start, start + n)),)) for role, start, n in contents), marked)


def test_explicit_caching_reads_a_prefix_written_at_a_breakpoint_and_not_after_its_ttl() -> None:
    system = ("system", 0, 3000)
    calls = [_prompt(0, system, ("user", 10_000, 500)),
             _prompt(60, system, ("user", 20_000, 500)),  # same system: read
             _prompt(90, system, ("user", 20_000, 500), ("assistant", 30_000, 200), ("user", 40_000, 50)),
             _prompt(1000, system, ("user", 50_000, 500))]  # 15 minutes later: expired
    uses = simulate(calls, ANTHROPIC)
    assert uses[0].read_tokens == 0 and uses[0].write_tokens == uses[0].input_tokens - 3
    assert uses[1].read_tokens == 3003 and uses[1].write_tokens == 503
    assert uses[2].read_tokens == 3003 + 503  # the whole draft prompt, marked at its end
    assert uses[3].read_tokens == 0


def test_a_prefix_under_the_minimum_is_never_cached_and_automatic_caching_goes_by_128_tokens() -> None:
    short = [_prompt(0, ("system", 0, 500), ("user", 1000, 10)), _prompt(1, ("system", 0, 500), ("user", 2000, 10))]
    assert [u.read_tokens for u in simulate(short, ANTHROPIC)] == [0, 0]
    assert [u.read_tokens for u in simulate(short, OPENAI)] == [0, 0]
    long = [_prompt(0, ("system", 0, 1500), ("user", 5000, 10)), _prompt(1, ("system", 0, 1500), ("user", 9000, 10))]
    uses = simulate(long, OPENAI)
    assert uses[1].read_tokens == 1024 + 3 * 128 and uses[1].write_tokens == 0  # 1,506 shared tokens


def test_a_draft_reads_the_paper_prefix_the_draft_before_wrote_at_a_block_boundary() -> None:
    """Consecutive drafts: the second starts with the system, the paper drafted before the first
    draft's part (P), that part (S), then its own request. The first wrote P; the second reads
    it only because a block (and a breakpoint) ends there; within one block it reads the system."""
    system, paper, part = (0, 3000), (10_000, 800), (20_000, 600)

    def draft(at: float, *blocks: tuple[int, int], marked: tuple[int, ...]) -> Prompt:
        return Prompt(at, (("system", (tuple(range(system[0], system[0] + system[1])),)),
                           ("user", tuple(tuple(range(s, s + n)) for s, n in blocks))), marked)

    first = draft(0, paper, (30_000, 400), marked=(0, 1, 2))  # system | P | request 1
    second = draft(30, paper, part, (40_000, 400), marked=(0, 1, 2, 3))  # system | P | S | request 2
    uses = simulate([first, second], ANTHROPIC)
    assert uses[1].read_tokens == 3003 + 3 + 800  # the system and P, from the cache
    assert uses[1].write_tokens == 600 + 400  # S (for the next draft) and the request (for the refine)
    whole = draft(30, (10_000, 1800), marked=(0, 1))  # the same text in one block: no boundary after P
    assert simulate([first, whole], ANTHROPIC)[1].read_tokens == 3003
    # a boundary more than 20 blocks before every breakpoint is not looked at
    tail = tuple((50_000 + i,) for i in range(25))  # 25 one-token blocks after P, the last marked
    far = draft(30, paper, *((t[0], 1) for t in tail), marked=(26,))
    assert simulate([first, far], ANTHROPIC)[1].read_tokens == 0
