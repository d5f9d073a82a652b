"""Experiment templates: `templates/<name>/template.toml`, loaded and validated once.

The manifest says what the LLM may edit, how a run is started, which metrics matter and in
which direction, which plausibility gates a run must pass, and which presets exist.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Literal

from agent.errors import UsageError
from harness.gates import Gate, GateSyntaxError, parse_gate

Direction = Literal["higher", "lower"]
MANIFEST = "template.toml"
DEFAULT_EDITABLE = ("experiment.py", "plot.py", "notes.txt", "latex/template.tex")
DEFAULT_SEEDS = 3
"""Seeds per run unless the template, its preset or --seeds says otherwise."""


@dataclass(frozen=True)
class Metric:
    """A metric a run reports in `final_info.json["metrics"]`."""

    name: str
    """Key in the metrics dict."""
    label: str
    """Human name for tables and prompts."""
    direction: Direction
    """Whether higher or lower is better."""
    headline: bool = False
    """Shown in the compact results table and the paper's main table."""
    format: str = ".4g"
    """Python format spec used wherever the value is printed."""

    def fmt(self, value: float | None) -> str:
        if value is None:
            return "n/a"
        try:
            return format(value, self.format)
        except (ValueError, TypeError):
            # An integer spec ("d") given a float read back from JSON, or a NaN: still print it.
            if isinstance(value, float) and value.is_integer():
                try:
                    return format(int(value), self.format)
                except (ValueError, TypeError):
                    pass
            return format(value, ".4g") if isinstance(value, (int, float)) else str(value)


@dataclass(frozen=True)
class SetupFact:
    """A fact of the experimental setup the paper may state, as a `\\Setup...` macro of
    results.tex (`[[setup]]` in template.toml): defined where every run records the same value."""

    macro: str
    """`SetupModel`: the macro's name (letters only, starting with `Setup`)."""
    paths: tuple[str, ...]
    """Where to look in final_info.json, first found: `config.hidden_dim`, `data.source_label`."""
    format: Literal["int", "id", "text", "tt"] = "int"
    """How to print it: an integer with thousands separators, an integer as it is (a seed),
    plain text, or typewriter text."""


@dataclass(frozen=True)
class Preset:
    """A named size of the experiment (model, data, time budget)."""

    name: str
    description: str
    timeout_s: float | None
    """Per-run timeout for this preset, seconds; None means the template's."""
    seeds: int | None = None
    """Seeds per run for this preset; None means the template's."""


@dataclass(frozen=True)
class Template:
    """A loaded, validated template manifest."""

    name: str
    root: Path
    """The template's folder."""
    description: str
    """Goes into the system prompt."""
    editable: tuple[str, ...]
    """Run-directory-relative files the LLM may change."""
    run_command: tuple[str, ...]
    """argv with `{out_dir}` placeholder."""
    plot_command: tuple[str, ...]
    timeout_s: float
    """Per-run timeout in seconds (a preset or --timeout may override)."""
    figures: tuple[str, ...]
    """Files the plot command must produce."""
    metrics: tuple[Metric, ...]
    gates: tuple[Gate, ...]
    presets: dict[str, Preset]
    provides: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """What ideas bound to this template may assume: models, datasets, evaluations."""
    presets_provider: str | None = None
    """Module with `available() -> {name: None | reason}` and `default_name()`, if any."""
    pass_env: tuple[str, ...] = ()
    """Environment variables (names) its experiments may see besides the sandbox's allowlist."""
    seeds: int = DEFAULT_SEEDS
    """Seeds per run (each run is trained and evaluated this many times; a preset or --seeds
    may override)."""
    setup: tuple[SetupFact, ...] = ()
    """Setup facts the paper states from the records (`[[setup]]`)."""
    refused_changes: dict[str, str] = field(default_factory=dict)
    """What an idea may not change, with the reason (`[refused_changes]`, e.g. a procedure an
    evaluator runs itself): an idea whose `requires.changes` names one is refused."""
    evaluator: str | None = None
    """`harness.<package>.evaluator` (e.g. `harness.sae.evaluator`): the loop evaluates each run
    in a process of its own from what the experiment exported (the package's `contract`); None:
    the experiment's own final_info.json is the result, and its runs are marked untrusted."""

    @property
    def contract(self) -> ModuleType | None:
        """The evaluation package's contract (`harness.provenance.contract`), or None."""
        if not self.evaluator:
            return None
        from harness import provenance

        return provenance.contract(self.evaluator)

    @property
    def headline(self) -> tuple[Metric, ...]:
        return tuple(m for m in self.metrics if m.headline)

    def metric(self, name: str) -> Metric | None:
        return next((m for m in self.metrics if m.name == name), None)

    def command_for(self, out_dir: str) -> list[str]:
        return [part.replace("{out_dir}", out_dir) for part in self.run_command]

    def seeds_for(self, preset: str | None, override: int | None = None) -> int:
        """How many seeds each run gets: --seeds, else the preset's, else the template's."""
        if override:
            return override
        p = self.presets.get(preset or "")
        return p.seeds if p and p.seeds else self.seeds

    def timeout_for(self, preset: str | None, override: float | None = None) -> float:
        if override:
            return override
        p = self.presets.get(preset or "")
        return p.timeout_s if p and p.timeout_s else self.timeout_s


