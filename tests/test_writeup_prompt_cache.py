"""The writeup's prompts share their long stable prefix, so providers' prompt caches serve it:
one toy launch (replayed), its journaled requests, and the cache rules of agent.llm.caching."""

from __future__ import annotations

import pytest

from agent.journal import read
from agent.llm import cost
from agent.llm.caching import ANTHROPIC, OPENAI, simulate
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
    prompts = [cost.cache_prompt(m, float(i)) for i, m in enumerate(calls)]
    shared = len(prompts[0].messages[0][1])
    for rules in (ANTHROPIC, OPENAI):
        uses = simulate(prompts, rules)
        assert all(u.read_tokens >= shared - rules.step_tokens for u in uses[1:]), rules.provider  # OpenAI: by 128
        read_share = sum(u.read_tokens for u in uses) / sum(u.input_tokens for u in uses)
        assert read_share > 0.7, (rules.provider, read_share)
