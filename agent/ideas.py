"""Idea records: `templates/<t>/ideas/<name>.json` (hand-written) and
`ideas/generated/<t>/<name>.json` (made by `python -m agent.ideas`), found by name.

An idea carries the reference system's fields plus its binding to a template (`template`,
and `requires`: the models, datasets and evaluations it assumes). An idea that assumes what
its template cannot do is refused before anything runs. A generated idea also carries the
outcome of its novelty check (`novelty`: novel / not novel / unknown) and its `provenance`.

`python -m agent.ideas --template T -n N` generates ideas (`agent.ideation`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args

from agent.errors import UsageError
from agent.template import Template

TEXT_FIELDS = (
    "Name", "Title", "Experiment", "Technical_Details", "Research_Impact", "Implementation_Plan",
    "Interestingness_Evaluation", "Feasibility_Evaluation", "Novelty_Evaluation",
)
SCORE_FIELDS = ("Interestingness", "Feasibility", "Novelty", "Overall_Score")
REQUIRED = (*TEXT_FIELDS, *SCORE_FIELDS, "novel", "template")
SESSION_SUFFIX = ".session.jsonl"
GENERATED = "generated"
"""`<repo>/ideas/generated/<template>/`: where generated ideas go by default."""

Novelty = Literal["novel", "not novel", "unknown"]
"""The outcome of a novelty check: `unknown` when the literature search could not decide
(it failed, was rate-limited past its budget, or found nothing)."""
NOVELTY_VALUES: tuple[str, ...] = get_args(Novelty)


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
    def novelty(self) -> Novelty | None:
        """The outcome of the idea's novelty check (`novelty`, written by `python -m
        agent.ideas`); None for an idea that records no check (hand-written: its `novel` was
        typed by hand, and it runs as it always did)."""
        value = self.fields.get("novelty")
        return value if value in NOVELTY_VALUES else None  # type: ignore[return-value]

    @property
    def reference_session(self) -> Path | None:
        """Recorded replies shipped next to the idea, replayed when no live model is set."""
        path = self.path.with_name(self.name + SESSION_SUFFIX)
        return path if path.is_file() else None


def generated_dir(templates_dir: Path) -> Path:
    """Where generated ideas live beside `templates_dir`: `<repo>/ideas/generated/`."""
    return templates_dir.parent / "ideas" / GENERATED


def idea_files(templates_dir: Path) -> dict[str, list[Path]]:
    """Every idea name under `templates_dir` (and generated beside it), with the file(s) that
    define it."""
    found: dict[str, list[Path]] = {}
    paths = [*sorted(templates_dir.glob("*/ideas/*.json")),
             *sorted(generated_dir(templates_dir).glob("*/*.json"))]
    for path in paths:
        found.setdefault(path.stem, []).append(path)
    return found


def template_of_place(path: Path) -> str | None:
    """The template an idea file's place names: `templates/<t>/ideas/` or
    `ideas/generated/<t>/`; None for a folder the user chose."""
    if path.parent.name == "ideas":
        return path.parents[1].name
    if path.parents[1].name == GENERATED:
        return path.parent.name
    return None


def find(name: str, templates_dir: Path, template: str | None = None) -> Path:
    """The file of idea `name` (optionally within one template), or a UsageError listing ideas."""
    found = idea_files(templates_dir)
    paths = [p for p in found.get(name, []) if template is None or template_of_place(p) == template]
    if not paths:
        known = ", ".join(sorted(found)) or "(none)"
        where = f" in template '{template}'" if template else ""
        raise UsageError(f"unknown idea '{name}'{where}. Known ideas: {known}")
    if len(paths) > 1:
        options = ", ".join(str(p) for p in paths)
        raise UsageError(f"idea '{name}' is defined more than once ({options}): pass --template")
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
    novelty = data.get("novelty")
    if novelty is not None and novelty not in NOVELTY_VALUES:
        raise UsageError(f"{path}: field 'novelty' must be one of {', '.join(NOVELTY_VALUES)}")
    if novelty is not None and data["novel"] != (novelty == "novel"):
        raise UsageError(f"{path}: fields 'novel' ({str(data['novel']).lower()}) and 'novelty' "
                         f"('{novelty}') disagree: 'novel' is true exactly when 'novelty' is 'novel'")
    placed = template_of_place(path)
    if placed is not None and data["template"] != placed:
        raise UsageError(f"{path}: field 'template' is '{data['template']}' but the idea sits in "
                         f"the folder of template '{placed}'")
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


def check_novelty(idea: Idea, allow_not_novel: bool) -> str | None:
    """Refuse an idea its novelty check found "not novel" (unless allowed); a warning to show
    when its novelty is unknown or was overridden, else None. A hand-written idea (no check
    recorded) passes as before."""
    if idea.novelty == "not novel" and not allow_not_novel:
        reason = _novelty_reason(idea)
        raise UsageError(f"idea '{idea.name}' ({idea.path}) was found NOT NOVEL by its novelty check"
                         f"{f': {reason}' if reason else ''}. Nothing was started. Run it anyway "
                         f"with --allow-not-novel, or choose another idea.")
    if idea.novelty == "not novel":
        return f"idea '{idea.name}' was found not novel; running it because of --allow-not-novel"
    if idea.novelty == "unknown":
        reason = _novelty_reason(idea)
        return (f"novelty unknown: the novelty check of idea '{idea.name}' could not decide"
                f"{f' ({reason})' if reason else ''}; it runs, but nobody has checked that it is new")
    return None


def _novelty_reason(idea: Idea) -> str:
    provenance = idea.fields.get("provenance")
    novelty = provenance.get("novelty") if isinstance(provenance, dict) else None
    reason = novelty.get("reason") if isinstance(novelty, dict) else None
    return reason.strip().rstrip(".") if isinstance(reason, str) else ""


if __name__ == "__main__":  # `python -m agent.ideas`: generate ideas (agent.ideation)
    import sys

    from agent.ideation.cli import main

    sys.exit(main())
