"""Pre-registered hypotheses: what the plan says the runs will show, fixed before run 1 and
judged by code from the seeds' intervals after the last run.

- `hypotheses.json` (committed before run 1): the registered list, never rewritten; later
  changes are appended as amendments with a reason; `problem` says why none were registered.
- `extract(reply, key)` finds the JSON block (`{"hypotheses": [...]}` or `{"amendments": [...]}`)
  in a reply; `validate` and `amend` check it against the template and say, for each item,
  what is wrong and what to write instead.
- `agent.judging.judge(doc, final_infos, metrics)` decides each effective hypothesis with
  `agent.stats`; `hypotheses_verdicts.json` (`write_verdicts`, `load_verdicts`) keeps it.
"""

from __future__ import annotations

import difflib
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

from agent import stats

HYPOTHESES_FILE = "hypotheses.json"
VERDICTS_FILE = "hypotheses_verdicts.json"
ListKey = Literal["hypotheses", "amendments"]
FIELDS = ("id", "statement", "metric", "run", "against", "expected", "smallest_effect")
EXPECTED = ("increase", "decrease")
ID = re.compile(r"^H\d+$")
FENCE = re.compile(r"```[ \t]*([^\n`]*)\n(.*?)```", re.S)


@dataclass(frozen=True)
class Hypothesis:
    """One falsifiable statement about two runs on one metric."""

    id: str
    """`H1`, `H2`, ..."""
    statement: str
    """One sentence, the model's words."""
    metric: str
    """A metric name of template.toml."""
    run: int
    """The planned run it is about (1..max_runs)."""
    against: int
    """The run it is compared with (0: the baseline)."""
    expected: stats.Expected
    """Direction of the raw value of the metric (not "better")."""
    smallest_effect: float
    """The smallest difference that matters, in the metric's units (>= 0)."""

    def to_json(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in FIELDS}


@dataclass(frozen=True)
class Amendment:
    """A later version of a hypothesis (or a new one), appended beside the original."""

    after_run: int
    """The last run whose results had been seen."""
    reason: str
    id: str
    hypothesis: Hypothesis
    """The full new version."""

    def to_json(self) -> dict[str, Any]:
        return {"after_run": self.after_run, "reason": self.reason, "id": self.id,
                "hypothesis": self.hypothesis.to_json()}


@dataclass(frozen=True)
class Effective:
    """A hypothesis as it stands after its amendments."""

    hypothesis: Hypothesis
    amended_after_run: int | None
    """After which run its latest amendment (or its addition) was made; None: as registered."""
    added_after_results: bool
    """Not in the registered list: added by an amendment, after results were seen."""
    reason: str | None = None
    """The latest amendment's reason."""


