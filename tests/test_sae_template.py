"""The sae_variants template: its manifest, ideas, SAE code, plot script, and the baseline run
exactly as a user (or the loop) starts it."""

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

from harness.gates import parse_gate

TEMPLATE = Path(__file__).parents[1] / "templates" / "sae_variants"
MANIFEST = tomllib.loads((TEMPLATE / "template.toml").read_text(encoding="utf-8"))
IDEA_FIELDS = ("Name", "Title", "Experiment", "Technical_Details", "Research_Impact",
               "Implementation_Plan", "Interestingness_Evaluation", "Interestingness",
               "Feasibility_Evaluation", "Feasibility", "Novelty_Evaluation", "Novelty",
               "Overall_Score", "novel", "template", "requires")


def _template_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("sae_template_experiment",
                                                  TEMPLATE / "experiment.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_manifest_declares_headline_metrics_and_the_required_gates() -> None:
    headline = [m["name"] for m in MANIFEST["metrics"] if m.get("headline")]
    assert 4 <= len(headline) <= 6
    assert all(m["direction"] in ("higher", "lower") for m in MANIFEST["metrics"])
    gates = [parse_gate(g) for g in MANIFEST["gates"]]
    checks = " ; ".join(g.check for g in gates)
    for needed in ("d_sae >= 4 * d_in", "l0 <= 0.25 * d_sae", "l0 <= 0.5 * d_in",
                   "explained_variance > 0", "ce_loss_score > 0.5", "dead_frac < 0.5"):
        assert needed in checks, needed
    assert {"metrics.png", "frontier.png"} == set(MANIFEST["figures"])


@pytest.mark.parametrize("path", sorted((TEMPLATE / "ideas").glob("*.json")), ids=lambda p: p.stem)
def test_ideas_are_complete_and_promise_only_what_the_template_provides(path: Path) -> None:
    idea = json.loads(path.read_text(encoding="utf-8"))
    assert [f for f in IDEA_FIELDS if f not in idea] == []
    assert idea["Name"] == path.stem and idea["template"] == "sae_variants"
    for key, wanted in idea["requires"].items():
        assert set(wanted) <= set(MANIFEST["provides"][key]), key
    text = json.dumps(idea).lower()
    for absent in ("wmdp", "unlearning", "gemma-2-2b", "probing evaluation"):
        assert absent not in text, absent


def test_baseline_sae_shapes_and_topk_sparsity() -> None:
    mod = _template_module()
    torch.manual_seed(0)
    x = torch.randn(64, 16)
    sae = mod.CustomSAE(16, 128)
    x_hat, f = sae(x, output_features=True)
    assert x_hat.shape == (64, 16) and f.shape == (64, 128) and (f >= 0).all()
    assert sae.W_dec.shape == (128, 16)  # (d_sae, d_in)
    topk = mod.CustomSAE(16, 128, activation="topk", k=4)
    assert ((topk.encode(x) != 0).sum(-1) <= 4).all()


def test_trainer_lowers_the_loss_and_keeps_decoder_rows_unit_norm() -> None:
    mod = _template_module()
    torch.manual_seed(0)
    x = torch.randn(512, 16)
    sae = mod.CustomSAE(16, 64)
    trainer = mod.CustomTrainer(sae, total_steps=60, lr=1e-2, l1_penalty=0.01,
                                lr_warmup_steps=5, lr_decay_frac=0.2, l1_warmup_frac=0.1)
    first = trainer.update(0, x)["recon"].item()
    for step in range(1, 60):
        last = trainer.update(step, x)["recon"].item()
    assert last < 0.5 * first
    assert torch.allclose(sae.W_dec.norm(dim=1), torch.ones(64), atol=1e-5)
    assert trainer.lr_factor(0) == pytest.approx(0.2) and trainer.lr_factor(59) < 0.1



@pytest.mark.parametrize(("d_in", "d_sae", "b_enc_mean", "path"),
                         [(16, 64, 0.0, "dense"), (256, 2048, -3.5, "sparse")])
def test_fused_encode_and_decode_compute_the_documented_formula_and_its_gradients(
        d_in: int, d_sae: int, b_enc_mean: float, path: str) -> None:
    """encode folds b_dec into the encoder bias and both products go through the harness's
    zero-skipping addmm: the outputs and the gradients of every parameter must equal those of
    the formula in the docstring, whether the products run dense (narrow SAE) or sparse."""
    from harness.sae import sparse

    mod = _template_module()
    torch.manual_seed(0)
    x = torch.randn(32, d_in, dtype=torch.float64)
    sae = mod.CustomSAE(d_in, d_sae).double()
    with torch.no_grad():
        sae.b_dec.normal_()
        sae.b_enc.normal_(mean=b_enc_mean, std=0.5)
    weights = torch.randn(32, d_in, dtype=torch.float64)  # a loss that weighs every output
    before = dict(sparse.calls)

    def grads(forward):  # noqa: ANN001, ANN202
        sae.zero_grad()
        x_hat, f = forward()
        ((x_hat * weights).sum() + 0.3 * f.sum()).backward()
        return x_hat.detach(), f.detach(), {n: p.grad.clone() for n, p in sae.named_parameters()}

    def literal():  # noqa: ANN202
        f = torch.relu((x - sae.b_dec) @ sae.W_enc + sae.b_enc)
        return f @ sae.W_dec + sae.b_dec, f

    x_hat, f, fused = grads(lambda: sae(x, output_features=True))
    x_ref, f_ref, reference = grads(literal)
    assert 0 < (f > 0).float().mean() < 1  # some latents fire, some do not
    assert sparse.calls[path] == before[path] + 2  # decoder forward, encoder backward
    torch.testing.assert_close(f, f_ref)
    torch.testing.assert_close(x_hat, x_ref)
    assert set(fused) == {"W_dec", "W_enc", "b_enc", "b_dec"}
    for name in fused:
        torch.testing.assert_close(fused[name], reference[name], msg=name)


def _fake_run(root: Path, i: int, l0: float, ev: float) -> None:
    run = root / f"run_{i}"
    run.mkdir()
    metrics = {m["name"]: 0.5 for m in MANIFEST["metrics"]} | {"l0": l0, "explained_variance": ev}
    metrics["kl_div_score"] = None  # a missing value must not break the plot
    (run / "final_info.json").write_text(json.dumps({"metrics": metrics, "config": {}}))


def test_plot_script_draws_every_run_unmodified(tmp_path: Path) -> None:
    shutil.copy(TEMPLATE / "plot.py", tmp_path)
    shutil.copy(TEMPLATE / "template.toml", tmp_path)
    for i, (l0, ev) in enumerate([(26.0, 0.82), (18.0, 0.80), (40.0, 0.9)]):
        _fake_run(tmp_path, i, l0, ev)
    (tmp_path / "run_7").mkdir()  # a failed run without results is skipped
    done = subprocess.run([sys.executable, "plot.py"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120)
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
    env = os.environ.copy()
    env.pop("EXPERIMENT_PRESET", None)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env["PATH"]  # `python` = venv
    done = subprocess.run(["python", "experiment.py", "--out_dir=run_0"], cwd=run_dir, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    assert "explained_variance=" in done.stdout

    info = json.loads((run_dir / "run_0" / "final_info.json").read_text())
    metrics, config = info["metrics"], info["config"]
    assert all(v is not None and math.isfinite(v) for v in metrics.values()), metrics
    for key in ("d_sae", "d_in", "l1_penalty", "lr", "expansion_factor", "model", "layer",
                "preset", "tokens", "act_scale"):
        assert key in config, key
    assert config["preset"] == info["preset"] == "tiny"
    assert config["d_sae"] == 8 * config["d_in"]
    failed = [g for g in info["gates"] if g["passed"] is not True]
    assert failed == [], failed
    assert info["code"]["commit"] == _git(run_dir, "rev-parse", "HEAD")
    assert info["evaluation"]["dead_dense_window_tokens"] > 0
    assert (run_dir / "run_0" / "sae.safetensors").exists()
    assert "sae.safetensors" not in _git(run_dir, "status", "--porcelain", "--untracked-files=all")
    # typed by hand, finish() started the evaluator itself: the record is verifiable
    from harness import provenance
    from harness.sae import contract

    out, prov = run_dir / "run_0", info["provenance"]
    assert prov["evaluator"] == "harness.sae.evaluator"
    assert prov["encode_sha256"] == provenance.sha256_file(out / contract.ENCODE)
    assert prov["decode_sha256"] == provenance.sha256_file(out / contract.DECODE)
    assert prov["meta_sha256"] == provenance.sha256_file(out / contract.META)
    assert prov["harness_sha256"] == provenance.harness_sha256()

    plotted = subprocess.run(["python", "plot.py"], cwd=run_dir, env=env, capture_output=True,
                             text=True, timeout=120)
    assert plotted.returncode == 0, plotted.stderr
    assert (run_dir / "frontier.png").exists() and (run_dir / "metrics.png").exists()
