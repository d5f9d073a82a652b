"""The 2d_diffusion template: its manifest, ideas, denoiser code, plot script, and the baseline
run exactly as a user types it (`python experiment.py --out_dir=run_0`)."""

from __future__ import annotations

import importlib.util
import json
import math
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from types import ModuleType

import pytest
import torch

from harness.diffusion import contract
from harness.gates import parse_gate
from tests.conftest import REPO

TEMPLATE = REPO / "templates" / "2d_diffusion"
MANIFEST = tomllib.loads((TEMPLATE / "template.toml").read_text(encoding="utf-8"))
IDEA_FIELDS = ("Name", "Title", "Experiment", "Technical_Details", "Research_Impact",
               "Implementation_Plan", "Interestingness_Evaluation", "Interestingness",
               "Feasibility_Evaluation", "Feasibility", "Novelty_Evaluation", "Novelty",
               "Overall_Score", "novel", "template", "requires")


def _env() -> dict[str, str]:
    """A user's shell: `python` is the venv's, and `harness` is this checkout's."""
    env = os.environ.copy()
    env.pop("EXPERIMENT_PRESET", None)
    env.pop("HARNESS_EVALUATOR", None)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env["PATH"]
    env["PYTHONPATH"] = str(REPO / "experiment")
    return env


