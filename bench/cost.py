"""What one paper costs in LLM calls, with and without providers' prompt caches.

    python bench/cost.py RUN_DIR [RUN_DIR ...]

For each run directory, from its journal: every request that was sent (`llm.request`, in
order, exactly the messages), its input tokens (tiktoken's cl100k, as `agent.llm.cost`
counts a replay), its reply's output tokens (`llm.response`), per stage; then the cost at
Sonnet-class list prices ($3 input / $15 output per million tokens) three ways:
- no cache: what the code before prompt caching paid (it sent no breakpoints);
- anthropic: the breakpoints each request carried (journaled with it, `llm.request`'s
  `cache_breakpoints`; a journal older than that: the system message and the last message, as
  the client marked them then), Anthropic's documented rules (1,024-token minimum, writes at
  1.25x, reads at 0.1x, 5-minute lifetime, at most 4 breakpoints, reads at block boundaries up
  to 20 blocks before a breakpoint; `agent.llm.caching`);
- openai: the automatic cache (1,024 tokens and up, 128-token steps, reads at 0.5x).
The cache is simulated from the prompts' real shared prefixes (`agent.llm.caching.simulate`).
The lifetime is checked against the journal's timestamps, each call moved later by what a live
model would have taken to answer the ones before (2 s + 50 output tokens a second), since a
replay answers at once.

Method for the before/after figures: BEFORE is the tiny main job run with the code before this
change (the reference session templates/sae_variants/ideas/orthogonal_sae.session.jsonl
replayed); AFTER is the same launch with this code, `python -m agent.launch --idea orthogonal_sae
--preset tiny --runs-dir DIR` (the same 24 replies, so the same calls; only the prompts differ).
Measured 2026-12-07 on the same 24 replies (cl100k tokens; output 14,742 tokens = $0.22 each time):
  before (/tmp/qs/20261207_070353_orthogonal_sae): 625,324 input tokens (writeup 577,146);
    $2.10 as sent (no breakpoints); $1.59 had Anthropic's cache been used; OpenAI's $1.67
  stable prefixes, system + last message marked (/tmp/cost-runs/20261207_073145_orthogonal_sae):
    396,122 input tokens; $0.69 with Anthropic's cache; OpenAI's $0.97; $1.41 without a cache.
  after (/tmp/costrun2/20261207_100940_orthogonal_sae): 346,051 input tokens (writeup 295,790,
    of which 264,601 read from the cache); $0.54 with Anthropic's cache (writeup $0.29,
    experiment $0.17, review $0.05, plot $0.03); OpenAI's $0.85; $1.26 without a cache.
  What took it from $0.69 to $0.54: consecutive drafts read the paper drafted so far from the
  cache (a breakpoint where the draft before marked it, one where the next draft will); the
  last message is marked only where the next call resends it (a draft's, for its refine); the
  experiment stage's system message holds the idea (1,467 tokens, over the minimum) and the
  turns after run 1 open with the plan, marked; the writeup's material says each fact once
  (notes.txt without the orchestrator's metric lines, the verdicts without the numbers the
  macros hold, a DeltaCI that spells out DeltaLow and DeltaHigh by name) and holds the refine
  checklist, which each refine sent after its draft in full (17,831 -> 14,780 tokens).
  The paper of the after run is the before run's, byte for byte (grounding clean, compiled, no
  problems). The margin depends on the cache's lifetime: in a launch on a machine loaded with
  other work, the runs took 220 s instead of 125 s, run 2's turn came 330 s after run 1's (its
  4,175-token reply counted at 50 tokens a second) and wrote the system message again: about
  $0.005 more than on an idle machine. A preset whose runs take over 5 minutes loses the
  experiment stage's reads the same way (about $0.02 here); the writeup's calls come seconds apart.
"""

from __future__ import annotations

import sys
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's agent, not an installed one

from agent.journal import read  # noqa: E402
from agent.llm import cost  # noqa: E402
from agent.llm.caching import (  # noqa: E402
    ANTHROPIC,
    OPENAI,
    Breakpoint,
    CacheUse,
    input_tokens,
    legacy_breakpoints,
    simulate,
)