def _require(data: dict[str, Any], key: str, kind: type | tuple[type, ...], where: Path) -> Any:
    if key not in data:
        raise UsageError(f"{where}: required field '{key}' is missing")
    if not isinstance(data[key], kind):
        raise UsageError(f"{where}: field '{key}' has the wrong type ({type(data[key]).__name__})")
    return data[key]


def _str_list(value: Any, key: str, where: Path) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise UsageError(f"{where}: field '{key}' must be a list of non-empty strings")
    return tuple(value)


def load(root: Path, *, run_dir: bool = False) -> Template:
    """Load `root/template.toml`; any problem is a UsageError naming the file and field.
    `run_dir`: the copy in a run directory (or a checkout of one of its commits), whose folder
    is named after the run, not the template."""
    path = root / MANIFEST
    if not path.is_file():
        raise UsageError(f"{path}: template manifest not found")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{path}: not valid TOML ({exc})") from exc
    name = _require(data, "name", str, path)
    if name != root.name and not run_dir:
        raise UsageError(f"{path}: field 'name' is '{name}' but the folder is '{root.name}'")
    description = _require(data, "description", str, path).strip()
    editable = _str_list(data.get("editable", list(DEFAULT_EDITABLE)), "editable", path)
    for rel in editable:
        if not _safe_rel(rel):
            raise UsageError(f"{path}: field 'editable' has an unsafe path '{rel}'")
    run_command = _str_list(_require(data, "run_command", list, path), "run_command", path)
    if not any("{out_dir}" in p for p in run_command):
        raise UsageError(f"{path}: field 'run_command' must contain '{{out_dir}}'")
    plot_command = _str_list(data.get("plot_command", ["python", "plot.py"]), "plot_command", path)
    timeout_s = _require(data, "timeout_s", (int, float), path)
    if isinstance(timeout_s, bool) or not 0 < timeout_s < float("inf"):
        raise UsageError(f"{path}: field 'timeout_s' must be a positive number of seconds")
    figures = _str_list(data.get("figures", []), "figures", path) if data.get("figures") else ()
    for rel in figures:
        if not _safe_rel(rel):
            raise UsageError(f"{path}: field 'figures' has an unsafe path '{rel}'")
    metrics = tuple(_metric(m, i, path) for i, m in enumerate(_require(data, "metrics", list, path)))
    if not any(m.headline for m in metrics):
        raise UsageError(f"{path}: field 'metrics' needs at least one metric with headline = true")
    raw_gates = data.get("gates", [])
    if not isinstance(raw_gates, list) or not all(isinstance(g, dict) for g in raw_gates):
        raise UsageError(f"{path}: field 'gates' must be a list of tables ([[gates]])")
    gates = []
    for i, g in enumerate(raw_gates):
        try:
            gates.append(parse_gate(g))
        except GateSyntaxError as exc:
            raise UsageError(f"{path}: field 'gates': {exc}") from exc
        except SyntaxError as exc:  # not even an expression: `a <`
            raise UsageError(f"{path}: field 'gates': gates[{i}] check {g.get('check')!r} "
                             f"is not a valid expression ({exc.msg})") from exc
    presets = {pname: _preset(pname, p, path) for pname, p in _table(data, "presets", path).items()}
    provides = {k: _str_list(v, f"provides.{k}", path) for k, v in _table(data, "provides", path).items()}
    for rel in ("experiment.py",):
        if not (root / rel).is_file():
            raise UsageError(f"{root}: the template has no {rel}")
    pass_env = _str_list(data["pass_env"], "pass_env", path) if data.get("pass_env") else ()
    evaluator = data.get("evaluator")
    if evaluator is not None:
        from harness import provenance

        try:
            provenance.contract(evaluator if isinstance(evaluator, str) else repr(evaluator))
        except (ValueError, ImportError, AttributeError) as exc:
            raise UsageError(f"{path}: field 'evaluator': {exc} (or leave it out: the experiment "
                             "then writes final_info.json itself and its runs are marked "
                             "untrusted)") from exc
    seeds = data.get("seeds", DEFAULT_SEEDS)
    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
        raise UsageError(f"{path}: field 'seeds' must be a positive integer (seeds per run)")
    if "vocabulary" in data:
        from agent.paper.ground import vocabulary

        try:
            vocabulary.parse(data["vocabulary"], "vocabulary")
        except ValueError as exc:
            raise UsageError(f"{path}: field {exc}") from exc
    setup = tuple(_setup(f, i, path) for i, f in enumerate(_list_of_tables(data, "setup", path)))
    refused = _table(data, "refused_changes", path)
    if not all(isinstance(v, str) and v.strip() for v in refused.values()):
        raise UsageError(f"{path}: field 'refused_changes' must map each change to its reason (a string)")
    return Template(name, root, description, editable, run_command, plot_command, float(timeout_s),
                    figures, metrics, tuple(gates), presets, provides, data.get("presets_provider"),
                    pass_env, seeds, setup, dict(refused), evaluator)