@dataclass(frozen=True)
class HypothesesDoc:
    """The content of hypotheses.json."""

    before_run: int
    at: str
    """When it was registered (`%Y-%m-%dT%H:%M:%S%z`)."""
    hypotheses: tuple[Hypothesis, ...]
    """As registered: never rewritten."""
    amendments: tuple[Amendment, ...] = ()
    problem: str | None = None
    """Why no (valid) hypotheses were registered, else None."""
    refused: tuple[str, ...] = ()
    """Why items of the registered block were left out (they were not registered)."""

    def effective(self) -> list[Effective]:
        """Registered ids first, then those added by amendments; each its latest version."""
        out: dict[str, Effective] = {h.id: Effective(h, None, False) for h in self.hypotheses}
        for a in self.amendments:
            out[a.id] = Effective(a.hypothesis, a.after_run, a.id not in {h.id for h in self.hypotheses},
                                  a.reason)
        return list(out.values())

    def amended(self, added: Sequence[Amendment]) -> HypothesesDoc:
        """This document with `added` appended to its amendments."""
        return replace(self, amendments=(*self.amendments, *added))

    def to_json(self) -> dict[str, Any]:
        return {"registered": {"before_run": self.before_run, "at": self.at},
                "hypotheses": [h.to_json() for h in self.hypotheses],
                "amendments": [a.to_json() for a in self.amendments],
                "problem": self.problem, "refused": list(self.refused)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> HypothesesDoc:
        reg = data.get("registered") or {}
        return cls(int(reg.get("before_run", 1)), str(reg.get("at", "")),
                   tuple(_hypothesis(h) for h in data.get("hypotheses") or ()),
                   tuple(Amendment(int(a["after_run"]), str(a["reason"]), str(a["id"]), _hypothesis(a["hypothesis"]))
                         for a in data.get("amendments") or ()),
                   data.get("problem"), tuple(data.get("refused") or ()))


def _hypothesis(d: Mapping[str, Any]) -> Hypothesis:
    return Hypothesis(str(d["id"]), str(d["statement"]), str(d["metric"]), int(d["run"]), int(d["against"]),
                      d["expected"], float(d["smallest_effect"]))


# --- finding the block in a reply -------------------------------------------------------------

@dataclass(frozen=True)
class Extracted:
    """What a reply holds under `key`."""

    items: list[Any] | None
    """The list, or None when the reply has no usable block."""
    problem: str | None = None
    """Why not, when a block was there but unusable (None: there was none, or it is fine)."""


def _object_with(text: str, key: str) -> tuple[Any, str | None]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        return None, f"line {exc.lineno} column {exc.colno}: {exc.msg}"
    return (value, None) if isinstance(value, dict) and key in value else (None, None)


def extract(reply: str, key: ListKey = "hypotheses") -> Extracted:
    """The list under `key` in the reply's JSON block (```json, ```JSON or a bare fence), or in
    a `{"key": ...}` object written in the prose; the last block that holds `key` wins."""
    found: Any = None
    problem: str | None = None
    for match in FENCE.finditer(reply):
        tag, body = match.group(1).strip().lower(), match.group(2)
        if "<<<<<<< SEARCH" in body or f'"{key}"' not in body or tag not in ("", "json", "jsonc", "json5"):
            continue
        value, error = _object_with(body.strip(), key)
        if value is not None:
            found, problem = value, None
        elif error and found is None:
            problem = f"the ```json block holding \"{key}\" is not valid JSON ({error})"
    if found is None and problem is None:  # no fence: an object in the prose
        decoder = json.JSONDecoder()
        for match in re.finditer(r"\{\s*\"" + key + r"\"\s*:", reply):
            try:
                value, _ = decoder.raw_decode(reply, match.start())
            except json.JSONDecodeError:
                continue
            found = value
    if found is None:
        return Extracted(None, problem)
    items = found[key]
    if not isinstance(items, list):
        return Extracted(None, f"\"{key}\" must be a list of objects, not {_kind(items)}")
    return Extracted(items)


def strip_blocks(text: str) -> str:
    """`text` without its hypotheses and amendments blocks (the plan as later prompts show it)."""
    def keep(m: re.Match[str]) -> str:
        body = m.group(2)
        return "" if ('"hypotheses"' in body or '"amendments"' in body) and "SEARCH" not in body else m.group(0)
    return re.sub(r"\n{3,}", "\n\n", FENCE.sub(keep, text)).strip()


# --- validation --------------------------------------------------------------------------------

def _kind(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number")


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _index(value: Any) -> int | None:
    n = _number(value)
    return int(n) if n is not None and math.isfinite(n) and n == int(n) else None


def _metric_help(metrics: Sequence[Any]) -> str:
    return ", ".join(f"{m.name} ({m.direction} is better)" for m in metrics)


def check(obj: Any, metrics: Sequence[Any], max_runs: int, where: str) -> tuple[Hypothesis | None, list[str]]:
    """One item of a hypotheses list: the hypothesis, or what is wrong with it (each message
    names the field, the value found and what to write instead)."""
    if not isinstance(obj, dict):
        return None, [f"{where} is {_kind(obj)}, not an object: write {{\"id\": \"H1\", \"statement\": ..., "
                      f"\"metric\": ..., \"run\": 1, \"against\": 0, \"expected\": ..., \"smallest_effect\": ...}}"]
    errors: list[str] = []
    hid = obj.get("id")
    if not isinstance(hid, str) or not ID.match(hid):
        errors.append(f"{where}: field 'id' is {json.dumps(hid)}: write H followed by a number, e.g. \"H1\"")
    statement = obj.get("statement")
    if not isinstance(statement, str) or not statement.strip():
        errors.append(f"{where}: field 'statement' is {'missing' if statement is None else json.dumps(statement)}: "
                      "write one sentence saying what the run will show and why")
    names = [m.name for m in metrics]
    metric = obj.get("metric")
    if metric not in names:
        lower = {n.lower(): n for n in names}
        close = difflib.get_close_matches(str(metric).lower(), list(lower), n=1)
        hint = f" (did you mean \"{lower[close[0]]}\"?)" if close else ""
        errors.append(f"{where}: field 'metric' is {json.dumps(metric)}, which is not a metric of this template"
                      f"{hint}: write one of {_metric_help(metrics)}")
    run = _index(obj.get("run"))
    if run is None or not 1 <= run <= max_runs:
        run = None
        errors.append(f"{where}: field 'run' is {json.dumps(obj.get('run'))}: write the index of the planned run "
                      f"the hypothesis is about, a whole number from 1 to {max_runs} (1 for run_1)")
    raw_against = obj.get("against", 0)
    against = _index(raw_against)
    if against is None or not 0 <= against <= max_runs:
        errors.append(f"{where}: field 'against' is {json.dumps(raw_against)}: write the index of the run it is "
                      f"compared with, a whole number from 0 (the baseline) to {max_runs}")
    elif run is not None and against == run:
        errors.append(f"{where}: field 'against' is {against}, the same run as 'run': compare run {run} with "
                      "another run, e.g. 0 for the baseline")
    expected = obj.get("expected")
    if expected not in EXPECTED:
        m = next((m for m in metrics if m.name == metric), None)
        better = "an \"increase\"" if m and m.direction == "higher" else "a \"decrease\""
        hint = f" ({metric}: {m.direction} is better, so an improvement is {better})" if m else ""
        errors.append(f"{where}: field 'expected' is {json.dumps(expected)}: write \"increase\" or \"decrease\", "
                      f"the direction of the metric's raw value, not whether it is better{hint}")
    effect = _number(obj.get("smallest_effect"))
    if effect is None or not math.isfinite(effect) or effect < 0:
        errors.append(f"{where}: field 'smallest_effect' is {json.dumps(obj.get('smallest_effect'))}: write a "
                      "number >= 0, the smallest difference that would matter, in the metric's units")
    if errors:
        return None, errors
    assert isinstance(hid, str) and isinstance(statement, str) and run is not None and against is not None
    assert effect is not None and isinstance(metric, str) and expected in EXPECTED
    return Hypothesis(hid, statement.strip(), metric, run, against, expected, effect), []


def validate(items: Sequence[Any], metrics: Sequence[Any], max_runs: int) -> tuple[list[Hypothesis], list[str]]:
    """The valid hypotheses of a registration block, and one message per problem."""
    valid: list[Hypothesis] = []
    errors: list[str] = []
    if not items:
        return [], ["the \"hypotheses\" list is empty: state at least one hypothesis"]
    seen: set[str] = set()
    for i, obj in enumerate(items, start=1):
        label = f"hypothesis {i}" + (f" ({obj['id']})" if isinstance(obj, dict) and isinstance(obj.get("id"), str) else "")
        h, problems = check(obj, metrics, max_runs, label)
        if h is not None and h.id in seen:
            problems = [f"{label}: id {h.id} is used twice: give each hypothesis its own id (H1, H2, ...)"]
            h = None
        errors += problems
        if h is not None:
            seen.add(h.id)
            valid.append(h)
    return valid, errors


def amend(doc: HypothesesDoc, items: Sequence[Any], metrics: Sequence[Any], max_runs: int,
          after_run: int) -> tuple[HypothesesDoc, list[Amendment], list[str]]:
    """Apply an amendments list: each item names an `id` and a `reason` and the fields that
    change (a new id needs every field: it is a hypothesis added after results were seen).
    Returns the amended document, the amendments accepted, and why the others were refused."""
    current = {e.hypothesis.id: e.hypothesis for e in doc.effective()}
    accepted: list[Amendment] = []
    errors: list[str] = []
    for i, obj in enumerate(items, start=1):
        hid = obj.get("id") if isinstance(obj, dict) else None
        label = f"amendment {i}" + (f" ({hid})" if isinstance(hid, str) else "")
        if not isinstance(obj, dict):
            errors.append(f"{label} is {_kind(obj)}, not an object: write {{\"id\": \"H1\", \"reason\": ..., "
                          "and the fields that change}}")
            continue
        reason = obj.get("reason")
        if not isinstance(reason, str) or not reason.strip():
            errors.append(f"{label}: field 'reason' is {'missing' if reason is None else json.dumps(reason)}: "
                          "say in one sentence why the hypothesis changes; nothing was changed")
            continue
        if any(a.id == hid for a in accepted):
            errors.append(f"{label}: {hid} is amended twice in one reply: merge the changes into one amendment")
            continue
        old = current.get(hid) if isinstance(hid, str) else None
        fields = {k: v for k, v in obj.items() if k in FIELDS}
        merged = {**old.to_json(), **fields} if old else fields
        h, problems = check(merged, metrics, max_runs, label)
        if h is None:
            errors += [p + "; the hypothesis was not changed" if old else p for p in problems]
            continue
        if old is not None and h == old:
            errors.append(f"{label}: it changes none of {hid}'s fields: write the fields that change "
                          f"({', '.join(FIELDS[1:])}) beside 'id' and 'reason'")
            continue
        accepted.append(Amendment(after_run, reason.strip(), h.id, h))
        current[h.id] = h
    return doc.amended(accepted), accepted, errors


# --- files -------------------------------------------------------------------------------------

def write(root: Path, doc: HypothesesDoc) -> Path:
    path = root / HYPOTHESES_FILE
    path.write_text(json.dumps(doc.to_json(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def load(root: Path) -> HypothesesDoc | None:
    """hypotheses.json of a run directory, or None when there is none."""
    path = root / HYPOTHESES_FILE
    if not path.is_file():
        return None
    return HypothesesDoc.from_json(json.loads(path.read_text(encoding="utf-8")))


def write_verdicts(root: Path, verdicts: Mapping[str, Any]) -> Path:
    path = root / VERDICTS_FILE
    path.write_text(json.dumps(verdicts, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def load_verdicts(root: Path) -> dict[str, Any] | None:
    path = root / VERDICTS_FILE
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
