"""The sae_variants template's plot.py: error bars are the 95% interval of the mean over a run's
seeds, runs without seeds plot as before, and the reference session's plot edit keeps them."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from agent import stats
from agent.edits.apply import EditPolicy, apply_blocks
from agent.edits.parse import parse
from agent.llm.replay import load_recording

TEMPLATE = Path(__file__).parents[1] / "templates" / "sae_variants"
SESSION = TEMPLATE / "ideas" / "orthogonal_sae.session.jsonl"
HEADLINE = ("explained_variance", "l0", "ce_loss_score", "kl_div_score", "dead_frac")


def _module(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"plot_{abs(hash(path))}", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def plot() -> ModuleType:
    return _module(TEMPLATE / "plot.py")


def _seeded(values: dict[str, list[float]], ci95: bool = True, independent: bool = True) -> dict[str, Any]:
    def ci(v: list[float]) -> list[float] | None:
        found = stats.summarize(v).ci
        return list(found) if found else None
    seeds: dict[str, Any] = {"requested": [0, 1, 2], "succeeded": list(range(len(next(iter(values.values()))))),
                             "n": len(next(iter(values.values()))), "independent": independent, "values": values}
    if ci95:
        seeds["ci95"] = {k: ci(v) for k, v in values.items()}
    return {"metrics": {k: sum(v) / len(v) for k, v in values.items()}, "seeds": seeds}


def _runs(root: Path, infos: dict[int, dict[str, Any]]) -> Path:
    for i, info in infos.items():
        (root / f"run_{i}").mkdir(parents=True, exist_ok=True)
        (root / f"run_{i}" / "final_info.json").write_text(json.dumps(info))
    shutil.copy(TEMPLATE / "template.toml", root / "template.toml")
    return root


def _three_seeds(shift: float) -> dict[str, list[float]]:
    return {"explained_variance": [0.43 + shift, 0.44 + shift, 0.425 + shift], "l0": [30.0, 31.5, 29.0],
            "ce_loss_score": [0.9, 0.91, 0.905], "kl_div_score": [0.8, 0.82, 0.81], "dead_frac": [0.04, 0.05, 0.045]}


@pytest.mark.parametrize("values", [[0.41, 0.43], [0.41, 0.43, 0.44], [1.0, 2.0, 2.5, 3.0, 7.0]])
def test_the_bar_is_the_t_interval_of_the_mean_computed_from_the_seeds(plot: ModuleType, values: list[float]) -> None:
    low, high, n = plot.interval(_seeded({"l0": values}, ci95=False)["seeds"], "l0")
    expected = stats.summarize(values).ci
    assert n == len(values) and expected is not None
    assert low == pytest.approx(expected[0], rel=2e-3) and high == pytest.approx(expected[1], rel=2e-3)


def test_the_recorded_interval_is_used_and_one_seed_has_no_bar(plot: ModuleType) -> None:
    seeds = _seeded({"l0": [1.0, 2.0, 3.0]})["seeds"]
    seeds["ci95"]["l0"] = [0.5, 3.5]
    assert plot.interval(seeds, "l0") == (0.5, 3.5, 3)
    assert plot.interval(_seeded({"l0": [1.0]})["seeds"], "l0") is None
    assert plot.interval(_seeded({"l0": [1.0, 1.0, 1.0]}, independent=False)["seeds"], "l0") is None
    assert plot.interval(None, "l0") is None
    assert plot.run_index("baseline") == 0 and plot.run_index("run_3: alpha=0.1, fixed") == 3
    assert plot.seeds_note([3, 3]) == "bars: 95% CI of the mean, n = 3 seeds"
    assert plot.seeds_note([2, 3], single=True).endswith("n = 2-3 seeds; no bar: 1 seed")


def _figures(plot: ModuleType, root: Path, monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Draw metrics.png and frontier.png and keep the figures instead of closing them."""
    kept: list[Any] = []
    monkeypatch.setattr(plot.plt, "close", kept.append)
    runs = plot.load_runs(root)
    plot.plot_metrics(runs, plot.headline_metrics(root), root / "metrics.png")
    plot.plot_frontier(runs, root / "frontier.png")
    return kept


def _error_bars(ax: Any) -> int:
    from matplotlib.container import ErrorbarContainer

    return sum(isinstance(c, ErrorbarContainer) for c in ax.containers)


def test_seeded_runs_get_error_bars_and_say_what_they_are(plot: ModuleType, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    root = _runs(tmp_path, {0: _seeded(_three_seeds(0.0)), 1: _seeded(_three_seeds(-0.03)),
                            2: {"metrics": {k: v[0] for k, v in _three_seeds(0.01).items()}}})
    metrics, frontier = _figures(plot, root, monkeypatch)
    ev = metrics.axes[0]
    assert _error_bars(ev) == 2  # baseline and run 1; run 2 has one seed
    assert "95% CI of the mean" in ev.get_ylabel() and "n = 3 seeds; no bar: 1 seed" in ev.get_ylabel()
    assert _error_bars(frontier.axes[0]) == 2
    assert any("95% CI" in t.get_text() for t in frontier.axes[0].texts)
    assert (root / "metrics.png").stat().st_size > 10_000 and (root / "frontier.png").stat().st_size > 10_000


def test_runs_without_seeds_plot_as_before(plot: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = _runs(tmp_path, {i: {"metrics": {k: v[0] for k, v in _three_seeds(0.01 * i).items()}} for i in range(3)})
    metrics, frontier = _figures(plot, root, monkeypatch)
    assert all(_error_bars(ax) == 0 and ax.get_ylabel() == "" for ax in metrics.axes)
    assert _error_bars(frontier.axes[0]) == 0 and frontier.axes[0].texts[-1].get_text() == "run_2"


def test_the_reference_sessions_plot_edit_applies_and_keeps_the_error_bars(tmp_path: Path) -> None:
    root = tmp_path / "run"
    shutil.copytree(TEMPLATE, root, ignore=shutil.ignore_patterns("ideas", "__pycache__", "latex"))
    policy = EditPolicy(root=root, editable=frozenset({"plot.py"}))
    for reply in load_recording(SESSION).replies:
        if reply.stage == "plot" and reply.prompt_kind == "plot.edit":
            report = apply_blocks(parse(reply.text).blocks, policy)
            assert report.clean and all(a.kind == "exact" for a in report.applied)
    _runs(root, {0: _seeded(_three_seeds(0.0)), 1: _seeded(_three_seeds(-0.03))})
    proc = subprocess.run([sys.executable, "plot.py"], cwd=root, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    edited = _module(root / "plot.py")
    assert "frontier_intervals(ax, runs, load_seeds(out.parent))" in (root / "plot.py").read_text()
    assert edited.interval(_seeded(_three_seeds(0.0))["seeds"], "l0") is not None
    assert all((root / f).stat().st_size > 10_000 for f in ("metrics.png", "frontier.png"))
