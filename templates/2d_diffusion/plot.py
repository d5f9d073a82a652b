"""Declares the figures of the paper; the project's renderer draws them from the results.

This script does not draw: it writes figures.json, which says what to draw (quantities, runs,
labels), and the loop then runs the trusted renderer (`harness.figures`), which draws every
figure from run_*/final_info.json itself, with the 95% interval recorded over each run's seeds
as error bars. The renderer refuses a declaration that states a value no run has, or that puts
a number in a title or label that is no setting of a plotted run. Only its figures may appear
in the paper.

metrics.png:  one bar chart per headline metric of template.toml (KL, energy distance,
              denoising loss, each the mean over the datasets), one bar per run (run_0 is
              labelled "baseline"), titled with the metric's better direction.
datasets.png: the KL estimate on each dataset, one bar per run.

Panels: {"kind": "bar", "y": metric}, {"kind": "scatter" or "line", "x": q, "y": q} where q is
a metric or a numeric setting of the runs' config; optional "title", "xlabel", "ylabel",
"xscale"/"yscale" ("linear" or "log"). Per figure: "file", "panels", optional "runs", "labels"
({run: text}), "title". A figure this script draws itself with matplotlib (list its file in
FIGURES) stays in the run and is shown in the report as drawn by LLM-edited code, never in the
paper.

Run: python plot.py   (typed by hand it also runs the renderer; the loop runs the renderer
itself, sandboxed, after this script, with HARNESS_FIGURES=declare)
"""

import json
import os
import re
import tomllib
from pathlib import Path

FIGURES: list[str] = []  # files this script draws itself: kept out of the paper
FALLBACK_METRICS = ["kl_mean", "energy_mean", "eval_loss_mean"]
DATASETS = ["moons", "circle", "line", "spiral"]


def run_infos(root: Path) -> dict[str, dict]:
    """{"run_<i>": final_info} for the runs with results, in run order."""
    found = []
    for path in root.glob("run_*/final_info.json"):
        match = re.fullmatch(r"run_(\d+)", path.parent.name)
        if match:
            found.append((int(match.group(1)), path.parent.name, json.loads(path.read_text(encoding="utf-8"))))
    return {name: info for _, name, info in sorted(found)}


def headline_metrics(root: Path) -> list[str]:
    manifest = root / "template.toml"
    if manifest.exists():
        declared = tomllib.loads(manifest.read_text(encoding="utf-8")).get("metrics", [])
        chosen = [m["name"] for m in declared if m.get("headline")]
        if chosen:
            return chosen
    return FALLBACK_METRICS


def run_label(name: str, config: dict) -> str:
    """How a run is named in the figures."""
    return "baseline" if name == "run_0" else name


def declare(root: Path) -> dict:
    runs = run_infos(root)
    labels = {name: run_label(name, info.get("config", {})) for name, info in runs.items()}
    return {"figures": [
        {"file": "metrics.png", "runs": list(runs), "labels": labels,
         "panels": [{"kind": "bar", "y": name} for name in headline_metrics(root)]},
        {"file": "datasets.png", "runs": list(runs), "labels": labels,
         "title": "KL(real || generated) per dataset (nats, lower is better)",
         "panels": [{"kind": "bar", "y": f"kl_{d}", "title": d} for d in DATASETS]},
    ]}


def main() -> None:
    root = Path.cwd()
    spec = declare(root)
    if not spec["figures"][0]["runs"]:
        raise SystemExit("no run_*/final_info.json in this directory: run experiment.py first")
    (root / "figures.json").write_text(json.dumps(spec, indent=2) + "\n", encoding="utf-8")
    labels = spec["figures"][0]["labels"]
    print(f"declared {', '.join(f['file'] for f in spec['figures'])} in figures.json for "
          f"{len(labels)} runs: {', '.join(labels.values())}")
    if os.environ.get("HARNESS_FIGURES") != "declare":  # typed by hand: draw them too
        from harness.figures import main as draw

        raise SystemExit(draw([str(root), "--manifest", str(root / "template.toml")]))


if __name__ == "__main__":
    main()
