"""The review form of the reference system (the NeurIPS reviewer form of Sakana's AI Scientist,
`perform_review`), plus our `Integrity` field: a response to every finding of the integrity
report, by its id. A reply is parsed (the JSON may sit in a ```json fence), validated against a
JSON schema, and cross-checked against the findings it had to address; what is wrong comes
back as exact messages for the model to fix.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

Decision = Literal["Accept", "Reject"]

SCORES = {"Originality": 4, "Quality": 4, "Clarity": 4, "Significance": 4, "Soundness": 4,
          "Presentation": 4, "Contribution": 4, "Overall": 10, "Confidence": 5}
"""Each score of the form and its top value (every score starts at 1)."""

FIELDS = ("Summary", "Strengths", "Weaknesses", "Originality", "Quality", "Clarity", "Significance",
          "Questions", "Limitations", "Ethical Concerns", "Soundness", "Presentation",
          "Contribution", "Overall", "Confidence", "Decision", "Integrity")
"""The form's fields, in the order of the reference system (ours, `Integrity`, last)."""

_TEXTS = {"type": "array", "items": {"type": "string", "minLength": 1}}

SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "NeurIPS review form with integrity responses",
    "type": "object",
    "required": list(FIELDS),
    "additionalProperties": False,
    "properties": {
        "Summary": {"type": "string", "minLength": 1},
        "Strengths": _TEXTS,
        "Weaknesses": _TEXTS,
        "Questions": _TEXTS,
        "Limitations": _TEXTS,
        "Ethical Concerns": {"type": "boolean"},
        **{name: {"type": "integer", "minimum": 1, "maximum": top} for name, top in SCORES.items()},
        "Decision": {"enum": ["Accept", "Reject"]},
        "Integrity": {"type": "array", "items": {
            "type": "object", "required": ["finding", "response"], "additionalProperties": False,
            "properties": {"finding": {"type": "string", "pattern": "^F[1-9][0-9]*$"},
                           "response": {"type": "string", "minLength": 1}}}},
    },
}
"""The form as a JSON schema (draft 2020-12)."""

_FENCE = re.compile(r"```[ \t]*(?:json)?[ \t]*\n(.*?)```", re.S | re.I)


@dataclass(frozen=True)
class Review:
    """A filled-in form that passed the schema and the integrity cross-check."""

    form: dict[str, Any]
    """The form's fields, keyed as on the form (`Overall`, `Ethical Concerns`, ...), in order."""

    @property
    def overall(self) -> int:
        return int(self.form["Overall"])

    @property
    def confidence(self) -> int:
        return int(self.form["Confidence"])

    @property
    def decision(self) -> Decision:
        decision: Decision = self.form["Decision"]
        return decision

    def scores(self) -> dict[str, int]:
        """Every score of the form, by name."""
        return {name: int(self.form[name]) for name in SCORES}


@dataclass(frozen=True)
class Checked:
    """What a reply to the review prompt turned out to be."""

    review: Review | None
    """The review, when the reply is a valid form that addresses every finding."""
    errors: tuple[str, ...]
    """What is wrong with the reply, in words for the model (empty when `review` is set)."""


def extract(reply: str) -> tuple[Any, str | None]:
    """The JSON object in a reply: the first fenced block that parses, else the text from the
    first `{` to the last `}`. Returns (object, None) or (None, what went wrong)."""
    problem = None
    for block in _FENCE.findall(reply):
        try:
            return json.loads(block), None
        except json.JSONDecodeError as exc:
            problem = problem or f"the JSON in the reply's fenced block does not parse: {_where(exc)}"
    if problem:
        return None, problem
    start, end = reply.find("{"), reply.rfind("}")
    if start < 0 or end < start:
        return None, ("the reply holds no JSON object: send the review form as one JSON object in "
                      "a ```json fenced block")
    try:
        return json.loads(reply[start:end + 1]), None
    except json.JSONDecodeError as exc:
        return None, f"the JSON in the reply does not parse: {_where(exc)}"


def _where(exc: json.JSONDecodeError) -> str:
    return f"{exc.msg} (line {exc.lineno}, column {exc.colno})"


def schema_errors(obj: Any) -> list[str]:
    """Every way `obj` breaks the form's schema, one message each, by position."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(SCHEMA)
    errors = sorted(validator.iter_errors(obj), key=lambda e: [str(p) for p in e.absolute_path])
    return [f"{_path(e.absolute_path)}: {e.message}" for e in errors]


def _path(path: Iterable[Any]) -> str:
    parts = list(path)
    if not parts:
        return "the form"
    out = str(parts[0])
    for p in parts[1:]:
        out += f"[{p}]" if isinstance(p, int) else f".{p}"
    return out


def integrity_errors(items: Any, finding_ids: Sequence[str]) -> list[str]:
    """`Integrity` must address every finding of the report once, and name no other."""
    if not isinstance(items, list):
        return []  # the schema says so already
    named = [i["finding"] for i in items if isinstance(i, dict) and isinstance(i.get("finding"), str)]
    counts = Counter(named)
    allowed = ", ".join(finding_ids) if finding_ids else "none: the report has no findings"
    errors = [f'Integrity: finding {fid} is not addressed; add {{"finding": "{fid}", "response": "..."}}'
              for fid in finding_ids if fid not in counts]
    errors += [f"Integrity: {fid} is not a finding of the integrity report (its findings: {allowed}); "
               "remove it" for fid in counts if fid not in finding_ids]
    errors += [f"Integrity: finding {fid} is addressed {n} times; address it once"
               for fid, n in counts.items() if n > 1 and fid in finding_ids]
    return errors


def check(reply: str, finding_ids: Sequence[str]) -> Checked:
    """Parse and validate one reply against the form and the findings it must address."""
    obj, problem = extract(reply)
    if problem is not None:
        return Checked(None, (problem,))
    if not isinstance(obj, dict):
        return Checked(None, (f"the form: expected a JSON object, got {type(obj).__name__}",))
    errors = schema_errors(obj) + integrity_errors(obj.get("Integrity"), finding_ids)
    if errors:
        return Checked(None, tuple(errors))
    # The schema takes 6.0 for an integer; the record keeps 6.
    return Checked(Review({name: int(obj[name]) if name in SCORES else obj[name] for name in FIELDS}), ())
