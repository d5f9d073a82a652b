"""What `figures.json` may declare, read and checked against the runs' results.

`validate(spec, runs)` returns the figures of a declaration with every name, run, quantity,
stated value and number of its words checked, or raises `Refused` saying what is wrong and
what to do (`harness.figures` draws them; its docstring has the format). The orchestrator also
uses `figure_files` to know which files the renderer may write.
"""

from __future__ import annotations

import json
import math
import os
import re
import tomllib
from pathlib import Path
from typing import Any

SPEC = "figures.json"
FILE_NAME = re.compile(r"(?!paper\.pdf$)[A-Za-z0-9][A-Za-z0-9_-]{0,60}\.(png|pdf)")
"""A plain figure name (never the paper the writeup compiles)."""
KINDS = ("bar", "scatter", "line")
MAX_FIGURES, MAX_PANELS, MAX_TEXT, MAX_SPEC_BYTES = 8, 9, 160, 65536
_FIGURE_KEYS = {"file", "title", "runs", "labels", "values", "panels"}
_PANEL_KEYS = {"kind", "x", "y", "title", "xlabel", "ylabel", "xscale", "yscale"}
_NUMBER = re.compile(r"(?<![\d.])[-+]?(\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?")
"""A number, also glued to letters ("TopK64", "EV0.99")."""
_RUN = re.compile(r"run_(\d+)")


class Refused(Exception):
    """The declaration cannot be drawn as stated; the message says what and what to do."""


def read_json(path: Path, limit: int) -> Any:
    """A JSON file read without following a link and without reading past `limit` bytes."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    with os.fdopen(fd, "rb") as fh:
        data = fh.read(limit + 1)
    if len(data) > limit:
        raise Refused(f"{path.name} is larger than {limit} bytes")
    return json.loads(data.decode("utf-8"))


def load_runs(root: Path) -> dict[str, dict[str, Any]]:
    """{"run_<i>": final_info} for every run with a readable final_info.json, in run order."""
    found = []
    for path in root.glob("run_*/final_info.json"):
        match = _RUN.fullmatch(path.parent.name)
        if match:
            try:
                info = read_json(path, 16 << 20)
            except (OSError, ValueError, Refused):
                continue
            if isinstance(info, dict):
                found.append((int(match.group(1)), path.parent.name, info))
    return {name: info for _, name, info in sorted(found)}


def load_metrics(manifest: Path | None) -> dict[str, dict[str, Any]]:
    """{metric name: its template.toml entry (label, direction, format)}."""
    if manifest is None or not manifest.is_file():
        return {}
    declared = tomllib.loads(manifest.read_text(encoding="utf-8")).get("metrics", [])
    return {m["name"]: m for m in declared if isinstance(m, dict) and "name" in m}


def number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def quantity(info: dict[str, Any], name: str) -> float | None:
    """A run's value of a metric, else of a numeric setting; None when it has neither."""
    for section in ("metrics", "config"):
        value = (info.get(section) or {}).get(name)
        if number(value):
            return float(value)
    return None


def interval(info: dict[str, Any], name: str) -> tuple[float, float, int] | None:
    """(low, high, n): the 95% interval of the mean the harness recorded over the run's
    seeds, or None (fewer than 2 independent seeds, or not a metric)."""
    seeds = info.get("seeds")
    if not isinstance(seeds, dict) or seeds.get("independent") is False:
        return None
    values = [v for v in (seeds.get("values") or {}).get(name) or [] if number(v)]
    ci = (seeds.get("ci95") or {}).get(name)
    if len(values) < 2 or not isinstance(ci, list) or len(ci) != 2 or not all(number(c) for c in ci):
        return None
    return float(ci[0]), float(ci[1]), len(values)


# --- the declaration -----------------------------------------------------------------------------

def _text(value: Any, where: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str) or len(value) > MAX_TEXT or any(ord(c) < 32 for c in value):
        raise Refused(f"{where} must be one line of at most {MAX_TEXT} characters")
    return value.replace("$", r"\$")  # drawn as written: never matplotlib's math mode


def _keys(item: Any, allowed: set[str], where: str) -> dict[str, Any]:
    if not isinstance(item, dict):
        raise Refused(f"{where} must be an object")
    unknown = sorted(set(item) - allowed)
    if unknown:
        raise Refused(f"{where} has unknown key(s) {', '.join(unknown)}; the keys are {', '.join(sorted(allowed))}")
    return item


def figure_files(spec: Any) -> list[str]:
    """The file names a declaration asks for (valid names only): what the renderer may write."""
    figures = spec.get("figures") if isinstance(spec, dict) else None
    names = [f.get("file") for f in figures or [] if isinstance(f, dict)] if isinstance(figures, list) else []
    return [n for n in names if isinstance(n, str) and FILE_NAME.fullmatch(n)][:MAX_FIGURES]