def _template_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("diffusion_template_experiment",
                                                  TEMPLATE / "experiment.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_manifest_names_the_evaluator_metrics_gates_and_refused_changes() -> None:
    assert MANIFEST["name"] == "2d_diffusion" and MANIFEST["evaluator"] == contract.EVALUATOR
    assert MANIFEST["presets_provider"] == "harness.diffusion.presets" and MANIFEST["seeds"] == 3
    assert set(MANIFEST["presets"]) == {"tiny", "cpu", "gpu"}
    names = [m["name"] for m in MANIFEST["metrics"]]
    assert all(n.isidentifier() for n in names) and len(set(names)) == len(names)
    assert {"kl_mean", "energy_mean", "eval_loss_mean"} == {m["name"] for m in MANIFEST["metrics"]
                                                             if m.get("headline")}
    for d in contract.DATASETS:
        assert {f"kl_{d}", f"energy_{d}", f"eval_loss_{d}"} <= set(names)
    checks = " ; ".join(parse_gate(g).check for g in MANIFEST["gates"])
    for needed in ("nonfinite_frac == 0", "outside_frac < 0.01", "loss_ratio_max < 0.95"):
        assert needed in checks, needed
    assert "sampler" in MANIFEST["refused_changes"] and "sampler" not in MANIFEST["provides"]["changes"]
    assert set(MANIFEST["provides"]["datasets"]) == set(contract.DATASETS)
    assert set(MANIFEST["figures"]) == {"metrics.png", "datasets.png"}


@pytest.mark.parametrize("path", sorted((TEMPLATE / "ideas").glob("*.json")), ids=lambda p: p.stem)
def test_ideas_are_complete_and_promise_only_what_the_template_provides(path: Path) -> None:
    idea = json.loads(path.read_text(encoding="utf-8"))
    assert [f for f in IDEA_FIELDS if f not in idea] == []
    assert idea["Name"] == path.stem and idea["template"] == "2d_diffusion"
    for key, wanted in idea["requires"].items():
        assert set(wanted) <= set(MANIFEST["provides"][key]), key
    assert not set(idea["requires"].get("changes", [])) & set(MANIFEST["refused_changes"])


def test_the_baseline_denoiser_lowers_its_loss_on_moons() -> None:
    from harness.diffusion.data import points

    module = _template_module()
    cfg = module.Config(hidden_size=32, embedding_dim=16, log_every=10**9)
    model = module.MLPDenoiser(16, 32, 2, cfg.input_scale)
    betas = torch.linspace(1e-4, 0.02, 100)
    data = torch.from_numpy(points("moons", "train", 2000))
    gen = torch.Generator().manual_seed(0)
    t = torch.randint(0, 100, (2000,), generator=gen)
    noise = torch.randn(2000, 2, generator=gen)
    a_bar = torch.cumprod(1 - betas, 0)[t].unsqueeze(-1)
    x_t = a_bar.sqrt() * data + (1 - a_bar).sqrt() * noise

    def loss() -> float:
        with torch.no_grad():
            return float(((model(x_t, t) - noise) ** 2).mean())

    before = loss()
    module.train(model, data, betas, cfg, 200, gen, "moons")
    assert loss() < 0.85 * before


def _fake_run(root: Path, i: int, kl: float) -> None:
    out = root / f"run_{i}"
    out.mkdir()
    metrics = {"kl_mean": kl, "energy_mean": kl / 10, "eval_loss_mean": 0.6,
               **{f"kl_{d}": kl for d in contract.DATASETS}}
    (out / "final_info.json").write_text(json.dumps({"metrics": metrics, "config": {"lr": 1e-3}}))


def test_plot_script_declares_figures_the_renderer_draws(tmp_path: Path) -> None:
    shutil.copy(TEMPLATE / "plot.py", tmp_path)
    shutil.copy(TEMPLATE / "template.toml", tmp_path)
    for i, kl in enumerate([0.3, 0.25, 0.4]):
        _fake_run(tmp_path, i, kl)
    (tmp_path / "run_7").mkdir()  # a failed run without results is skipped
    done = subprocess.run([sys.executable, "plot.py"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120, env=_env())
    assert done.returncode == 0, done.stderr
    assert "3 runs: baseline, run_1, run_2" in done.stdout and "\"problems\": []" in done.stdout
    for figure in MANIFEST["figures"]:
        assert (tmp_path / figure).stat().st_size > 10_000, figure


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True,
                          text=True).stdout.strip()


@pytest.mark.slow
def test_baseline_runs_as_typed_in_a_run_directory_and_passes_the_gates(tmp_path: Path) -> None:
    run_dir = tmp_path / "run_dir"
    shutil.copytree(TEMPLATE, run_dir, ignore=shutil.ignore_patterns("latex", "__pycache__"))
    (run_dir / "preset.json").write_text(json.dumps({"preset": "tiny"}))
    _git(run_dir, "init", "-q", "-b", "main")
    _git(run_dir, "add", "-A")
    _git(run_dir, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "template")
    done = subprocess.run(["python", "experiment.py", "--out_dir=run_0"], cwd=run_dir, env=_env(),
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    assert "kl_mean=" in done.stdout

    out = run_dir / "run_0"
    info = json.loads((out / "final_info.json").read_text())
    metrics, config = info["metrics"], info["config"]
    assert {m["name"] for m in MANIFEST["metrics"]} <= set(metrics)
    assert all(v is not None and math.isfinite(v) for v in metrics.values()), metrics
    for key in ("learning_rate", "num_timesteps", "beta_schedule", "hidden_size", "preset",
                "n_train", "n_generated"):
        assert key in config, key
    assert config["preset"] == info["preset"] == "tiny"
    assert [g["name"] for g in info["gates"]] == [g["name"] for g in MANIFEST["gates"]]
    failed = [g for g in info["gates"] if g["passed"] is not True and g["severity"] == "fail"]
    assert failed == [], failed
    assert info["code"]["commit"] == _git(run_dir, "rev-parse", "HEAD")
    # typed by hand, finish() started the evaluator itself: the record is verifiable
    from harness import provenance

    prov = info["provenance"]
    assert prov["evaluator"] == contract.EVALUATOR
    assert prov["harness_sha256"] == provenance.harness_sha256()
    for key, name in contract.EXPORTS.items():
        assert prov[key] == provenance.sha256_file(out / name), key
    assert info["checkpoint"]["matches_evaluated"] is True
    assert set(info["training"]) == set(contract.DATASETS)

    plotted = subprocess.run(["python", "plot.py"], cwd=run_dir, env=_env(), capture_output=True,
                             text=True, timeout=120)
    assert plotted.returncode == 0, plotted.stderr
