"""The trusted figure renderer: draws what `figures.json` declares from the runs' results.

A template's `plot.py` (which the LLM may edit) does not draw the paper's figures: it writes
`figures.json`, a declaration of what to draw: which quantities, for which runs, with which
labels. This module, which never imports LLM-edited code, reads that declaration and every
`run_<i>/final_info.json`, draws each figure with values it reads from the results itself, and
refuses a declaration it cannot ground (`harness.figure_spec`):

- a quantity is a metric of `final_info.json["metrics"]` or a numeric setting of its `config`;
- a value the declaration states (`values: {run: {quantity: number}}`) must equal the result
  (relative 1e-4): a stated value that differs is refused, naming the run, the quantity, the
  value stated and the result;
- every number in a title, axis label or run label must be a setting of a plotted run (within
  half a unit of its last written digit), or part of a name (run, metric, model): no other
  number can reach the picture except those the renderer writes from the results;
- error bars are the 95% intervals the harness recorded over a run's seeds.

    figures.json = {"figures": [
      {"file": "metrics.png", "title": "...", "runs": ["run_0", "run_1"],   # default: all runs
       "labels": {"run_1": "run_1: alpha=0.1"},
       "values": {"run_1": {"explained_variance": 0.78}},                    # optional, checked
       "panels": [{"kind": "bar", "y": "explained_variance"},
                  {"kind": "scatter", "x": "l0", "y": "explained_variance", "xscale": "log"},
                  {"kind": "line", "x": "l1_penalty", "y": "l0", "title": "...",
                   "xlabel": "...", "ylabel": "..."}]}]}

    python -m harness.figures RUN_DIR [--spec figures.json] [--manifest template.toml]

prints one JSON line: {"rendered": [files], "values_checked": n, "problems": [...]}; exit 0
when every figure was drawn, 2 when the declaration was refused (nothing is drawn), 1 on bad
arguments.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

from harness.figure_spec import (
    MAX_SPEC_BYTES,
    SPEC,
    Refused,
    interval,
    load_metrics,
    load_runs,
    quantity,
    read_json,
    validate,
)

# --- drawing -------------------------------------------------------------------------------------

def render(fig: dict[str, Any], runs: dict[str, dict[str, Any]], metrics: dict[str, dict[str, Any]], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"text.usetex": False})
    panels = fig["panels"]
    cols = 2 if len(panels) == 4 else min(3, len(panels))  # four panels: a 2x2 grid, no empty slots
    rows = math.ceil(len(panels) / cols)
    figure, axes = plt.subplots(rows, cols, figsize=(4.4 * cols, 3.6 * rows), squeeze=False)
    for ax, panel in zip(axes.flat, panels, strict=False):
        draw = _bar if panel["kind"] == "bar" else _points
        draw(ax, panel, fig, runs, metrics)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    if fig["title"]:
        figure.suptitle(fig["title"], fontsize=10)
    figure.tight_layout()
    figure.savefig(out, dpi=150)
    plt.close(figure)


def _label(run: str, fig: dict[str, Any]) -> str:
    return fig["labels"].get(run) or ("baseline" if run == "run_0" else run)


def _describe(name: str, metrics: dict[str, dict[str, Any]]) -> str:
    spec = metrics.get(name)
    if not spec:
        return name
    better = {"higher": " (higher is better)", "lower": " (lower is better)"}.get(str(spec.get("direction")), "")
    return f"{spec.get('label', name)}{better}"


def _format(value: float, name: str, metrics: dict[str, dict[str, Any]]) -> str:
    fmt = str((metrics.get(name) or {}).get("format") or ".3g")
    try:
        return format(int(round(value)) if fmt.endswith("d") else value, fmt)
    except ValueError:
        return f"{value:.3g}"


def _seeds_note(ns: list[int], single: bool) -> str:
    count = str(ns[0]) if min(ns) == max(ns) else f"{min(ns)}-{max(ns)}"
    return f"bars: 95% CI of the mean, n = {count} seeds" + ("; no bar: 1 seed" if single else "")


def _log_axis(ax: Any, axis: str) -> None:
    """A log axis with plain-number ticks: run values often span less than a decade."""
    from matplotlib.ticker import MaxNLocator, NullLocator, ScalarFormatter

    getattr(ax, f"set_{axis}scale")("log")
    target = ax.xaxis if axis == "x" else ax.yaxis
    target.set_major_locator(MaxNLocator(nbins=6))
    target.set_major_formatter(ScalarFormatter())
    target.set_minor_locator(NullLocator())


def _bar(ax: Any, panel: dict[str, Any], fig: dict[str, Any], runs: dict[str, dict[str, Any]],
         metrics: dict[str, dict[str, Any]]) -> None:
    name, names = panel["y"], fig["runs"]
    values = [quantity(runs[r], name) for r in names]
    ax.bar(range(len(names)), [v or 0.0 for v in values],
           color=["0.55" if r == "run_0" else "C0" for r in names])
    ns, single = [], False
    for x, (run, v) in enumerate(zip(names, values, strict=True)):
        ci = interval(runs[run], name) if v is not None else None
        if ci is not None:
            ax.errorbar([x], [v], yerr=[[max(0.0, v - ci[0])], [max(0.0, ci[1] - v)]], fmt="none",
                        ecolor="0.25", elinewidth=1, capsize=3, zorder=2)
            ns.append(ci[2])
        single = single or ci is None
        top = 0.0 if v is None else v if ci is None else max(v, ci[1])
        ax.annotate("n/a" if v is None else _format(v, name, metrics), (x, top), textcoords="offset points",
                    xytext=(0, 2), ha="center", va="bottom", fontsize=8)
    ax.set_title(panel["title"] or _describe(name, metrics), fontsize=9)
    ax.set_ylabel(panel["ylabel"] or (f"mean over seeds\n{_seeds_note(ns, single)}" if ns else ""), fontsize=7)
    ax.set_xticks(range(len(names)), [_label(r, fig) for r in names], rotation=45, ha="right", fontsize=8)
    if panel.get("yscale") == "log":
        _log_axis(ax, "y")


def _points(ax: Any, panel: dict[str, Any], fig: dict[str, Any], runs: dict[str, dict[str, Any]],
            metrics: dict[str, dict[str, Any]]) -> None:
    xq, yq = panel["x"], panel["y"]
    points = [(r, quantity(runs[r], xq), quantity(runs[r], yq)) for r in fig["runs"]]
    drawn = [(r, x, y) for r, x, y in points if x is not None and y is not None
             and (panel.get("xscale") != "log" or x > 0) and (panel.get("yscale") != "log" or y > 0)]
    if panel["kind"] == "line":
        drawn.sort(key=lambda p: p[1])
        ax.plot([p[1] for p in drawn], [p[2] for p in drawn], color="0.5", lw=1, zorder=1)
    ns = []
    for i, (run, x, y) in enumerate(drawn):
        base = run == "run_0"
        ax.scatter([x], [y], s=55, marker="s" if base else "o", color="0.4" if base else f"C{i % 10}",
                   label=_label(run, fig), zorder=3)
        xci, yci = interval(runs[run], xq), interval(runs[run], yq)
        if xci or yci:
            ax.errorbar([x], [y], xerr=None if xci is None else [[max(0.0, x - xci[0])], [max(0.0, xci[1] - x)]],
                        yerr=None if yci is None else [[max(0.0, y - yci[0])], [max(0.0, yci[1] - y)]],
                        fmt="none", ecolor="0.25", elinewidth=1, capsize=3, zorder=2)
            ns += [ci[2] for ci in (xci, yci) if ci]
    if drawn:
        ax.legend(fontsize=7, loc="best")
    for axis, scale in (("x", panel.get("xscale")), ("y", panel.get("yscale"))):
        if scale == "log":
            _log_axis(ax, axis)
    ax.margins(x=0.15, y=0.1)
    ax.set_xlabel(panel["xlabel"] or _describe(xq, metrics), fontsize=8)
    ax.set_ylabel(panel["ylabel"] or _describe(yq, metrics), fontsize=8)
    ax.set_title(panel["title"], fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    if ns:
        single = len(ns) < len(drawn)
        ax.text(0.01, 0.01, _seeds_note(ns, single), transform=ax.transAxes, fontsize=7, color="0.3", va="bottom")


# --- entry point ---------------------------------------------------------------------------------

def run(root: Path, spec_path: Path, manifest: Path | None) -> dict[str, Any]:
    """Validate the declaration and draw every figure: the receipt (rendered, values_checked,
    problems). Nothing is drawn when the declaration is refused."""
    runs = load_runs(root)
    try:
        if not spec_path.is_file() or spec_path.is_symlink():
            raise Refused(f"plot.py wrote no {SPEC}: it must declare the figures to draw (see plot.py's docstring)")
        try:
            spec = read_json(spec_path, MAX_SPEC_BYTES)
        except ValueError as exc:
            raise Refused(f"{SPEC} is not valid JSON: {exc}") from exc
        if not runs:
            raise Refused("no run_*/final_info.json holds results: there is nothing to draw")
        figures = validate(spec, runs)
    except Refused as exc:
        return {"rendered": [], "values_checked": 0, "problems": [str(exc)]}
    metrics = load_metrics(manifest)
    for fig in figures:
        render(fig, runs, metrics, root / fig["file"])
    return {"rendered": [f["file"] for f in figures], "values_checked": sum(f["checked"] for f in figures),
            "problems": []}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.figures", description=__doc__.split("\n")[0])
    parser.add_argument("root", type=Path, help="the run directory (holds run_*/final_info.json)")
    parser.add_argument("--spec", default=SPEC, help="the declaration, relative to root")
    parser.add_argument("--manifest", type=Path, help="template.toml: metric labels, directions, formats")
    args = parser.parse_args(argv)
    receipt = run(args.root, args.root / args.spec, args.manifest)
    print(json.dumps(receipt), flush=True)
    return 2 if receipt["problems"] else 0


if __name__ == "__main__":
    sys.exit(main())