def validate(spec: Any, runs: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """The figures of a declaration, each checked: names, runs, quantities, stated values and
    the numbers of its labels. Raises Refused on the first problem."""
    spec = _keys(spec, {"figures"}, SPEC)
    figures = spec.get("figures")
    if not isinstance(figures, list) or not 1 <= len(figures) <= MAX_FIGURES:
        raise Refused(f"{SPEC}: 'figures' must be a list of 1 to {MAX_FIGURES} figures")
    seen: set[str] = set()
    out = []
    for i, raw in enumerate(figures):
        fig = dict(_keys(raw, _FIGURE_KEYS, f"figure {i + 1}"))
        name = fig.get("file")
        if not isinstance(name, str) or not FILE_NAME.fullmatch(name) or name in seen:
            raise Refused(f"figure {i + 1}: 'file' must be a new plain name ending in .png or .pdf (got {name!r})")
        seen.add(name)
        fig["runs"] = _runs(fig.get("runs"), runs, name)
        fig["labels"] = {r: _text(t, f"{name}: the label of {r}") for r, t in _dict(fig.get("labels"), name).items()}
        panels = fig.get("panels")
        if not isinstance(panels, list) or not 1 <= len(panels) <= MAX_PANELS:
            raise Refused(f"{name}: 'panels' must be a list of 1 to {MAX_PANELS} panels")
        fig["panels"] = [_panel(p, runs, fig["runs"], f"{name}, panel {j + 1}") for j, p in enumerate(panels)]
        fig["title"] = _text(fig.get("title"), f"{name}: the title")
        fig["checked"] = check_values(_dict(fig.get("values"), name), runs, name)
        check_numbers(fig, runs)
        out.append(fig)
    return out


def _dict(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise Refused(f"{where}: 'labels' and 'values' must be objects keyed by run name")
    return value


def _runs(value: Any, runs: dict[str, dict[str, Any]], where: str) -> list[str]:
    if value is None:
        return list(runs)
    if not isinstance(value, list) or not value or not all(isinstance(r, str) for r in value):
        raise Refused(f"{where}: 'runs' must be a list of run names such as \"run_0\"")
    missing = [r for r in value if r not in runs]
    if missing:
        raise Refused(f"{where}: no results for {', '.join(missing[:5])} (runs with results: {', '.join(runs)})")
    return list(dict.fromkeys(value))


def _panel(raw: Any, runs: dict[str, dict[str, Any]], names: list[str], where: str) -> dict[str, Any]:
    panel = dict(_keys(raw, _PANEL_KEYS, where))
    if panel.get("kind") not in KINDS:
        raise Refused(f"{where}: 'kind' must be one of {', '.join(KINDS)}")
    axes = ("y",) if panel["kind"] == "bar" else ("x", "y")
    for axis in axes:
        q = panel.get(axis)
        if not isinstance(q, str) or not any(q in (runs[r].get(s) or {}) for r in names for s in ("metrics", "config")):
            raise Refused(f"{where}: '{axis}' must name a metric or numeric setting the runs recorded "
                          f"(got {q!r}; e.g. {', '.join(sorted(runs[names[0]].get('metrics') or {})[:6])})")
    for scale in ("xscale", "yscale"):
        if panel.get(scale, "linear") not in ("linear", "log"):
            raise Refused(f"{where}: '{scale}' must be \"linear\" or \"log\"")
    for key in ("title", "xlabel", "ylabel"):
        panel[key] = _text(panel.get(key), f"{where}: '{key}'")
    return panel


def check_values(values: dict[str, Any], runs: dict[str, dict[str, Any]], where: str) -> int:
    """Every value the declaration states equals the run's result; the count checked."""
    checked = 0
    for run, stated in values.items():
        if run not in runs or not isinstance(stated, dict):
            raise Refused(f"{where}: 'values' names {run!r}, which has no results")
        for name, value in stated.items():
            actual = quantity(runs[run], name)
            if not number(value) or actual is None or not math.isclose(value, actual, rel_tol=1e-4, abs_tol=1e-12):
                shown = "nothing" if actual is None else f"{actual:.6g}"
                raise Refused(f"{where}: {run}'s {name} is stated as {value!r}, but its result is {shown}: "
                              f"the renderer draws the results, declare no value it does not have")
            checked += 1
    return checked


def check_numbers(fig: dict[str, Any], runs: dict[str, dict[str, Any]]) -> None:
    """Every number in the figure's words is a setting of a plotted run, or part of a name."""
    settings = [v for r in fig["runs"] for v in (runs[r].get("config") or {}).values()]
    names = {str(v) for v in settings if isinstance(v, str)}
    names |= {q for p in fig["panels"] for q in (p.get("x"), p.get("y")) if q} | set(runs)
    values = [float(v) for v in settings if number(v)]
    texts = [fig["title"], *fig["labels"].values(), *(p[k] for p in fig["panels"] for k in ("title", "xlabel", "ylabel"))]
    for text in texts:
        stripped = text
        for name in sorted(names, key=len, reverse=True):
            stripped = re.sub(rf"(?<![\w.]){re.escape(name)}(?![\w])", " ", stripped)
        stripped = re.sub(r"\b[LH]\d\b", " ", stripped)  # the names L0, L1, L2 and H1 ... H9
        for match in _NUMBER.finditer(stripped):
            written = match.group(0)
            if not any(_equal_as_written(written, v) for v in values):
                raise Refused(f"{fig['file']}: the text {text!r} says {written}, which is no setting of the plotted "
                              "runs: the renderer writes the values itself; keep numbers out of titles and labels")


def _equal_as_written(written: str, value: float) -> bool:
    """`written` equals `value` to half a unit of its last written digit."""
    mantissa, _, exponent = written.lower().partition("e")
    decimals = len(mantissa.split(".")[1]) if "." in mantissa else 0
    unit = 10.0 ** (-decimals + (int(exponent) if exponent else 0))
    return abs(float(written) - value) <= unit / 2 * (1 + 1e-9)