def _safe_rel(rel: str) -> bool:
    """A plain relative path inside the run directory, not into its git repository."""
    parts = Path(rel).parts
    return bool(parts) and not Path(rel).is_absolute() and ".." not in parts \
        and not rel.startswith(("~", ".git")) and ".git" not in parts


def _table(data: dict[str, Any], key: str, where: Path) -> dict[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise UsageError(f"{where}: field '{key}' must be a table ([{key}])")
    return value


def _list_of_tables(data: dict[str, Any], key: str, where: Path) -> list[dict[str, Any]]:
    raw = data.get(key, [])
    if not isinstance(raw, list) or not all(isinstance(t, dict) for t in raw):
        raise UsageError(f"{where}: field '{key}' must be a list of tables ([[{key}]])")
    return raw


def _setup(raw: dict[str, Any], i: int, where: Path) -> SetupFact:
    at = f"{where}: setup[{i}]"
    macro, paths, how = raw.get("macro"), raw.get("paths"), raw.get("format", "int")
    if not isinstance(macro, str) or not re.fullmatch(r"Setup[A-Z][A-Za-z]*", macro):
        raise UsageError(f"{at}: 'macro' must be a macro name of letters starting with Setup "
                         f"(e.g. SetupModel), not {macro!r}")
    if not isinstance(paths, list) or not paths or not all(
            isinstance(p, str) and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+", p)
            for p in paths):
        raise UsageError(f"{at}: 'paths' must list where final_info.json holds it "
                         "(e.g. [\"config.hidden_dim\"])")
    if how not in ("int", "id", "text", "tt"):
        raise UsageError(f"{at}: 'format' must be int, id, text or tt, not {how!r}")
    unknown = set(raw) - {"macro", "paths", "format"}
    if unknown:
        raise UsageError(f"{at}: unknown field(s) {', '.join(sorted(unknown))}")
    return SetupFact(macro, tuple(paths), how)


def _preset(name: str, raw: Any, where: Path) -> Preset:
    if not isinstance(raw, dict):
        raise UsageError(f"{where}: field 'presets.{name}' must be a table ([presets.{name}])")
    timeout = raw.get("timeout_s")
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float))
                                or not 0 < timeout < float("inf")):
        raise UsageError(f"{where}: field 'presets.{name}.timeout_s' must be a positive number of seconds")
    seeds = raw.get("seeds")
    if seeds is not None and (isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1):
        raise UsageError(f"{where}: field 'presets.{name}.seeds' must be a positive integer")
    return Preset(name, str(raw.get("description", "")), None if timeout is None else float(timeout),
                  seeds)


def _metric(raw: Any, i: int, path: Path) -> Metric:
    if not isinstance(raw, dict):
        raise UsageError(f"{path}: metrics[{i}] must be a table")
    for key in ("name", "label", "direction"):
        if not isinstance(raw.get(key), str):
            raise UsageError(f"{path}: metrics[{i}] field '{key}' is missing")
    if raw["direction"] not in ("higher", "lower"):
        raise UsageError(f"{path}: metrics[{i}] field 'direction' must be 'higher' or 'lower'")
    fmt = str(raw.get("format", ".4g"))
    errors = []
    for sample in (1.0, 1):  # ".4g" suits floats, "d" suits counts: either will do
        try:
            format(sample, fmt)
            break
        except ValueError as exc:
            errors.append(str(exc))
    else:
        raise UsageError(f"{path}: metrics[{i}] field 'format' is not a format spec ({errors[0]})")
    return Metric(raw["name"], raw["label"], raw["direction"], bool(raw.get("headline", False)), fmt)


def discover(templates_dir: Path) -> list[Path]:
    """Template folders (those with a manifest) under `templates_dir`."""
    if not templates_dir.is_dir():
        return []
    return sorted(p for p in templates_dir.iterdir() if (p / MANIFEST).is_file())


if __name__ == "__main__":  # python -m agent.template check templates/<name> (agent.template_check)
    import sys

    if sys.argv[1:2] != ["check"]:
        print("usage: python -m agent.template check TEMPLATE_DIR [--preset NAME] [--quick]", file=sys.stderr)
        sys.exit(2)
    from agent.template_check import main

    sys.exit(main(sys.argv[2:]))
