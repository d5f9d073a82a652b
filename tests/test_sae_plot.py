"""The sae_variants template's plot.py declares its figures for the trusted renderer: typed by
hand it draws them too; the reference session's plot edit applies exactly and its declaration
(labels and titles read from the runs' configuration) is accepted and drawn."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from agent import stats
from agent.edits.apply import EditPolicy, apply_blocks
from agent.edits.parse import parse
from agent.llm.replay import load_recording
from harness import figures

TEMPLATE = Path(__file__).parents[1] / "templates" / "sae_variants"
SESSION = TEMPLATE / "ideas" / "orthogonal_sae.session.jsonl"
HEADLINE = ["explained_variance", "l0", "ce_loss_score", "kl_div_score", "dead_frac"]
GEOMETRY = ["decoder_mean_abs_cos", "decoder_max_abs_cos", "condition_number_mean"]


def _info(shift: float, config: dict[str, Any]) -> dict[str, Any]:
    values = {"explained_variance": [0.43 + shift, 0.44 + shift, 0.425 + shift], "l0": [30.0, 31.5, 29.0],
              "ce_loss_score": [0.9, 0.91, 0.905], "kl_div_score": [0.8, 0.82, 0.81], "dead_frac": [0.04, 0.05, 0.045],
              "decoder_mean_abs_cos": [0.05, 0.06, 0.055], "decoder_max_abs_cos": [0.5, 0.6, 0.55],
              "condition_number_mean": [3.0, 3.5, 3.2]}
    return {"metrics": {k: sum(v) / len(v) for k, v in values.items()}, "config": config,
            "seeds": {"n": 3, "independent": True, "values": values,
                      "ci95": {k: list(stats.summarize(v).ci or ()) for k, v in values.items()}}}


def _runs(root: Path) -> None:
    base = {"model": "tiny-neox-shakespeare", "layer": 1, "dataset": "shakespeare", "preset": "tiny"}
    configs = [base, {**base, "ortho_penalty_max": 0.1, "alpha": 0.0, "ortho_warmup_frac": 0.1},
               {**base, "ortho_penalty_max": 0.1, "alpha": 0.1, "ortho_warmup_frac": 0.0},
               {**base, "ortho_penalty_max": 0.0, "alpha": 0.0}]
    for i, config in enumerate(configs):
        (root / f"run_{i}").mkdir(parents=True)
        (root / f"run_{i}" / "final_info.json").write_text(json.dumps(_info(-0.01 * i, config)))


def _declare(root: Path) -> dict[str, Any]:
    proc = subprocess.run([sys.executable, "plot.py"], cwd=root, capture_output=True, text=True, timeout=120,
                          env={"PATH": "/usr/bin:/bin", "HARNESS_FIGURES": "declare"})
    assert proc.returncode == 0, proc.stderr
    assert not list(root.glob("*.png")), "declaring draws nothing"
    return json.loads((root / "figures.json").read_text())


def test_the_template_declares_the_headline_bars_and_the_frontier(tmp_path: Path) -> None:
    shutil.copy(TEMPLATE / "plot.py", tmp_path)
    shutil.copy(TEMPLATE / "template.toml", tmp_path)
    _runs(tmp_path)
    spec = _declare(tmp_path)
    metrics, frontier = spec["figures"]
    assert metrics["file"] == "metrics.png" and [p["y"] for p in metrics["panels"]] == HEADLINE
    (panel,) = frontier["panels"]
    assert (panel["kind"], panel["x"], panel["y"], panel["xscale"]) == ("scatter", "l0", "explained_variance", "log")
    assert metrics["labels"]["run_0"] == "baseline" and "values" not in metrics
    receipt = figures.run(tmp_path, tmp_path / "figures.json", TEMPLATE / "template.toml")
    assert receipt == {"rendered": ["metrics.png", "frontier.png"], "values_checked": 0, "problems": []}


def test_the_reference_sessions_plot_edit_applies_and_its_figures_are_drawn(tmp_path: Path) -> None:
    root = tmp_path / "run"
    shutil.copytree(TEMPLATE, root, ignore=shutil.ignore_patterns("ideas", "__pycache__", "latex"))
    policy = EditPolicy(root=root, editable=frozenset({"plot.py"}))
    edits = [r for r in load_recording(SESSION).replies if r.stage == "plot" and r.prompt_kind == "plot.edit"]
    assert len(edits) == 1
    report = apply_blocks(parse(edits[0].text).blocks, policy)
    assert report.clean and all(a.kind == "exact" for a in report.applied)
    _runs(root)
    spec = _declare(root)
    assert [f["file"] for f in spec["figures"]] == ["metrics.png", "geometry.png", "frontier.png"]
    geometry = spec["figures"][1]
    assert [p["y"] for p in geometry["panels"]] == GEOMETRY
    assert geometry["labels"] == {"run_0": "baseline", "run_1": "run_1: \u03b1=0, warm-up",
                                  "run_2": "run_2: \u03b1=0.1, fixed", "run_3": "run_3: no penalty"}
    assert geometry["title"] == "tiny-neox-shakespeare, block 1, shakespeare (tiny preset)"
    receipt = figures.run(root, root / "figures.json", TEMPLATE / "template.toml")
    assert receipt["problems"] == [] and receipt["rendered"] == ["metrics.png", "geometry.png", "frontier.png"]
    assert all((root / f).stat().st_size > 10_000 for f in receipt["rendered"])
