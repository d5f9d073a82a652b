"""A model's JSON reply: found in the text, checked against a JSON schema, and sent back with
the errors (a bounded number of times) until it validates."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from agent.llm.records import Completion, ContextOverflow, Message

Schema = dict[str, Any]
Check = Callable[[dict[str, Any]], list[str]]
"""Rules beyond the schema (e.g. "cite only papers you saw"): the problems found, or none."""


class Model(Protocol):
    """What ideation needs of `agent.llm.LLMClient`."""

    def complete(self, messages: list[Message], *, stage: str, prompt_kind: str,
                 call_id: str | None = None) -> Completion | ContextOverflow: ...


@dataclass
class Usage:
    """Tokens and cost of the calls made for one idea (mutable: it adds up as calls are made)."""

    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float | None = 0.0
    """None once any call's price was unknown."""

    def add(self, c: Completion) -> None:
        self.calls += 1
        self.input_tokens += c.input_tokens
        self.output_tokens += c.output_tokens
        self.cost_usd = None if self.cost_usd is None or c.cost_usd is None else self.cost_usd + c.cost_usd

    def to_json(self) -> dict[str, Any]:
        return {"calls": self.calls, "input_tokens": self.input_tokens,
                "output_tokens": self.output_tokens, "cost_usd": self.cost_usd}


@dataclass(frozen=True)
class Valid:
    """A reply that validated."""

    obj: dict[str, Any]
    """The JSON object."""
    attempts: int
    """Replies it took, the first one included."""


@dataclass(frozen=True)
class Invalid:
    """No reply validated within the bound: the last one's problems."""

    errors: tuple[str, ...]
    attempts: int
    last_reply: str


def json_object(reply: str) -> tuple[dict[str, Any] | None, str | None]:
    """The reply's JSON object (a ```json fenced block, else the outermost braces), or why not."""
    text = reply
    fence = reply.find("```json")
    if fence >= 0:
        end = reply.find("```", fence + 7)
        text = reply[fence + 7:end if end >= 0 else len(reply)]
    start, end = text.find("{"), text.rfind("}")
    if start < 0 or end < start:
        return None, "the reply holds no JSON object: answer with one JSON object in a ```json fenced block"
    try:
        obj = json.loads(text[start:end + 1])
    except json.JSONDecodeError as exc:
        return None, f"the JSON does not parse: {exc.msg} (line {exc.lineno}, column {exc.colno})"
    if not isinstance(obj, dict):
        return None, "the JSON must be an object"
    return obj, None


def schema_errors(obj: Any, schema: Schema) -> list[str]:
    """Every way `obj` breaks `schema`, one line each, named by position."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(obj), key=lambda e: [str(p) for p in e.absolute_path])
    return [f"{_path(e.absolute_path)}: {e.message}" for e in errors]


def _path(path: Iterable[Any]) -> str:
    parts = [str(p) for p in path]
    return ".".join(parts) if parts else "the object"


def problems(reply: str, schema: Schema, check: Check | None = None) -> tuple[dict[str, Any] | None, list[str]]:
    """The reply's object and what is wrong with it (nothing: it validates)."""
    obj, problem = json_object(reply)
    if obj is None:
        return None, [str(problem)]
    errors = schema_errors(obj, schema)
    if not errors and check is not None:
        errors = check(obj)
    return obj, errors


def ask_valid(model: Model, messages: list[Message], schema: Schema, *, usage: Usage,
              prompt_kind: str, call_id: str, fix: Callable[[list[str]], str],
              retries: int, check: Check | None = None) -> Valid | Invalid:
    """Ask, validate, and send the errors back (`fix(errors)` words the message) at most
    `retries` times. `messages` grows by each exchange, so a caller continues the conversation
    from the valid reply. A context overflow counts as a reply that does not validate."""
    attempts = 0
    while True:
        attempts += 1
        kind = prompt_kind if attempts == 1 else "idea.fix"
        cid = call_id if attempts == 1 else f"{call_id}/fix{attempts - 1}"
        answer = model.complete(messages, stage="ideation", prompt_kind=kind, call_id=cid)
        if isinstance(answer, ContextOverflow):
            return Invalid((f"the prompt does not fit the model's context window: {answer.message}",),
                           attempts, "")
        usage.add(answer)
        messages.append({"role": "assistant", "content": answer.text})
        obj, errors = problems(answer.text, schema, check)
        if obj is not None and not errors:
            return Valid(obj, attempts)
        if attempts > retries:
            return Invalid(tuple(errors), attempts, answer.text)
        messages.append({"role": "user", "content": fix(errors)})
