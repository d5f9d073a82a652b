"""Figures from every run_*/final_info.json in the current directory.

metrics.png:  one bar chart per headline metric of template.toml, one bar per run
              (run_0 is labelled "baseline"), titled with the metric's better direction.
frontier.png: sparsity (L0, log scale) against reconstruction (explained variance), one point
              per run: up and to the left is better.

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


def plot_metrics(runs: dict[str, dict], specs: list[dict], out: Path) -> None:
    cols = min(3, len(specs))
    rows = math.ceil(len(specs) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.4 * rows), squeeze=False)
    labels = list(runs)
    colors = ["0.55" if lab == "baseline" else "C0" for lab in labels]
    for ax, spec in zip(axes.flat, specs, strict=False):
        values = [value(runs[lab], spec["name"]) for lab in labels]
        ax.bar(range(len(labels)), [0 if math.isnan(v) else v for v in values], color=colors)
        for x, v in enumerate(values):
            ax.annotate("n/a" if math.isnan(v) else f"{v:.3g}", (x, 0 if math.isnan(v) else v),
                        ha="center", va="bottom", fontsize=8)
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
    fig.tight_layout()
    fig.savefig(out, dpi=150)
    plt.close(fig)


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
