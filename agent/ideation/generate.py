"""One idea: proposed from the template, then refined over bounded reflection rounds. Every
reply is checked against the idea schema (fields of the reference system, plus a `requires`
that only names what the template provides and no change it refuses)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from agent.ideas import SCORE_FIELDS, TEXT_FIELDS
from agent.ideation.replies import Invalid, Model, Schema, Usage, ask_valid
from agent.llm.records import Message
from agent.prompting import render
from agent.template import Template

NAME_PATTERN = "^[a-z][a-z0-9_]{2,59}$"


def idea_schema(template: Template) -> Schema:
    """The JSON schema an idea reply must meet for `template`."""
    requires: dict[str, Any] = {
        key: {"type": "array", "items": {"enum": list(values)}, "uniqueItems": True}
        for key, values in template.provides.items()}
    changes: dict[str, Any] = {"type": "array", "items": {"type": "string"}, "uniqueItems": True}
    if template.refused_changes:
        changes["items"] = {"type": "string", "not": {"enum": list(template.refused_changes)}}
    requires["changes"] = changes
    text = {"type": "string", "minLength": 1}
    props: dict[str, Any] = {key: text for key in TEXT_FIELDS}
    props["Name"] = {"type": "string", "pattern": NAME_PATTERN}
    props.update({key: {"type": "integer", "minimum": 1, "maximum": 10} for key in SCORE_FIELDS})
    props["Overall_Score"] = {"type": "number", "minimum": 1, "maximum": 10}
    props["requires"] = {"type": "object", "properties": requires, "additionalProperties": False}
    props["thought"] = {"type": "string"}
    props["done"] = {"type": "boolean"}
    return {"type": "object", "properties": props, "additionalProperties": False,
            "required": [*TEXT_FIELDS, *SCORE_FIELDS, "requires"]}


@dataclass(frozen=True)
class Drafted:
    """An idea that validated, after its reflection rounds."""

    fields: dict[str, Any]
    """The record's fields as the model last gave them (without `thought` and `done`)."""
    reflections: int
    """Reflection rounds made."""
    notes: tuple[str, ...]
    """What went wrong on the way without losing the idea (a reflection that never validated)."""


@dataclass(frozen=True)
class NotDrafted:
    """No reply validated: the idea is reported failed."""

    errors: tuple[str, ...]
    attempts: int
    last_reply: str


def _fix(errors: list[str]) -> str:
    return render("ideation_fix", errors=errors)


def _record(obj: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if k not in ("thought", "done")}


def draft(model: Model, template: Template, experiment_code: str, existing: list[str], *,
          index: int, total: int, reflections: int, retries: int, usage: Usage) -> Drafted | NotDrafted:
    """Propose idea `index` of `total`, then refine it at most `reflections` times."""
    schema = idea_schema(template)
    messages: list[Message] = [
        {"role": "system", "content": render("ideation_system", template=template,
                                             provides=template.provides,
                                             refused=template.refused_changes)},
        {"role": "user", "content": render("ideation_generate", code=experiment_code,
                                           existing=existing, index=index, total=total)},
    ]
    first = ask_valid(model, messages, schema, usage=usage, prompt_kind="idea.generate",
                      call_id=f"idea{index}/generate", fix=_fix, retries=retries)
    if isinstance(first, Invalid):
        return NotDrafted(first.errors, first.attempts, first.last_reply)
    current, rounds = first.obj, 0
    notes: list[str] = []
    for round_ in range(1, reflections + 1):
        if current.get("done") is True:
            break
        rounds = round_
        messages.append({"role": "user", "content": render("ideation_reflect", round=round_,
                                                           rounds=reflections)})
        refined = ask_valid(model, messages, schema, usage=usage, prompt_kind="idea.reflect",
                            call_id=f"idea{index}/reflect{round_}", fix=_fix, retries=retries)
        if isinstance(refined, Invalid):
            notes.append(f"reflection {round_} did not validate ({'; '.join(refined.errors)}): "
                         f"the idea is kept as it was before it")
            break
        current = refined.obj
    return Drafted(_record(current), rounds, tuple(notes))
