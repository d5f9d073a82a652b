"""Idea records: `templates/<t>/ideas/<name>.json`, found by name across templates.

An idea carries the reference system's fields plus its binding to a template (`template`,
and `requires`: the models, datasets and evaluations it assumes). An idea that assumes what
its template cannot do is refused before anything runs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.errors import UsageError
from agent.template import Template

TEXT_FIELDS = (
    "Name", "Title", "Experiment", "Technical_Details", "Research_Impact", "Implementation_Plan",
    "Interestingness_Evaluation", "Feasibility_Evaluation", "Novelty_Evaluation",
)
SCORE_FIELDS = ("Interestingness", "Feasibility", "Novelty", "Overall_Score")
REQUIRED = (*TEXT_FIELDS, *SCORE_FIELDS, "novel", "template")
SESSION_SUFFIX = ".session.jsonl"


@dataclass(frozen=True)
class Idea:
    """A research idea bound to a template."""

    name: str
    """File stem; what `--idea` takes."""
    path: Path
    """The JSON file it was read from."""
    template: str
    """Name of the template folder it is bound to."""
    fields: dict[str, Any]
    """Every field of the record, as written."""
    requires: dict[str, tuple[str, ...]]
    """What the idea assumes of its template: models, datasets, evaluations."""

    @property
    def title(self) -> str:
        return str(self.fields["Title"])

    @property
    def reference_session(self) -> Path | None:
        """Recorded replies shipped next to the idea, replayed when no live model is set."""
        path = self.path.with_name(self.name + SESSION_SUFFIX)
        return path if path.is_file() else None


def idea_files(templates_dir: Path) -> dict[str, list[Path]]:
    """Every idea name under `templates_dir`, with the file(s) that define it."""
    found: dict[str, list[Path]] = {}
    for path in sorted(templates_dir.glob("*/ideas/*.json")):
        found.setdefault(path.stem, []).append(path)
    return found


def find(name: str, templates_dir: Path, template: str | None = None) -> Path:
    """The file of idea `name` (optionally within one template), or a UsageError listing ideas."""
    found = idea_files(templates_dir)
    paths = [p for p in found.get(name, []) if template is None or p.parents[1].name == template]
    if not paths:
        known = ", ".join(sorted(found)) or "(none)"
        where = f" in template '{template}'" if template else ""
        raise UsageError(f"unknown idea '{name}'{where}. Known ideas: {known}")
    if len(paths) > 1:
        options = ", ".join(p.parents[1].name for p in paths)
        raise UsageError(f"idea '{name}' exists in several templates ({options}): pass --template")
    return paths[0]


def load(path: Path) -> Idea:
    """Read and validate one idea file; problems name the file and the field."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise UsageError(f"{path}: malformed JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}") from exc
    if not isinstance(data, dict):
        raise UsageError(f"{path}: an idea must be a JSON object")
    for key in REQUIRED:
        if key not in data:
            raise UsageError(f"{path}: required field '{key}' is missing")
    for key in (*TEXT_FIELDS, "template"):
        if not isinstance(data[key], str) or not data[key].strip():
            raise UsageError(f"{path}: field '{key}' must be a non-empty string")
    for key in SCORE_FIELDS:
        if not isinstance(data[key], (int, float)) or isinstance(data[key], bool):
            raise UsageError(f"{path}: field '{key}' must be a number")
    if not isinstance(data["novel"], bool):
        raise UsageError(f"{path}: field 'novel' must be true or false")
    if data["template"] != path.parents[1].name:
        raise UsageError(f"{path}: field 'template' is '{data['template']}' but the idea sits in "
                         f"templates/{path.parents[1].name}/ideas/")
    raw_req = data.get("requires", {})
    if not isinstance(raw_req, dict):
        raise UsageError(f"{path}: field 'requires' must be an object of lists")
    requires: dict[str, tuple[str, ...]] = {}
    for key, values in raw_req.items():
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise UsageError(f"{path}: field 'requires.{key}' must be a list of strings")
        requires[key] = tuple(values)
    return Idea(path.stem, path, data["template"], data, requires)


def check_binding(idea: Idea, template: Template) -> None:
    """Refuse an idea that assumes models, data or evaluations its template does not provide,
    or that changes what the template's trusted evaluation fixes (`requires.changes` naming one
    of its `[refused_changes]`, e.g. a procedure its evaluator runs itself)."""
    refused = [f"it changes the {what}, which this template does not allow: {template.refused_changes[what]}"
               for what in idea.requires.get("changes", ()) if what in template.refused_changes]
    if refused:
        raise UsageError(f"idea '{idea.name}' ({idea.path}) cannot run on template '{template.name}': "
                         + "; ".join(refused) + ". Rewrite the idea so the evaluation stays as it is.")
    problems = []
    for key, wanted in idea.requires.items():
        have = template.provides.get(key)
        if have is None:
            problems.append(f"it requires {key} {list(wanted)}, but the template declares no '{key}'")
            continue
        missing = [w for w in wanted if w not in have]
        if missing:
            problems.append(f"it requires {key} {missing}, but the template provides only {list(have)}")
    if problems:
        raise UsageError(
            f"idea '{idea.name}' ({idea.path}) does not fit template '{template.name}': "
            + "; ".join(problems)
            + ". Edit the idea's 'requires' (and its text) or the template's [provides]."
        )
