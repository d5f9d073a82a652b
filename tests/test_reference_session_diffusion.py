"""The dual_scale_denoiser reference session against the template it edits, without running it.

The 2d_diffusion main job replays this session; its SEARCH sections quote templates/2d_diffusion.
A change to the template that breaks a quote would show up only in the slow main-job test (as an
edit retry the replay cannot answer), so here every experiment- and plot-stage reply is applied
in order to a copy of the template, and the denoisers the code leaves are trained for a few
steps and exported as the evaluator will load them.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import torch

from agent.edits.apply import EditPolicy, apply_blocks
from agent.edits.lint import lint
from agent.edits.parse import parse
from agent.llm.replay import load_recording

TEMPLATE = Path(__file__).parents[1] / "templates" / "2d_diffusion"
SESSION = TEMPLATE / "ideas" / "dual_scale_denoiser.session.jsonl"
EDITABLE = frozenset({"experiment.py", "plot.py", "notes.txt", "latex/template.tex"})


def _apply_session(root: Path) -> list[str]:
    """Apply the experiment and plot replies in order; return each reply's prompt kind."""
    policy = EditPolicy(root=root, editable=EDITABLE)
    kinds = []
    for reply in load_recording(SESSION).replies:
        if reply.stage not in ("experiment", "plot"):
            continue
        parsed = parse(reply.text)
        assert parsed.problems == [], (reply.prompt_kind, parsed.problems)
        report = apply_blocks(parsed.blocks, policy)
        assert report.clean, (reply.prompt_kind, report.failed, report.refused)
        inexact = [(a.path, a.line, a.kind) for a in report.applied if a.kind != "exact"]
        assert inexact == [], f"{reply.prompt_kind}: SEARCH no longer quotes the file: {inexact}"
        assert lint(root, report.changed_files) == []
        kinds.append(reply.prompt_kind)
    return kinds


def _module(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location("session_diffusion_experiment", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _applied(tmp_path: Path) -> tuple[Path, list[str]]:
    root = tmp_path / "run"
    shutil.copytree(TEMPLATE, root, ignore=shutil.ignore_patterns("ideas", "__pycache__"))
    return root, _apply_session(root)


def test_every_edit_of_the_session_quotes_the_template_exactly(tmp_path: Path) -> None:
    root, kinds = _applied(tmp_path)
    assert kinds == ["experiment.plan", "experiment.results", "experiment.results", "plot.edit", "plot.describe"]
    notes = (root / "notes.txt").read_text(encoding="utf-8")
    assert "## Analysis of run 1" in notes and "## Analysis of run 2" in notes and "## Figures" in notes


def test_the_sessions_dual_scale_denoisers_train_and_export_for_the_evaluator(tmp_path: Path) -> None:
    from harness.diffusion.export import export_one
    from harness.graph_run import GraphProgram

    root, _ = _applied(tmp_path)
    mod = _module(root / "experiment.py")
    torch.manual_seed(0)
    data = torch.randn(512, 2)
    betas = torch.linspace(1e-4, 0.02, 100)
    cfg = mod.Config(num_train_steps=30, learning_rate=3e-3)
    for learned in (True, False):  # run 1 and run 2
        model = mod.DualScaleDenoiser(16, 32, 2, 25.0, 4.0, 0.7, learned)
        assert (model.weight_net is not None) is learned and model.branch_size == 22
        w = model.branch_weights(torch.arange(100))
        assert w.shape == (100, 2) and torch.allclose(w.sum(dim=1), torch.ones(100))
        facts = mod.train(model, data, betas, cfg, 30, torch.Generator().manual_seed(0), "test")
        assert facts["final_loss"] < 1.5
        graph = GraphProgram(export_one(model.eval(), 100))  # what the evaluator runs
        z = torch.cat([torch.randn(7, 2), torch.randint(0, 100, (7, 1)).float()], dim=1)
        with torch.no_grad():
            assert torch.allclose(graph(z), model(z[:, :2], z[:, 2].long()), atol=1e-5)


def test_the_sessions_plot_py_declares_figures_the_renderer_accepts(tmp_path: Path) -> None:
    """plot.py as the session leaves it, run on records shaped like the runs' (the baseline's
    config, and the dual-scale runs' with and without the learned weighting)."""
    from harness.figure_spec import load_runs, validate

    root, _ = _applied(tmp_path)
    names = ["kl_mean", "energy_mean", "eval_loss_mean"] + [f"{m}_{d}" for m in ("kl", "energy")
                                                            for d in ("moons", "circle", "line", "spiral")]
    base = {"preset": "tiny", "beta_schedule": "linear", "num_timesteps": 100, "hidden_size": 64}
    configs = [base, {**base, "use_dual_scale": True, "local_scale": 4.0, "learned_weighting": True},
               {**base, "use_dual_scale": True, "local_scale": 4.0, "learned_weighting": False}]
    for i, config in enumerate(configs):
        (root / f"run_{i}").mkdir()
        info = {"metrics": {n: 0.1 * (i + 1) for n in names}, "config": config}
        (root / f"run_{i}" / "final_info.json").write_text(json.dumps(info), encoding="utf-8")
    env = {**os.environ, "HARNESS_FIGURES": "declare"}
    subprocess.run([sys.executable, "plot.py"], cwd=root, env=env, check=True, capture_output=True)
    spec = json.loads((root / "figures.json").read_text(encoding="utf-8"))
    figures = validate(spec, load_runs(root))
    assert [f["file"] for f in figures] == ["metrics.png", "datasets.png", "energy.png"]
    assert spec["figures"][0]["labels"] == {"run_0": "baseline", "run_1": "run_1: learned w(t)",
                                            "run_2": "run_2: equal weights"}


def test_the_session_ends_with_one_valid_review_that_addresses_no_finding() -> None:
    from agent.review import check

    replies = load_recording(SESSION).replies
    reviews = [r for r in replies if r.stage == "review"]
    assert len(reviews) == 1 and replies[-1] is reviews[0] and reviews[0].prompt_kind == "review.paper"
    checked = check(reviews[0].text, [])
    assert checked.errors == () and checked.review is not None
    assert checked.review.form["Integrity"] == [] and checked.review.decision in ("Accept", "Reject")
