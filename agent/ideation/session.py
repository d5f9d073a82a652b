"""The ideation loop over N ideas: draft (with reflections), check novelty, write the file.
An idea that never validates is reported failed and the others go on; a cost stop ends the
session cleanly with what was written so far."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from agent.ideas import Novelty
from agent.ideation import output
from agent.ideation.generate import NotDrafted, draft
from agent.ideation.novelty import Checked, check, ref_of, seen
from agent.ideation.replies import Model, Usage
from agent.journal import Journal
from agent.llm.records import Completion, ContextOverflow, Message
from agent.template import Template

LiteratureMode = Literal["live", "replay", "offline"]


@dataclass(frozen=True)
class Settings:
    """One ideation session's choices."""

    template: Template
    n: int
    """Ideas to generate."""
    out_dir: Path
    templates_dir: Path
    model: str
    """The model string (or `replay:PATH`), for the provenance."""
    literature_mode: LiteratureMode
    literature_cache: Path
    reflections: int = 3
    """Reflection rounds per idea, at most."""
    novelty_rounds: int = 5
    """Novelty rounds per idea, at most (the last one decides)."""
    retries: int = 2
    """Times an invalid reply is sent back with its errors, per question."""


@dataclass(frozen=True)
class Written:
    """An idea written to its file."""

    index: int
    name: str
    path: Path
    novelty: Novelty
    reason: str
    usage: Usage


@dataclass(frozen=True)
class Failed:
    """An idea that could not be made: reported, never dropped silently."""

    index: int
    errors: tuple[str, ...]
    usage: Usage


@dataclass
class Outcome:
    """The session's result, for the CLI."""

    journal: Path
    usage: Usage
    """Every call of the session, an idea cut short by the budget included."""
    ideas: list[Written | Failed] = field(default_factory=list)
    stopped: str | None = None
    """Why the session stopped early (the cost budget), None if it ran to the end."""
    findable: bool = True
    """Whether `--idea NAME` finds the ideas where they were written."""


class Recorder:
    """The model, with the sha256 of every request's messages noted per call id."""

    def __init__(self, model: Model) -> None:
        self.model = model
        self.requests: list[tuple[str, str]] = []
        self.usage = Usage()

    def complete(self, messages: list[Message], *, stage: str, prompt_kind: str,
                 call_id: str | None = None) -> Completion | ContextOverflow:
        digest = hashlib.sha256(json.dumps(messages, sort_keys=True).encode("utf-8")).hexdigest()
        self.requests.append((call_id or "", digest))
        answer = self.model.complete(messages, stage=stage, prompt_kind=prompt_kind, call_id=call_id)
        if isinstance(answer, Completion):
            self.usage.add(answer)
        return answer


def _novelty_provenance(checked: Checked, settings: Settings) -> dict[str, Any]:
    return {
        "outcome": checked.novelty, "reason": checked.reason,
        "decision": checked.decision, "model_reason": checked.model_reason,
        "papers_relied_on": [p for p in checked.papers if p in seen(checked.searches)],
        "papers_named_unseen": [p for p in checked.papers if p not in seen(checked.searches)],
        "rounds": checked.rounds,
        "literature_mode": settings.literature_mode,
        "queries": [{"query": a.query, "status": a.search.status, "reason": a.search.reason,
                     "cache_key": a.search.cache_key, "from_cache": a.search.from_cache,
                     "papers": [ref_of(r) for r in a.search.records]} for a in checked.searches],
        "papers_seen": [{"ref": ref, "source": r.source, "id": r.id, "title": r.title, "year": r.year}
                        for ref, r in seen(checked.searches).items()],
    }


