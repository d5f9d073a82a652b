"""The trusted figure renderer (`harness.figures`): it draws what figures.json declares from the
runs' results, with the seeds' 95% intervals as error bars, and refuses a declaration that
states a value no run has, puts an unsupported number into its words, or names what does not
exist; nothing is drawn when it refuses."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from agent import stats
from harness import figure_spec, figures

TOML = Path(__file__).parents[1] / "templates" / "sae_variants" / "template.toml"


def _seeded(values: dict[str, list[float]], independent: bool = True) -> dict[str, Any]:
    ci = {k: list(stats.summarize(v).ci or ()) or None for k, v in values.items()}
    n = len(next(iter(values.values())))
    return {"metrics": {k: sum(v) / len(v) for k, v in values.items()},
            "seeds": {"n": n, "independent": independent, "values": values, "ci95": ci}}


def _runs(root: Path, infos: dict[int, dict[str, Any]], spec: dict[str, Any] | None = None) -> Path:
    for i, info in infos.items():
        (root / f"run_{i}").mkdir(parents=True, exist_ok=True)
        (root / f"run_{i}" / "final_info.json").write_text(json.dumps(info))
    if spec is not None:
        (root / "figures.json").write_text(json.dumps(spec))
    return root


INFOS = {0: {**_seeded({"explained_variance": [0.80, 0.81, 0.79], "l0": [30.0, 31.0, 29.0]}),
             "config": {"alpha": 0.0, "model": "gemma-3-270m", "layer": 6}},
         1: {**_seeded({"explained_variance": [0.70, 0.72, 0.71], "l0": [20.0, 21.0, 22.0]}),
             "config": {"alpha": 0.1, "model": "gemma-3-270m", "layer": 6}},
         2: {"metrics": {"explained_variance": 0.78, "l0": 25.0}, "config": {"alpha": 0.5, "layer": 6}}}


def _spec(**figure: Any) -> dict[str, Any]:
    base = {"file": "metrics.png", "panels": [{"kind": "bar", "y": "explained_variance"},
                                              {"kind": "scatter", "x": "l0", "y": "explained_variance",
                                               "xscale": "log"},
                                              {"kind": "line", "x": "alpha", "y": "l0"}]}
    return {"figures": [{**base, **figure}]}


def _draw(tmp_path: Path, spec: dict[str, Any]) -> dict[str, Any]:
    root = _runs(tmp_path, INFOS, spec)
    return figures.run(root, root / "figures.json", TOML)


def test_a_declaration_is_drawn_from_the_results_with_the_recorded_intervals(tmp_path: Path,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    import matplotlib.pyplot as plt
    from matplotlib.container import ErrorbarContainer

    kept: list[Any] = []
    monkeypatch.setattr(plt, "close", kept.append)
    spec = _spec(labels={"run_1": "run_1: alpha=0.1"}, title="gemma-3-270m, block 6",
                 values={"run_1": {"explained_variance": 0.71, "l0": 21.0}})
    receipt = _draw(tmp_path, spec)
    assert receipt == {"rendered": ["metrics.png"], "values_checked": 2, "problems": []}
    assert (tmp_path / "metrics.png").read_bytes().startswith(b"\x89PNG")
    (fig,) = kept
    bar, scatter, line = fig.axes
    heights = [p.get_height() for p in bar.patches]
    assert heights == pytest.approx([0.80, 0.71, 0.78])  # the results, not anything typed
    caps = [c for c in bar.containers if isinstance(c, ErrorbarContainer)]
    assert len(caps) == 2  # runs 0 and 1 have 3 seeds; run 2 has one: no bar
    segment = caps[1].lines[2][0].get_segments()[0]
    ci = INFOS[1]["seeds"]["ci95"]["explained_variance"]
    assert [segment[0][1], segment[1][1]] == pytest.approx(ci)
    assert "n = 3 seeds; no bar: 1 seed" in bar.get_ylabel()
    assert [t.get_text() for t in bar.texts] == ["0.800", "0.710", "0.780"]  # the template's format .3f
    assert bar.get_title() == "Explained variance (higher is better)"
    assert [t.get_text() for t in bar.get_xticklabels()] == ["baseline", "run_1: alpha=0.1", "run_2"]
    assert scatter.get_xscale() == "log" and len(scatter.collections) >= 3
    assert list(line.lines[0].get_xdata()) == [0.0, 0.1, 0.5]  # sorted by the setting
    assert fig._suptitle.get_text() == "gemma-3-270m, block 6"


@pytest.mark.parametrize(("change", "message"), [
    (dict(values={"run_1": {"explained_variance": 0.99}}),
     "run_1's explained_variance is stated as 0.99, but its result is 0.71"),
    (dict(values={"run_2": {"l0": 12}}), "run_2's l0 is stated as 12, but its result is 25"),
    (dict(values={"run_1": {"made_up": 1.0}}), "run_1's made_up is stated as 1.0, but its result is nothing"),
    (dict(title="EV 0.99 for every run"), "says 0.99, which is no setting of the plotted runs"),
    (dict(labels={"run_1": "run_1 (EV=0.990)"}), "says 0.990"),
    (dict(labels={"run_1": "alpha=0.2"}), "says 0.2"),
    (dict(labels={"run_1": "TopK64"}), "says 64"),
    (dict(title="EV0.99 everywhere"), "says 0.99"),
    (dict(runs=["run_0", "run_9"]), "no results for run_9"),
    (dict(file="../outside.png"), "'file' must be a new plain name"),
    (dict(file="notes.txt"), "'file' must be a new plain name"),
    (dict(file="paper.pdf"), "'file' must be a new plain name"),
    (dict(panels=[{"kind": "bar", "y": "accuracy"}]), "'y' must name a metric or numeric setting"),
    (dict(panels=[{"kind": "pie", "y": "l0"}]), "'kind' must be one of bar, scatter, line"),
    (dict(panels=[{"kind": "bar", "y": "l0", "data": [0.99]}]), "unknown key(s) data"),
    (dict(colors="red"), "unknown key(s) colors"),
])
def test_a_declaration_it_cannot_ground_is_refused_and_nothing_is_drawn(tmp_path: Path, change: dict[str, Any],
                                                                        message: str) -> None:
    receipt = _draw(tmp_path, _spec(**change))
    assert receipt["rendered"] == [] and len(receipt["problems"]) == 1
    assert message in receipt["problems"][0], receipt["problems"]
    assert not list(tmp_path.glob("*.png")) and not (tmp_path.parent / "outside.png").exists()


def test_numbers_of_settings_and_names_in_words_are_allowed(tmp_path: Path) -> None:
    spec = _spec(labels={"run_1": "run_1: \u03b1=0.1, block 6", "run_2": "alpha 0.5"},
                 title="L0 and H1 on gemma-3-270m (layer 6)", runs=["run_0", "run_1", "run_2"])
    assert _draw(tmp_path, spec)["problems"] == []


def test_words_are_drawn_as_written_never_as_math_or_tex(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import matplotlib.pyplot as plt

    kept: list[Any] = []
    monkeypatch.setattr(plt, "close", kept.append)
    receipt = _draw(tmp_path, _spec(title=r"$\frac{a}{b}$ \input{secret}"))
    assert receipt["problems"] == []
    assert kept[0]._suptitle.get_text() == r"\$\frac{a}{b}\$ \input{secret}"


def test_missing_or_broken_declarations_say_what_to_do(tmp_path: Path) -> None:
    root = _runs(tmp_path, INFOS)
    assert "plot.py wrote no figures.json" in figures.run(root, root / "figures.json", TOML)["problems"][0]
    (root / "figures.json").write_text("{not json")
    assert "figures.json is not valid JSON" in figures.run(root, root / "figures.json", TOML)["problems"][0]
    (root / "figures.json").unlink()
    (root / "figures.json").symlink_to(root / "run_0" / "final_info.json")
    assert "plot.py wrote no figures.json" in figures.run(root, root / "figures.json", TOML)["problems"][0]
    assert figure_spec.figure_files({"figures": [{"file": "a.png"}, {"file": "../b.png"}, {"file": "c.txt"}, 3]}) == ["a.png"]
    assert figure_spec.figure_files("nonsense") == []


def test_four_panels_are_a_two_by_two_grid_without_empty_slots(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """Per-dataset figures have four panels: they fill a 2x2 grid (a 3-column grid left two
    empty slots beside the fourth); three or fewer stay in one row."""
    import matplotlib.pyplot as plt

    kept: list[Any] = []
    monkeypatch.setattr(plt, "close", kept.append)
    panels = [{"kind": "bar", "y": "explained_variance"}, {"kind": "bar", "y": "l0"},
              {"kind": "line", "x": "alpha", "y": "l0"}, {"kind": "scatter", "x": "l0", "y": "explained_variance"}]
    assert _draw(tmp_path, {"figures": [{"file": "metrics.png", "panels": panels}]})["problems"] == []
    (fig,) = kept
    assert len(fig.axes) == 4 and fig.axes[0].get_subplotspec().get_gridspec().get_geometry() == (2, 2)
    assert all(ax.get_visible() and ax.has_data() for ax in fig.axes)
