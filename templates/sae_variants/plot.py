"""Figures from every run_*/final_info.json in the current directory.

metrics.png:  one bar chart per headline metric of template.toml, one bar per run
              (run_0 is labelled "baseline"), titled with the metric's better direction.
frontier.png: sparsity (L0, log scale) against reconstruction (explained variance), one point
              per run: up and to the left is better.

Runs trained with several seeds (a `seeds` section in final_info.json) get error bars: the 95%
confidence interval of the mean over their seeds (`seeds.ci95`, or `harness.seeds.interval` of
`seeds.values`); a run with one seed, or without a seeds section, is drawn as before.

Run: python plot.py
"""

import json
import math
import re
import tomllib
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display on a server
import matplotlib.pyplot as plt  # noqa: E402

import harness.seeds  # noqa: E402  (the 95% interval of a mean, as the harness records it)

FALLBACK_METRICS = [
    {"name": "explained_variance", "label": "Explained variance", "direction": "higher"},
    {"name": "l0", "label": "L0", "direction": "lower"},
    {"name": "ce_loss_score", "label": "CE-loss score", "direction": "higher"},
    {"name": "dead_frac", "label": "Dead latent fraction", "direction": "lower"},
]


def load_runs(root: Path) -> dict[str, dict]:
    """{label: metrics} for run_<i> folders with a final_info.json, in run order."""
    runs = []
    for path in root.glob("run_*/final_info.json"):
        match = re.fullmatch(r"run_(\d+)", path.parent.name)
        if match:
            runs.append((int(match.group(1)), path))
    out = {}
    for i, path in sorted(runs):
        label = "baseline" if i == 0 else f"run_{i}"
        out[label] = json.loads(path.read_text(encoding="utf-8")).get("metrics", {})
    return out


def headline_metrics(root: Path) -> list[dict]:
    manifest = root / "template.toml"
    if manifest.exists():
        declared = tomllib.loads(manifest.read_text(encoding="utf-8")).get("metrics", [])
        chosen = [m for m in declared if m.get("headline")]
        if chosen:
            return chosen
    return FALLBACK_METRICS


def value(metrics: dict, name: str) -> float:
    v = metrics.get(name)
    return float(v) if isinstance(v, (int, float)) and math.isfinite(v) else math.nan


def load_seeds(root: Path) -> dict[int, dict]:
    """{run index: the `seeds` section of run_<i>/final_info.json}, for runs that have one."""
    out = {}
    for path in root.glob("run_*/final_info.json"):
        match = re.fullmatch(r"run_(\d+)", path.parent.name)
        seeds = json.loads(path.read_text(encoding="utf-8")).get("seeds") if match else None
        if isinstance(seeds, dict):
            out[int(match.group(1))] = seeds
    return out


def run_index(label: str) -> int | None:
    """The run a plot label names: 0 for "baseline", i for "run_i" or "run_i: ..."."""
    match = re.match(r"run_(\d+)", label)
    return 0 if label == "baseline" else int(match.group(1)) if match else None


def interval(seeds: dict | None, name: str) -> tuple[float, float, int] | None:
    """(low, high, n): the 95% interval of the mean of metric `name` over a run's seeds, or
    None with fewer than 2 independent seeds (then there is no interval to draw)."""
    if not seeds or seeds.get("independent") is False:
        return None
    values = [v for v in (seeds.get("values") or {}).get(name) or [] if isinstance(v, (int, float))]
    n = len(values)
    recorded = (seeds.get("ci95") or {}).get(name)
    if n >= 2 and isinstance(recorded, list) and len(recorded) == 2 and None not in recorded:
        return float(recorded[0]), float(recorded[1]), n
    if n < 2 or not all(math.isfinite(v) for v in values):
        return None
    _, _, (low, high) = harness.seeds.interval(values)  # the harness's own t interval
    return low, high, n


def seeds_note(ns: list[int], single: bool = False, sep: str = ", ") -> str:
    """What the error bars are: `bars: 95% CI of the mean, n = 3 seeds`; `single`: some runs
    are drawn without a bar (one seed)."""
    if not ns:
        return ""
    count = str(ns[0]) if min(ns) == max(ns) else f"{min(ns)}-{max(ns)}"
    return f"bars: 95% CI of the mean{sep}n = {count} seeds" + ("; no bar: 1 seed" if single else "")