def one(settings: Settings, model: Recorder, literature: Any, journal: Journal, index: int,
        existing: list[str], taken: set[str]) -> Written | Failed:
    """Draft, check and write idea `index`."""
    usage = Usage()
    first_call = len(model.requests)
    code = (settings.template.root / "experiment.py").read_text(encoding="utf-8")
    drafted = draft(model, settings.template, code, existing, index=index, total=settings.n,
                    reflections=settings.reflections, retries=settings.retries, usage=usage)
    if isinstance(drafted, NotDrafted):
        journal.append("ideation.idea_failed", index=index, errors=list(drafted.errors),
                       attempts=drafted.attempts, last_reply=drafted.last_reply)
        return Failed(index, drafted.errors, usage)
    fields = drafted.fields
    checked = check(model, literature, fields, index=index, rounds=settings.novelty_rounds,
                    retries=settings.retries, usage=usage)
    for asked in checked.searches:
        journal.append("literature.searched", index=index, query=asked.query, status=asked.search.status,
                       reason=asked.search.reason, cache_key=asked.search.cache_key,
                       from_cache=asked.search.from_cache, papers=[ref_of(r) for r in asked.search.records])
    name = output.unique_name(str(fields["Name"]), taken)
    taken.add(name)
    lit_dir = settings.out_dir / f"{name}{output.LITERATURE_SUFFIX}"
    used = list(literature.used_files()) if hasattr(literature, "used_files") else []
    copied = output.copy_literature(used, settings.literature_cache, lit_dir)
    record = {
        **fields, "Name": name, "novel": checked.novelty == "novel", "novelty": checked.novelty,
        "template": settings.template.name,
        "provenance": {
            "generated_by": "python -m agent.ideas", "model": output.shown(settings.model),
            "replay": settings.model.startswith("replay:"),
            "proposed_name": fields["Name"], "generated_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "prompts_sha256": output.prompt_hashes(),
            "requests_sha256": [{"call_id": c, "sha256": d} for c, d in model.requests[first_call:]],
            "reflections": drafted.reflections, "notes": list(drafted.notes),
            "novelty": _novelty_provenance(checked, settings),
            "literature_files": copied, "usage": usage.to_json(),
            "journal": output.shown(str(journal.path)),
        },
    }
    path = output.write_idea(settings.out_dir, name, record)
    journal.append("ideation.idea_written", index=index, name=name, path=str(path),
                   novelty=checked.novelty, reason=checked.reason, usage=usage.to_json())
    return Written(index, name, path, checked.novelty, checked.reason, usage)


def run(settings: Settings, model: Model, literature_for: Callable[[], Any], journal: Journal,
        progress: Callable[[str], None] = lambda _: None) -> Outcome:
    """Generate `settings.n` ideas; each gets a literature object of its own (so the cache
    entries it used are its own)."""
    from agent.errors import StoppedResumable

    recorder = Recorder(model)
    existing = output.existing_ideas(settings.templates_dir, settings.template.name)
    taken = output.taken_names(settings.templates_dir, settings.out_dir)
    result = Outcome(journal.path, recorder.usage, findable=settings.out_dir.resolve() == output.default_out(
        settings.templates_dir, settings.template.name).resolve())
    journal.append("ideation.started", template=settings.template.name, n=settings.n,
                   model=settings.model, literature=settings.literature_mode,
                   out_dir=str(settings.out_dir), prompts_sha256=output.prompt_hashes())
    for index in range(1, settings.n + 1):
        progress(f"idea {index}/{settings.n}: drafting")
        try:
            item = one(settings, recorder, literature_for(), journal, index, existing, taken)
        except StoppedResumable as exc:
            last = journal.last("llm.budget_stopped")
            why = (f"${last.data['spent_usd']:.4f} spent and the next call is estimated at "
                   f"${last.data['estimate_usd']:.4f}, past --max-cost {last.data['max_cost_usd']:g}"
                   if last is not None else str(exc))
            result.stopped = f"idea {index} was not finished ({why}); no file was written for it"
            journal.append("ideation.stopped", index=index, reason=result.stopped)
            break
        result.ideas.append(item)
        if isinstance(item, Written):
            existing.append(f"{item.name}: {json.loads(item.path.read_text(encoding='utf-8'))['Title']}")
    journal.append("ideation.finished", written=sum(isinstance(i, Written) for i in result.ideas),
                   failed=sum(isinstance(i, Failed) for i in result.ideas), stopped=result.stopped)
    return result
