"""The template's gates on what the harness writes: a dense "SAE" like the seed's must fail."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest
import torch

from harness.sae import finish
from harness.sae.activations import ActivationSource
from harness.sae.evaluate import reconstruction
from harness.sae.presets import PRESETS

TEMPLATE = Path(__file__).parents[1] / "templates" / "sae_variants"
SMALL = dataclasses.replace(PRESETS["tiny"], train_tokens=4096, eval_tokens=2048, ce_tokens=512)


class DenseSAE(torch.nn.Module):
    """The seed's defect: as many latents as model dimensions, nearly all of them active."""

    def __init__(self, d_in: int) -> None:
        super().__init__()
        self.W_enc = torch.nn.Parameter(torch.eye(d_in))
        self.W_dec = torch.nn.Parameter(torch.eye(d_in))  # (d_sae, d_in)
        self.l1_penalty = 0.04

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return x @ self.W_enc  # dense: every latent nonzero on every token

    def forward(self, x: torch.Tensor, output_features: bool = False):
        f = self.encode(x)
        x_hat = f @ self.W_dec
        return (x_hat, f) if output_features else x_hat

    def decode(self, f: torch.Tensor) -> torch.Tensor:
        return f @ self.W_dec


@pytest.mark.slow
def test_dense_sae_fails_the_sparsity_and_width_gates(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    shutil.copy(TEMPLATE / "template.toml", tmp_path / "template.toml")
    monkeypatch.chdir(tmp_path)
    source = ActivationSource(SMALL)
    # finish() exports encode/decode and evaluates them in a separate process (on "tiny")
    record = finish(tmp_path / "run_1", DenseSAE(source.d_in), source)
    gates = {g["name"]: g for g in record["gates"]}
    for name in ("dictionary_width", "l0_fraction_of_dictionary", "l0_vs_model_width"):
        assert gates[name]["passed"] is False, name
    assert "not a sparse code" in gates["l0_fraction_of_dictionary"]["message"]
    assert gates["explained_variance_positive"]["passed"] is True  # it reconstructs perfectly
    assert record["metrics"]["explained_variance"] == pytest.approx(1.0, abs=1e-5)
    assert record["config"]["d_sae"] == record["config"]["d_in"] == source.d_in
    written = json.loads((tmp_path / "run_1" / "final_info.json").read_text())
    assert written["gates"] == record["gates"]
    assert (tmp_path / "run_1" / "sae.safetensors").exists()


class Levelled(torch.nn.Module):
    """Identity code over 2 dims with two one-latent levels (values worked out by hand)."""

    def __init__(self) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.eye(2))

    def forward(self, x: torch.Tensor, output_features: bool = False):
        return (x @ self.w, x) if output_features else x @ self.w

    def decode(self, f: torch.Tensor) -> torch.Tensor:
        return f @ self.w

    def levels(self) -> dict[str, list[int]]:
        return {"coarse": [0], "fine": [1]}


def test_per_level_l0_and_explained_variance() -> None:
    # x = [[2, 0], [0, 2]]: level "coarse" keeps latent 0, so x_hat = [[2, 0], [0, 0]]:
    # L0 = 1/2 token, SSE = 4 against total variance 4 -> EV 0.
    x = torch.tensor([[2.0, 0.0], [0.0, 2.0]])
    overall, d_sae, levels = reconstruction(Levelled(), x)
    assert d_sae == 2 and overall["explained_variance"] == pytest.approx(1.0)
    assert levels["coarse"]["l0"] == pytest.approx(0.5)
    assert levels["coarse"]["explained_variance"] == pytest.approx(0.0)
    assert levels["fine"]["l0"] == pytest.approx(0.5)


def test_a_named_manifest_that_cannot_be_read_writes_no_record_without_gates(tmp_path: Path) -> None:
    """The loop names the template's manifest; if the evaluator cannot read it (missing, or
    out of its sandbox's view), the record is refused, never written with no gates at all."""
    from harness.results import write_final_info

    with pytest.raises(ValueError, match="cannot be read"):
        write_final_info(tmp_path / "run_1", {"l0": 1.0}, {}, manifest=tmp_path / "nowhere" / "template.toml")
    assert not (tmp_path / "run_1" / "final_info.json").exists()
    manifest = Path(__file__).resolve().parents[1] / "templates" / "sae_variants" / "template.toml"
    record = write_final_info(tmp_path / "run_1", {"l0": 1.0}, {"d_in": 128, "d_sae": 1024}, manifest=manifest)
    assert record["gates"], "the template's gates were evaluated"
