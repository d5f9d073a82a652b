"""The 2d_diffusion harness's torch-free parts: deterministic point clouds with disjoint splits,
the declared noise schedules and their refusals, the presets and the contract."""

from __future__ import annotations

import math

import numpy as np
import pytest

from harness import provenance
from harness.diffusion import contract, data, presets, schedule


@pytest.mark.parametrize("dataset", contract.DATASETS)
def test_point_clouds_are_deterministic_and_the_held_out_split_is_disjoint(dataset: str) -> None:
    train, again = data.points(dataset, "train", 2000), data.points(dataset, "train", 2000)
    held_out = data.points(dataset, "eval", 1000)
    assert train.shape == (2000, 2) and train.dtype == np.float32 and held_out.shape == (1000, 2)
    np.testing.assert_array_equal(train, again)
    assert np.isfinite(train).all() and 1.0 < np.abs(train).max() < 5.0
    shared = {tuple(p) for p in train.tolist()} & {tuple(p) for p in held_out.tolist()}
    assert not shared
    # the same distribution: means and spreads agree within sampling error
    np.testing.assert_allclose(train.mean(0), held_out.mean(0), atol=0.2)
    np.testing.assert_allclose(train.std(0), held_out.std(0), rtol=0.1)


def test_datasets_differ_and_unknown_names_are_refused() -> None:
    clouds = [data.points(d, "train", 500) for d in contract.DATASETS]
    assert all(not np.allclose(a, b) for i, a in enumerate(clouds) for b in clouds[i + 1:])
    with pytest.raises(ValueError, match="unknown dataset"):
        data.points("dino", "train", 10)
    with pytest.raises(ValueError, match="unknown split"):
        data.points("moons", "test", 10)


def test_train_data_follows_the_preset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EXPERIMENT_PRESET", "tiny")
    found = data.train_data()
    assert list(found) == list(contract.DATASETS)
    assert {v.shape for v in found.values()} == {(presets.PRESETS["tiny"].n_train, 2)}


def test_the_declared_schedules_give_the_documented_betas() -> None:
    linear = schedule.betas({"num_timesteps": 100, "beta_schedule": "linear",
                             "beta_start": 1e-4, "beta_end": 0.02})
    assert linear[0] == pytest.approx(1e-4) and linear[-1] == pytest.approx(0.02) and len(linear) == 100
    quad = schedule.betas({"num_timesteps": 3, "beta_schedule": "quadratic",
                           "beta_start": 0.01, "beta_end": 0.09})
    np.testing.assert_allclose(quad, [0.01, 0.04, 0.09])
    cosine = schedule.betas({"num_timesteps": 1000, "beta_schedule": "cosine"})
    alpha_bar = np.cumprod(1 - cosine)
    t = np.arange(1, 1001) / 1000
    expected = np.cos((t + 0.008) / 1.008 * math.pi / 2) ** 2 / math.cos(0.008 / 1.008 * math.pi / 2) ** 2
    np.testing.assert_allclose(alpha_bar[:-50], expected[:-50], rtol=1e-6)  # before the clip
    assert cosine.max() <= 0.999
    custom = schedule.betas({"num_timesteps": 2, "beta_schedule": "custom", "betas": [0.1, 0.2]})
    np.testing.assert_allclose(custom, [0.1, 0.2])
    facts = schedule.describe({"num_timesteps": 100, "beta_schedule": "linear", "beta_start": 1e-4,
                               "beta_end": 0.02}, linear)
    assert facts["alpha_bar_final"] == pytest.approx(float(np.prod(1 - linear)))


@pytest.mark.parametrize(("declared", "said"), [
    ({"num_timesteps": 100, "beta_schedule": "linear", "beta_start": 0.5, "beta_end": 1.5},
     "strictly between 0 and 1"),
    ({"num_timesteps": 100, "beta_schedule": "linear", "beta_start": -0.1, "beta_end": 0.02},
     "strictly between 0 and 1"),
    ({"num_timesteps": 0, "beta_schedule": "linear", "beta_start": 1e-4, "beta_end": 0.02},
     "integer from 1 to 1000"),
    ({"num_timesteps": 10**6, "beta_schedule": "linear", "beta_start": 1e-4, "beta_end": 0.02},
     "integer from 1 to 1000"),
    ({"num_timesteps": 10.5, "beta_schedule": "linear", "beta_start": 1e-4, "beta_end": 0.02},
     "integer from 1 to 1000"),
    ({"num_timesteps": 100, "beta_schedule": "sigmoid"}, "must be one of"),
    ({"num_timesteps": 100, "beta_schedule": "linear", "beta_start": float("nan"), "beta_end": 0.02},
     "finite number"),
    ({"num_timesteps": 3, "beta_schedule": "custom", "betas": [0.1, 0.2]}, "list of num_timesteps=3"),
    ({"num_timesteps": 2, "beta_schedule": "custom", "betas": [0.1, 1.0]}, "strictly between 0 and 1"),
    (None, "declares no noise schedule"),
])
def test_a_nonsense_schedule_is_refused_with_a_clear_message(declared: object, said: str) -> None:
    with pytest.raises(schedule.ScheduleError, match=said):
        schedule.betas(declared)


def test_the_contract_is_read_through_provenance() -> None:
    found = provenance.contract("harness.diffusion.evaluator")
    assert found.EVALUATOR == "harness.diffusion.evaluator" and found.PREPARE is None
    assert found.EXPORTS["meta_sha256"] == "diffusion_meta.json"
    assert {found.EXPORTS[f"denoiser_{d}_sha256"] for d in contract.DATASETS} == \
        {f"denoiser_{d}.pt2" for d in contract.DATASETS}
    assert found.CHECKPOINT == "denoiser.safetensors"


def test_presets_are_all_available_and_resolved_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    assert presets.available() == {"tiny": None, "cpu": None, "gpu": None}
    assert presets.default_name() in ("cpu", "gpu")
    monkeypatch.setenv("EXPERIMENT_PRESET", "tiny")
    assert presets.resolve().name == "tiny"
    with pytest.raises(presets.PresetUnavailable, match="unknown preset"):
        presets.resolve("huge")