INPUT, OUTPUT = 3.0 / 1e6, 15.0 / 1e6
"""Sonnet-class list prices, USD per token."""
TARGET_USD = 0.55
"""What one paper should cost with Anthropic's cache."""
LIVE_TOKENS_PER_S, LIVE_START_S = 50.0, 2.0
"""A live model's answer time, for the cache lifetime: start, then output tokens a second."""


def calls(run_dir: Path) -> list[tuple[dict, dict, float]]:
    """(request data, response data, when a live run would have sent it) for each answered call."""
    events = read(run_dir / "journal.jsonl").events
    out, pending, delay = [], None, 0.0
    for e in events:
        if e.kind == "llm.request":
            pending = e
        elif e.kind == "llm.response" and pending is not None:
            out.append((pending.data, e.data, float(pending.ts) + delay))
            delay += LIVE_START_S + int(e.data.get("output_tokens") or 0) / LIVE_TOKENS_PER_S
            pending = None
    return out


def price(use: CacheUse, output_tokens: int, read_factor: float, write_factor: float) -> float:
    return (INPUT * (use.uncached_tokens + read_factor * use.read_tokens + write_factor * use.write_tokens)
            + OUTPUT * output_tokens)


def breakpoints(request: dict) -> list[Breakpoint]:
    """The cache breakpoints a request carried (journaled since they are chosen per call; before
    that, every request marked its system message and its last message)."""
    marked = request.get("cache_breakpoints")
    if marked is None:
        return legacy_breakpoints(request["messages"])
    return [Breakpoint.from_json(bp) for bp in marked]


def report(run_dir: Path) -> dict[str, float]:
    answered = calls(run_dir)
    whole = [cost.cache_prompt(req["messages"], [], at) for req, _, at in answered]  # no blocks: as counted
    marked = [cost.cache_prompt(req["messages"], breakpoints(req), at) for req, _, at in answered]
    outputs = [int(resp.get("output_tokens") or 0) for _, resp, _ in answered]
    plain = [CacheUse(input_tokens(p), 0, 0) for p in whole]
    ways = {"no cache": (plain, 1.0, 1.0),
            "anthropic": (simulate(marked, ANTHROPIC), ANTHROPIC.read_factor, ANTHROPIC.write_factor),
            "openai": (simulate(whole, OPENAI), OPENAI.read_factor, OPENAI.write_factor)}
    print(f"\n{run_dir}: {len(answered)} calls")
    print(f"{'stage':12} {'calls':>5} {'input':>9} {'output':>7} {'anth. read':>10} {'anth. write':>11}"
          f" {'no cache $':>10} {'anthropic $':>11} {'openai $':>9}")
    stages: dict[str, list[int]] = defaultdict(list)
    for i, (req, _, _) in enumerate(answered):
        stages[req["stage"]].append(i)
    totals = dict.fromkeys(ways, 0.0)
    for stage, idx in stages.items():
        money = {name: sum(price(uses[i], outputs[i], r, w) for i in idx) for name, (uses, r, w) in ways.items()}
        anth = ways["anthropic"][0]
        print(f"{stage:12} {len(idx):5} {sum(plain[i].input_tokens for i in idx):9,} {sum(outputs[i] for i in idx):7,}"
              f" {sum(anth[i].read_tokens for i in idx):10,} {sum(anth[i].write_tokens for i in idx):11,}"
              f" {money['no cache']:10.3f} {money['anthropic']:11.3f} {money['openai']:9.3f}")
        for name in totals:
            totals[name] += money[name]
    print(f"{'all':12} {len(answered):5} {sum(u.input_tokens for u in plain):9,} {sum(outputs):7,}"
          f" {sum(u.read_tokens for u in ways['anthropic'][0]):10,} {sum(u.write_tokens for u in ways['anthropic'][0]):11,}"
          f" {totals['no cache']:10.3f} {totals['anthropic']:11.3f} {totals['openai']:9.3f}")
    return totals


def main() -> None:
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    for arg in sys.argv[1:]:
        totals = report(Path(arg))
        verdict = "meets" if totals["anthropic"] <= TARGET_USD else "MISSES"
        print(f"with Anthropic's cache: ${totals['anthropic']:.2f} a paper -> {verdict} the ${TARGET_USD} target "
              f"(without a cache ${totals['no cache']:.2f})")


if __name__ == "__main__":
    main()
