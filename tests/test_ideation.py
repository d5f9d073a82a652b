"""Generating ideas (`python -m agent.ideas`): every reply schema-checked and sent back when it
breaks the schema (bounded), failed ideas reported, reflections bounded, novelty three-valued
from the searches' statuses and a schema field, files written beside (never over) hand-written
ideas with their provenance; the launch refuses "not novel"; the reference session offline."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from agent import ideas
from agent import template as template_mod
from agent.errors import StoppedResumable, UsageError
from agent.ideation import session
from agent.ideation.generate import idea_schema
from agent.ideation.novelty import outcome
from agent.ideation.replies import problems
from agent.journal import Journal
from agent.llm.records import Completion, Message
from tests.test_template import copy_toy

# --- fakes -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rec:
    """A literature record (the fields of agent.literature.Record)."""

    source: str
    id: str
    title: str
    year: int | None = 2024
    authors: tuple[str, ...] = ("A. Author",)
    venue: str = "arXiv"
    abstract: str = "An abstract."
    url: str = ""
    doi: str = ""
    bibtex: str = ""
    key: str = ""


@dataclass(frozen=True)
class Found:
    """A literature search (the fields of agent.literature.Search)."""

    status: str
    records: tuple[Rec, ...] = ()
    reason: str | None = None
    cache_key: str = "k"
    from_cache: bool = False


PAPER = Rec("arxiv", "2401.00001", "Momentum SAEs")
OK = Found("ok", (PAPER,))


class FakeLiterature:
    """Answers every query with `answer`; says it read one cache file."""

    def __init__(self, answer: Found, cache_file: Path | None = None) -> None:
        self.answer, self.cache_file = answer, cache_file
        self.log: list[str] = []

    def search(self, query: str, *, limit: int = 10, source: str | None = None) -> Found:
        self.log.append(query)
        return self.answer

    def used_files(self) -> list[Path]:
        return [self.cache_file] if self.cache_file else []


class Scripted:
    """A model that answers from a list of replies, recording what it was asked."""

    def __init__(self, replies: list[str], cost: float | None = 0.001) -> None:
        self.replies, self.cost = list(replies), cost
        self.asked: list[tuple[str, list[Message]]] = []

    def complete(self, messages: list[Message], *, stage: str, prompt_kind: str,
                 call_id: str | None = None) -> Completion:
        self.asked.append((prompt_kind, [dict(m) for m in messages]))
        if not self.replies:
            raise AssertionError(f"unexpected call {call_id} ({prompt_kind})")
        return Completion(self.replies.pop(0), 100, 20, self.cost, 0.0, 0, "fake", False)


def idea_reply(name: str = "heavy_ball", done: bool = False, **change: Any) -> str:
    obj: dict[str, Any] = {
        "thought": "momentum is cheap", "Name": name, "Title": "Heavy-ball momentum on a bowl",
        "Experiment": "Sweep the momentum coefficient.", "Technical_Details": "v = beta v + g.",
        "Research_Impact": "Faster convergence.", "Implementation_Plan": "1. Add momentum.",
        "Interestingness_Evaluation": "Some.", "Interestingness": 5,
        "Feasibility_Evaluation": "Easy.", "Feasibility": 9, "Novelty_Evaluation": "Little.",
        "Novelty": 3, "Overall_Score": 5.5, "requires": {"models": ["quadratic"]},
    }
    if done:
        obj["done"] = True
    obj.update(change)
    return "THOUGHT: fine.\n```json\n" + json.dumps(obj) + "\n```"


def query(q: str = "momentum sparse autoencoder") -> str:
    return "```json\n" + json.dumps({"thought": "search", "query": q}) + "\n```"


def decide(decision: str, papers: list[str] | None = None, reason: str = "closest work differs") -> str:
    return "```json\n" + json.dumps({"thought": "t", "decision": decision, "reason": reason,
                                     "papers": papers or []}) + "\n```"


def settings(tmp_path: Path, n: int = 1, **kw: Any) -> session.Settings:
    templates = tmp_path / "templates"
    if not templates.exists():
        copy_toy(tmp_path)
    template = template_mod.load(templates / "toy_template")
    out = kw.pop("out_dir", tmp_path / "ideas" / "generated" / "toy_template")
    base = dict(reflections=1, novelty_rounds=3, retries=1)
    base.update(kw)
    return session.Settings(template, n, out, templates, "fake", "offline", tmp_path / "cache", **base)


def run(tmp_path: Path, replies: list[str], lit: Any = None, n: int = 1, **kw: Any) -> tuple[session.Outcome, Scripted]:
    cfg = settings(tmp_path, n, **kw)
    model = Scripted(replies)
    journal = Journal(tmp_path / f"j{len(list(tmp_path.glob('j*')))}.jsonl")
    result = session.run(cfg, model, lambda: lit or FakeLiterature(OK), journal)
    return result, model


def written(result: session.Outcome) -> list[session.Written]:
    return [i for i in result.ideas if isinstance(i, session.Written)]


# --- schema and retries ----------------------------------------------------------------------

def test_reply_breaking_the_schema_is_sent_back_with_its_errors(tmp_path: Path) -> None:
    bad = idea_reply(Interestingness=11, requires={"models": ["gpt-5"]})
    result, model = run(tmp_path, [bad, idea_reply(done=True), query(), decide("novel", [])])
    assert [k for k, _ in model.asked][:2] == ["idea.generate", "idea.fix"]
    fix = model.asked[1][1][-1]["content"]
    assert "Interestingness: 11 is greater than the maximum of 10" in fix
    assert "requires.models.0: 'gpt-5' is not one of ['quadratic']" in fix
    assert written(result)[0].novelty == "novel"


def test_idea_that_never_validates_is_reported_failed_and_the_others_are_kept(tmp_path: Path) -> None:
    never = "no JSON at all"
    replies = [never, never, idea_reply("second", done=True), query(), decide("novel")]
    result, model = run(tmp_path, replies, n=2)
    failed = [i for i in result.ideas if isinstance(i, session.Failed)]
    assert len(failed) == 1 and failed[0].index == 1 and "no JSON object" in failed[0].errors[0]
    assert [w.name for w in written(result)] == ["second"]
    assert len([k for k, _ in model.asked if k in ("idea.generate", "idea.fix")]) == 3  # 1 + 1 retry, then 1
    events = [json.loads(line)["kind"] for line in result.journal.read_text().splitlines()]
    assert "ideation.idea_failed" in events


def test_reflections_are_bounded_and_stop_when_the_model_is_done(tmp_path: Path) -> None:
    replies = [idea_reply(), idea_reply(Title="better"), idea_reply(Title="best"), query(), decide("novel")]
    result, model = run(tmp_path, replies, reflections=2)
    kinds = [k for k, _ in model.asked]
    assert kinds.count("idea.reflect") == 2
    record = json.loads(written(result)[0].path.read_text())
    assert record["Title"] == "best" and record["provenance"]["reflections"] == 2
    result, model = run(tmp_path, [idea_reply("early", done=True), query(), decide("novel")], reflections=3)
    assert [k for k, _ in model.asked].count("idea.reflect") == 0


def test_refused_change_is_outside_the_schema(tmp_path: Path) -> None:
    copy_toy(tmp_path)
    template = replace(template_mod.load(tmp_path / "templates" / "toy_template"),
                       refused_changes={"evaluation_procedure": "the evaluator runs it"})
    reply = idea_reply(requires={"models": ["quadratic"], "changes": ["evaluation_procedure"]})
    _, errors = problems(reply, idea_schema(template))
    assert errors and "requires.changes.0" in errors[0]


# --- novelty: three-valued -------------------------------------------------------------------

@pytest.mark.parametrize("status", ["failed", "rate_limited", "unavailable", "empty"])
def test_novelty_is_unknown_when_every_search_fails_or_is_empty_even_if_the_model_says_novel(
        tmp_path: Path, status: str) -> None:
    lit = FakeLiterature(Found(status, reason="HTTP 429" if status == "rate_limited" else None))
    result, _ = run(tmp_path, [idea_reply(done=True), query(), query("another"), decide("novel")], lit)
    idea = written(result)[0]
    assert idea.novelty == "unknown" and "no search returned a paper" in idea.reason
    record = json.loads(idea.path.read_text())
    assert record["novel"] is False and record["novelty"] == "unknown"
    assert ideas.load(idea.path).novelty == "unknown"


def test_novel_claim_with_one_failed_search_is_unknown() -> None:
    from agent.ideation.novelty import Asked

    searches = [Asked("a", OK), Asked("b", Found("rate_limited", reason="circuit open"))]
    novelty, reason = outcome("novel", "nothing close", searches)
    assert novelty == "unknown" and "rate_limited" in reason
    assert outcome("not_novel", "paper X does it", searches)[0] == "not novel"
    assert outcome("novel", "nothing close", [Asked("a", OK), Asked("b", Found("empty"))])[0] == "novel"


def test_not_novel_needs_a_paper_that_was_shown(tmp_path: Path) -> None:
    replies = [idea_reply(done=True), query(), decide("not_novel", ["arxiv:9999.99999"]),
               decide("not_novel", ["arxiv:2401.00001"], "Momentum SAEs already do it")]
    result, model = run(tmp_path, replies)
    assert "was not among the results you were shown" in model.asked[-1][1][-1]["content"]
    idea = written(result)[0]
    assert idea.novelty == "not novel"
    prov = json.loads(idea.path.read_text())["provenance"]["novelty"]
    assert prov["papers_relied_on"] == ["arxiv:2401.00001"]
    assert prov["papers_seen"][0] == {"ref": "arxiv:2401.00001", "source": "arxiv", "id": "2401.00001",
                                      "title": "Momentum SAEs", "year": 2024}


def test_decision_is_read_from_the_field_not_the_words(tmp_path: Path) -> None:
    words = decide("novel", [], reason="This is not novel in wording only; Decision made: not novel.")
    result, _ = run(tmp_path, [idea_reply(done=True), query(), words])
    assert written(result)[0].novelty == "novel"


def test_last_novelty_round_must_decide(tmp_path: Path) -> None:
    replies = [idea_reply(done=True), query(), query("again"), decide("novel")]
    result, model = run(tmp_path, replies, novelty_rounds=2)
    assert "decision" in model.asked[-1][1][-1]["content"]  # the fix names the missing field
    assert written(result)[0].novelty == "novel"


# --- files -----------------------------------------------------------------------------------

def test_output_has_provenance_and_the_literature_entries_it_used(tmp_path: Path) -> None:
    cache = tmp_path / "cache" / "ab" / "abcdef.json"
    cache.parent.mkdir(parents=True)
    cache.write_text('{"response": 1}')
    result, _ = run(tmp_path, [idea_reply(done=True), query("momentum"), decide("novel")],
                    FakeLiterature(OK, cache))
    idea = written(result)[0]
    prov = json.loads(idea.path.read_text())["provenance"]
    assert prov["model"] == "fake" and len(prov["prompts_sha256"]) == 6
    assert [q["query"] for q in prov["novelty"]["queries"]] == ["momentum"]
    assert prov["usage"] == {"calls": 3, "input_tokens": 300, "output_tokens": 60, "cost_usd": pytest.approx(0.003)}
    assert prov["literature_files"] == ["heavy_ball.literature/ab/abcdef.json"]
    assert (idea.path.parent / "heavy_ball.literature" / "ab" / "abcdef.json").read_text() == '{"response": 1}'
    assert [r["call_id"] for r in prov["requests_sha256"]] == ["idea1/generate", "idea1/novelty1", "idea1/novelty2"]


def test_hand_written_idea_is_never_overwritten_and_generated_ideas_are_found(tmp_path: Path) -> None:
    hand = tmp_path / "templates" / "toy_template" / "ideas" / "toy_idea.json"
    result, _ = run(tmp_path, [idea_reply("toy_idea", done=True), query(), decide("novel")])
    copy = written(result)[0]
    assert copy.name == "toy_idea_2" and hand.read_text() == (copy_toy.__globals__["TOY"] / "ideas" / "toy_idea.json").read_text()
    assert ideas.find("toy_idea_2", tmp_path / "templates") == copy.path
    assert ideas.find("toy_idea_2", tmp_path / "templates", template="toy_template") == copy.path
    assert json.loads(copy.path.read_text())["Name"] == "toy_idea_2"
    again, _ = run(tmp_path, [idea_reply("toy_idea", done=True), query(), decide("novel")])
    assert written(again)[0].name == "toy_idea_3"


def test_cost_stop_ends_cleanly_with_the_ideas_finished_before(tmp_path: Path) -> None:
    class Budget(Scripted):
        def complete(self, messages: list[Message], **kw: Any) -> Completion:
            if len(self.asked) == 3:
                raise StoppedResumable("budget")
            return super().complete(messages, **kw)

    cfg = settings(tmp_path, 2)
    model = Budget([idea_reply("first", done=True), query(), decide("novel")])
    result = session.run(cfg, model, lambda: FakeLiterature(OK), Journal(tmp_path / "j.jsonl"))
    assert [w.name for w in written(result)] == ["first"] and "idea 2 was not finished" in (result.stopped or "")
    assert result.usage.calls == 3


# --- the launch ------------------------------------------------------------------------------

def _generated(tmp_path: Path, novelty: str) -> ideas.Idea:
    replies = {"novel": [query(), decide("novel")],
               "not novel": [query(), decide("not_novel", ["arxiv:2401.00001"])],
               "unknown": [decide("novel")]}[novelty]
    result, _ = run(tmp_path, [idea_reply(novelty.replace(" ", "_") + "_idea", done=True), *replies])
    idea = ideas.load(written(result)[0].path)
    assert idea.novelty == novelty
    return idea


def test_launch_refuses_not_novel_unless_allowed(tmp_path: Path) -> None:
    idea = _generated(tmp_path, "not novel")
    with pytest.raises(UsageError, match="NOT NOVEL.*--allow-not-novel") as info:
        ideas.check_novelty(idea, allow_not_novel=False)
    assert info.value.exit_code == 2
    assert "not novel" in str(ideas.check_novelty(idea, allow_not_novel=True))
    assert "novelty unknown" in str(ideas.check_novelty(_generated(tmp_path, "unknown"), False))
    assert ideas.check_novelty(_generated(tmp_path, "novel"), False) is None
    hand = ideas.load(tmp_path / "templates" / "toy_template" / "ideas" / "toy_idea.json")
    assert hand.novelty is None and ideas.check_novelty(hand, False) is None


def test_launch_cli_refuses_a_not_novel_idea_before_anything_is_created(tmp_path: Path,
                                                                         capsys: pytest.CaptureFixture[str]) -> None:
    from agent.launch import main

    idea = _generated(tmp_path, "not novel")
    argv = ["--idea", idea.name, "--templates-dir", str(tmp_path / "templates"),
            "--runs-dir", str(tmp_path / "runs"), "--model", "replay:/nonexistent"]
    assert main(argv) == 2
    assert "--allow-not-novel" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()
    # with the flag it gets past the novelty check (and stops at the missing recording)
    assert main([*argv, "--allow-not-novel"]) == 2
    assert "replay file /nonexistent does not exist" in capsys.readouterr().err


# --- the reference session, offline end to end -------------------------------------------------

REPO = Path(__file__).resolve().parents[1]


def _repo_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A templates dir holding sae_variants (its reference ideation session included), with no
    credentials in the environment."""
    import shutil

    for var in ("AGENT_MODEL", "ANTHROPIC_API_KEY", "OPENAI_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    templates = tmp_path / "templates"
    shutil.copytree(REPO / "templates" / "sae_variants", templates / "sae_variants",
                    ignore=shutil.ignore_patterns("__pycache__"))
    return templates


def test_reference_session_replays_offline_into_launchable_ideas(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("agent.literature")
    from agent.config import LaunchConfig
    from agent.ideation.cli import main
    from agent.orchestrator import check_idea

    templates = _repo_copy(tmp_path, monkeypatch)
    assert main(["--template", "sae_variants", "-n", "2", "--templates-dir", str(templates)]) == 0
    out = capsys.readouterr().out
    assert "REPLAY" in out and "2 written, 0 failed" in out
    generated = tmp_path / "ideas" / "generated" / "sae_variants"
    novel = ideas.load(generated / "frequency_weighted_l1.json")
    taken = ideas.load(generated / "batch_topk_sae.json")
    assert (novel.novelty, taken.novelty) == ("novel", "not novel")
    prov = novel.fields["provenance"]
    assert prov["replay"] and prov["novelty"]["literature_mode"] == "replay"
    assert all(q["status"] == "ok" and q["from_cache"] for q in prov["novelty"]["queries"])
    assert len(prov["literature_files"]) == 2
    assert all((generated / f).is_file() for f in prov["literature_files"])
    # the launch's checks, which come before any LLM call, pass for the novel one ...
    idea, template, warning = check_idea(LaunchConfig(idea="frequency_weighted_l1"), templates)
    assert idea.path == generated / "frequency_weighted_l1.json" and template.name == "sae_variants"
    assert warning is None
    # ... and refuse the one that is not novel, unless the user insists
    with pytest.raises(UsageError, match="NOT NOVEL.*2412.06410"):
        check_idea(LaunchConfig(idea="batch_topk_sae"), templates)
    assert "not novel" in str(check_idea(LaunchConfig(idea="batch_topk_sae", allow_not_novel=True), templates)[2])


def test_reference_session_with_an_empty_offline_literature_gives_unknown(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch,
                                                                         capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("agent.literature")
    from agent.ideation.cli import main

    templates = _repo_copy(tmp_path, monkeypatch)
    out = tmp_path / "out"
    assert main(["--template", "sae_variants", "-n", "1", "--templates-dir", str(templates), "--out", str(out),
                 "--literature", "offline", "--literature-cache", str(tmp_path / "empty")]) == 0
    assert "novelty: unknown" in capsys.readouterr().out
    idea = ideas.load(out / "frequency_weighted_l1.json")  # the model said "novel"; nothing was searched
    assert idea.novelty == "unknown" and idea.fields["novel"] is False
    queries = idea.fields["provenance"]["novelty"]["queries"]
    assert [q["status"] for q in queries] == ["unavailable", "unavailable"]
    assert "novelty unknown" in str(ideas.check_novelty(idea, allow_not_novel=False))


@pytest.mark.parametrize("name", ["../../templates/toy_template/ideas/toy_idea", "/tmp/evil", "Toy Idea",
                                  "a", "x" * 80, "idea.json"])
def test_a_name_that_is_no_plain_file_stem_is_sent_back_and_nothing_is_written_outside(tmp_path: Path,
                                                                                      name: str) -> None:
    """The model names the idea, and the name becomes a file name: a path, an absolute path,
    spaces, a dot or a length out of bounds are schema errors sent back; the fixed reply is
    written under the output folder only."""
    result, model = run(tmp_path, [idea_reply(name), idea_reply("plain_name", done=True), query(),
                                   decide("novel", [])])
    assert [k for k, _ in model.asked][:2] == ["idea.generate", "idea.fix"]
    assert "Name" in model.asked[1][1][-1]["content"]
    (only,) = written(result)
    assert only.name == "plain_name" and only.path.parent.name != "ideas"
    assert not (tmp_path / "evil.json").exists() and not Path("/tmp/evil.json").exists()
