"""The novelty check: bounded rounds in which the model queries the literature and sees what
came back, then a decision in a schema-checked field. The outcome is three-valued and rests on
what the searches returned, not on the model's words:

- `unknown`   the model never gave a valid decision, or no search returned a paper, or it says
              "novel" while a search it asked for failed, was rate-limited or was unavailable
              (the papers that search would have shown were never seen);
- `not novel` the model decided so, naming papers it was shown;
- `novel`     the model decided so after searches that all completed, some with papers.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Protocol

from agent.errors import ReplayDiverged
from agent.ideas import Novelty
from agent.ideation.replies import Invalid, Model, Schema, Usage, ask_valid
from agent.llm.records import Message
from agent.prompting import render

COMPLETED = ("ok", "empty")
"""Search statuses of a search that finished (`empty`: it found nothing)."""
ABSTRACT_CHARS = 600
"""Of each abstract, what the model is shown."""


class Literature(Protocol):
    """What the check needs of `agent.literature.Literature`."""

    def search(self, query: str, *, limit: int = 10, source: str | None = None) -> Any: ...


@dataclass(frozen=True)
class Asked:
    """One query the model issued and what the literature layer answered."""

    query: str
    search: Any
    """`agent.literature.Search`: status, records, reason, cache_key, from_cache."""


def ref_of(record: Any) -> str:
    """How the model names a paper it was shown: `<source>:<id>`."""
    return f"{record.source}:{record.id}"


def novelty_schema(final: bool) -> Schema:
    """A round's reply: a query, or the decision (the last round: only the decision)."""
    query = {"required": ["query"], "not": {"required": ["decision"]}}
    decision = {"required": ["decision", "reason", "papers"], "not": {"required": ["query"]}}
    return {
        "type": "object",
        "properties": {
            "thought": {"type": "string"},
            "query": {"type": "string", "minLength": 3, "maxLength": 300},
            "decision": {"enum": ["novel", "not_novel"]},
            "reason": {"type": "string", "minLength": 1},
            "papers": {"type": "array", "items": {"type": "string"}, "uniqueItems": True},
        },
        "additionalProperties": False,
        "required": ["thought"],
        **({"allOf": [decision]} if final else {"oneOf": [query, decision]}),
    }


@dataclass
class Checked:
    """What the check did and concluded."""

    novelty: Novelty
    """The three-valued outcome."""
    reason: str
    """Why: the model's reason, or why the outcome is unknown."""
    decision: str | None = None
    """The model's schema-checked decision (`novel`, `not_novel`), None if it gave none."""
    model_reason: str | None = None
    """The model's own reason for its decision."""
    papers: list[str] = field(default_factory=list)
    """The papers (refs) the decision relies on."""
    searches: list[Asked] = field(default_factory=list)
    """Every query made and its answer, in order."""
    rounds: int = 0
    """Rounds used."""


def seen(searches: list[Asked]) -> dict[str, Any]:
    """Every paper shown to the model, by ref."""
    return {ref_of(r): r for a in searches for r in a.search.records}


def _results(asked: Asked) -> str:
    search = asked.search
    if search.status != "ok" or not search.records:
        why = f" ({search.reason})" if search.reason else ""
        return f"The search for {json.dumps(asked.query)} returned no papers: {search.status}{why}."
    lines = [f"Results for {json.dumps(asked.query)}:"]
    for r in search.records:
        authors = ", ".join(r.authors[:4]) + (" et al." if len(r.authors) > 4 else "")
        abstract = (r.abstract or "(no abstract)")[:ABSTRACT_CHARS]
        lines.append(f"- [{ref_of(r)}] {r.title} ({r.year or 'n.d.'}); {authors}; {r.venue or ''}\n  {abstract}")
    return "\n".join(lines)


def outcome(decision: str | None, model_reason: str | None, searches: list[Asked]) -> tuple[Novelty, str]:
    """The three-valued outcome from the decision field and the searches' statuses."""
    if decision is None:
        return "unknown", "the model gave no valid decision within the rounds allowed"
    found = [a for a in searches if a.search.status == "ok" and a.search.records]
    broken = [a for a in searches if a.search.status not in COMPLETED]
    statuses = ", ".join(a.search.status for a in searches) or "no search was made"
    if not found:
        return "unknown", f"no search returned a paper ({statuses}): nothing was compared"
    if decision == "not_novel":
        return "not novel", str(model_reason)
    if broken:
        what = "; ".join(f"{json.dumps(a.query)}: {a.search.status}"
                         + (f" ({a.search.reason})" if a.search.reason else "") for a in broken)
        return "unknown", (f"the model judged it novel, but {len(broken)} of {len(searches)} searches "
                           f"did not complete ({what}): what they would have found was never seen")
    return "novel", str(model_reason)


def check(model: Model, literature: Literature, idea: dict[str, Any], *, index: int, rounds: int,
          retries: int, usage: Usage, limit: int = 10) -> Checked:
    """Run at most `rounds` rounds for one idea (the last one must decide)."""
    from agent.ideation.output import replay_miss_type

    miss = replay_miss_type()
    searches: list[Asked] = []
    messages: list[Message] = [
        {"role": "system", "content": render("ideation_novelty_system", rounds=rounds)},
        {"role": "user", "content": render("ideation_novelty", idea=json.dumps(idea, indent=2),
                                           round=1, rounds=rounds, results=None)},
    ]

    def cites_seen(obj: dict[str, Any]) -> list[str]:
        # With nothing shown, the outcome is `unknown` whatever the reply names (recorded as
        # unseen); with papers shown, a decision may rest only on them.
        shown = seen(searches)
        if "decision" not in obj or not shown:
            return []
        problems = [f"papers: {p} was not among the results you were shown" for p in obj["papers"]
                    if p not in shown]
        if obj["decision"] == "not_novel" and not obj["papers"]:
            problems.append("papers: name the paper(s) shown to you that already do this idea")
        return problems

    for round_ in range(1, rounds + 1):
        final = round_ == rounds
        reply = ask_valid(model, messages, novelty_schema(final), usage=usage, prompt_kind="idea.novelty",
                          call_id=f"idea{index}/novelty{round_}", retries=retries, check=cites_seen,
                          fix=lambda errors: render("ideation_fix", errors=errors))
        if isinstance(reply, Invalid):
            return Checked("unknown", "the model's novelty replies did not validate: " + "; ".join(reply.errors),
                           searches=searches, rounds=round_)
        obj = reply.obj
        if "decision" in obj:
            novelty, reason = outcome(obj["decision"], obj["reason"], searches)
            return Checked(novelty, reason, obj["decision"], obj["reason"], list(obj["papers"]),
                           searches, round_)
        try:
            found = literature.search(obj["query"], limit=limit)
        except miss as exc:
            raise ReplayDiverged(f"idea {index}: the literature replay has no answer for the query "
                                 f"{json.dumps(obj['query'])} ({exc}): the recorded session no longer "
                                 f"matches; record it again with --literature live") from exc
        searches.append(Asked(obj["query"], found))
        messages.append({"role": "user", "content": render(
            "ideation_novelty", idea=None, round=round_ + 1, rounds=rounds, results=_results(searches[-1]))})
    return Checked("unknown", "no decision within the rounds allowed", searches=searches, rounds=rounds)