def error_bars(ax, points: list[tuple[float, float, tuple | None, tuple | None]], log_x: bool = False) -> list[int]:
    """Draw the 95% intervals of (x, y, x interval, y interval) points; the seeds counts drawn."""
    ns = []
    for x, y, xci, yci in points:
        if xci is None and yci is None:
            continue
        xerr = None if xci is None else [[max(0.0, x - xci[0]) if not log_x else max(0.0, min(x - xci[0], x * 0.999))],
                                         [max(0.0, xci[1] - x)]]
        yerr = None if yci is None else [[max(0.0, y - yci[0])], [max(0.0, yci[1] - y)]]
        ax.errorbar([x], [y], xerr=xerr, yerr=yerr, fmt="none", ecolor="0.25", elinewidth=1, capsize=3, zorder=2)
        ns += [ci[2] for ci in (xci, yci) if ci is not None]
    return ns


def plot_metrics(runs: dict[str, dict], specs: list[dict], out: Path) -> None:
    cols = min(3, len(specs))
    rows = math.ceil(len(specs) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.4 * rows), squeeze=False)
    labels = list(runs)
    colors = ["0.55" if lab == "baseline" else "C0" for lab in labels]
    seeds = load_seeds(out.parent)  # the figure is written into the run directory
    for ax, spec in zip(axes.flat, specs, strict=False):
        values = [value(runs[lab], spec["name"]) for lab in labels]
        ax.bar(range(len(labels)), [0 if math.isnan(v) else v for v in values], color=colors)
        cis = [None if math.isnan(v) else interval(seeds.get(run_index(lab)), spec["name"])
               for lab, v in zip(labels, values, strict=True)]
        ns = error_bars(ax, [(x, v, None, ci) for x, (v, ci) in enumerate(zip(values, cis, strict=True))])
        if ns:
            ax.set_ylabel(f"mean over seeds; {seeds_note(ns, None in cis, sep=chr(10))}", fontsize=7)
        for x, v in enumerate(values):
            top = v if cis[x] is None else max(v, cis[x][1])  # the label sits above the error bar
            ax.annotate("n/a" if math.isnan(v) else f"{v:.3g}", (x, 0 if math.isnan(v) else top),
                        textcoords="offset points", xytext=(0, 2), ha="center", va="bottom", fontsize=8)
        arrow = "higher is better" if spec.get("direction") == "higher" else "lower is better"
        ax.set_title(f"{spec.get('label', spec['name'])}\n({arrow})", fontsize=10)
        ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right", fontsize=8)
    for ax in list(axes.flat)[len(specs):]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(out, dpi=150)
    plt.close(fig)


def plot_frontier(runs: dict[str, dict], out: Path) -> None:
    fig, ax = plt.subplots(figsize=(5.5, 4.2))
    for label, metrics in runs.items():
        l0, ev = value(metrics, "l0"), value(metrics, "explained_variance")
        if math.isnan(l0) or math.isnan(ev) or l0 <= 0:
            continue
        baseline = label == "baseline"
        ax.scatter([l0], [ev], s=60, marker="s" if baseline else "o",
                   color="0.4" if baseline else "C0", zorder=3)
        ax.annotate(label, (l0, ev), textcoords="offset points", xytext=(5, 4), fontsize=8)
    ax.set_xscale("log")
    ax.margins(x=0.15, y=0.1)  # room for the labels of the extreme points
    ax.set_xlabel("L0: active latents per token (log scale, lower is sparser)")
    ax.set_ylabel("Explained variance (higher is better)")
    ax.set_title("Sparsity vs reconstruction")
    ax.grid(True, which="both", alpha=0.3)
    frontier_intervals(ax, runs, load_seeds(out.parent))
    fig.tight_layout()
    fig.savefig(out, dpi=150)
    plt.close(fig)


def frontier_intervals(ax, runs: dict[str, dict], seeds: dict[int, dict]) -> None:
    """Error bars on the frontier: the 95% intervals of L0 (x) and explained variance (y)."""
    points = []
    for label, metrics in runs.items():
        l0, ev = value(metrics, "l0"), value(metrics, "explained_variance")
        if not (math.isnan(l0) or math.isnan(ev) or l0 <= 0):
            run_seeds = seeds.get(run_index(label))
            points.append((l0, ev, interval(run_seeds, "l0"), interval(run_seeds, "explained_variance")))
    ns = error_bars(ax, points, log_x=True)
    if ns:
        single = any(p[2] is None and p[3] is None for p in points)
        ax.text(0.01, 0.01, seeds_note(ns, single), transform=ax.transAxes, fontsize=7, color="0.3", va="bottom")


def main() -> None:
    root = Path.cwd()
    style = "seaborn-v0_8-whitegrid"
    if style in plt.style.available:
        plt.style.use(style)
    runs = load_runs(root)
    if not runs:
        raise SystemExit("no run_*/final_info.json in this directory: run experiment.py first")
    plot_metrics(runs, headline_metrics(root), root / "metrics.png")
    plot_frontier(runs, root / "frontier.png")
    print(f"wrote metrics.png and frontier.png for {len(runs)} runs: {', '.join(runs)}")


if __name__ == "__main__":
    main()
