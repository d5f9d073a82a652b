"""The writeup's prompts share their long stable prefix, so providers' prompt caches serve it:
the drafts of consecutive parts (the paper drafted so far is marked and read), one toy launch
(replayed) with its journaled requests, and the cache rules of agent.llm.caching."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

import pytest

from agent.journal import read
from agent.llm import cost
from agent.llm.caching import ANTHROPIC, OPENAI, Breakpoint, simulate
from agent.paper.build import sections
from agent.stages import writeup_prompts
from tests.e2e_helpers import cli, only_run_dir
from tests.test_writeup_stage import ARGS, _session


@pytest.mark.slow
def test_consecutive_writeup_calls_share_the_paper_material_as_a_prefix(tmp_path):
    proc = cli(*ARGS, "--model", f"replay:{_session(tmp_path)}", "--runs-dir", str(tmp_path / "runs"))
    assert proc.returncode == 0, proc.stderr + proc.stdout
    requests = [e for e in read(only_run_dir(tmp_path / "runs") / "journal.jsonl").events
                if e.kind == "llm.request" and e.data["stage"] == "writeup"]
    assert len(requests) >= 16
    calls = [e.data["messages"] for e in requests]
    system = calls[0][0]
    assert system["role"] == "system" and "notes.txt:" in system["content"] and "Macros of results.tex" in system["content"]
    assert all(messages[0] == system for messages in calls)  # every writeup call starts the same
    for e, messages in zip(requests, calls, strict=True):
        user = messages[1]["content"]
        assert "notes.txt:" not in user and "Macros of results.tex" not in user  # the material is sent once
        if e.data["prompt_kind"] == "writeup.refine":  # a refine resends its draft's prompt: a prefix
            draft = calls[calls.index(messages) - 1]
            assert messages[: len(draft)] == draft
    marks = [[Breakpoint.from_json(bp) for bp in e.data["cache_breakpoints"]] for e in requests]
    drafts = [e.data for e in requests if e.data["prompt_kind"] == "writeup.draft"]
    for before, after in pairwise(drafts):  # each draft marks the paper where the draft before marked it
        wrote = {bp[1] for bp in before["cache_breakpoints"] if bp[0] == 1 and bp[1] is not None}
        assert any([1, at] in after["cache_breakpoints"]
                   and before["messages"][1]["content"][:at] == after["messages"][1]["content"][:at] for at in wrote)
    prompts = [cost.cache_prompt(m, bp, float(i)) for i, (m, bp) in enumerate(zip(calls, marks, strict=True))]
    whole = [cost.cache_prompt(m, [], float(i)) for i, m in enumerate(calls)]  # OpenAI: no blocks
    shared = sum(len(t) for t in prompts[0].messages[0][1])
    for rules, sent in ((ANTHROPIC, prompts), (OPENAI, whole)):
        uses = simulate(sent, rules)
        assert all(u.read_tokens >= shared - rules.step_tokens for u in uses[1:]), rules.provider  # OpenAI: by 128
        read_share = sum(u.read_tokens for u in uses) / sum(u.input_tokens for u in uses)
        assert read_share > 0.7, (rules.provider, read_share)


SKELETON = Path(__file__).parents[1] / "latex" / "skeleton.tex"


def test_consecutive_drafts_read_the_paper_drafted_so_far_from_the_cache() -> None:
    """Each draft marks the paper up to its part (the next draft starts with it) and where the
    draft before marked it (so the cache serves it): from the third draft on, the cache serves
    the system message and the paper up to the part drafted last; the request is marked at its
    end (the refine resends it); never more than the 4 breakpoints a provider accepts."""
    system = {"role": "system", "content": "The paper's material, the same for every call. " * 300}
    tex, shared, prompts, before, sent = SKELETON.read_text(encoding="utf-8"), "", [], [], []
    for i, part in enumerate(sections.DRAFT_ORDER):
        messages, marks, new = writeup_prompts.draft(system, part, sections.stubs(part), "ResultsTable", tex, shared)
        user = messages[1]["content"]
        assert len(marks) <= 4 and Breakpoint(0) in marks and Breakpoint(1) in marks
        assert user.startswith("Current latex/template.tex:") and sections.stubs(part)[0] in user[user.index(tex) + len(tex):]
        if shared:  # the prefix the draft before wrote, marked again to be read
            assert Breakpoint(1, user.index(tex) + len(shared)) in marks
        prompts.append(cost.cache_prompt(messages, marks, 10.0 * i))
        sent.append(messages)
        before.append(len(cost._cl100k().encode(shared)))
        for stub in sections.stubs(part):  # the part is drafted: its stubs become a section
            tex = tex.replace(stub, f"What the {part} says, at length. " * 60)
        shared = new
    uses = simulate(prompts, ANTHROPIC)
    system_tokens = sum(len(t) for t in prompts[0].messages[0][1]) + 3
    assert uses[0].read_tokens == 0 and uses[1].read_tokens >= system_tokens
    for use, paper in zip(uses[2:-1], before[2:-1], strict=True):  # Related Work is drafted last, out of order
        assert use.read_tokens >= system_tokens + paper > system_tokens + 500
        assert use.write_tokens < use.input_tokens - use.read_tokens + 10
    # marked only at the system message and the end, a draft reads the system message only
    plain = simulate([cost.cache_prompt(m, [Breakpoint(0), Breakpoint(1)], 10.0 * i) for i, m in enumerate(sent)],
                     ANTHROPIC)
    assert all(u.read_tokens == system_tokens for u in plain[1:])
