"""Activation harvesting, the on-disk cache and the splice, on the tiny model (built once per
cache directory, then reused)."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys

import pytest
import torch

from harness import transfer
from harness.sae import activations, evaluate, models
from harness.sae.activations import ActivationSource, residual, token_mask
from harness.sae.evaluate import downstream
from harness.sae.presets import PRESETS

# A small slice of the tiny preset: its own cache entries, harvested in about a second.
SMALL = dataclasses.replace(PRESETS["tiny"], train_tokens=4096, eval_tokens=2048, ce_tokens=512)


@pytest.fixture(scope="module")
def source() -> ActivationSource:
    src = ActivationSource(SMALL)
    src.eval_activations()  # both splits are in the cache from here on
    return src


def test_cache_hit_does_not_run_the_language_model(source: ActivationSource,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    def no_model(preset: object) -> None:
        raise AssertionError("the language model was loaded on a cache hit")

    monkeypatch.setattr(models, "load", no_model)
    again = ActivationSource(SMALL)
    batches = list(again.batches(256, 3))
    assert [b.shape for b in batches] == [(256, source.d_in)] * 3
    assert again.describe()["activation_cache_hit"] is True
    assert again.eval_activations().shape == (2048, source.d_in)
    assert again.tokens_served == 768


def test_activations_are_the_residual_after_the_layer_at_text_positions(
        source: ActivationSource) -> None:
    lm, layer = source.lm, SMALL.layer
    rows = source.ce_rows()[:2]  # the first held-out rows, in harvest order
    with torch.no_grad():
        hidden = lm.model(input_ids=rows, output_hidden_states=True).hidden_states[layer + 1]
    mask = token_mask(rows, lm.special_ids)
    assert not mask[:, 0].any(), "BOS is excluded"
    expected = hidden[mask]  # (n, d_model)
    cached = source.eval_activations()[:len(expected)] / source.scale
    assert torch.allclose(cached, expected, atol=1e-4)
    assert torch.allclose(residual(lm, rows, layer)[mask], expected, atol=1e-5)


def test_scaled_training_activations_have_mean_square_norm_d_in(source: ActivationSource) -> None:
    x = torch.cat(list(source.batches(1024, 4)))
    assert (x * x).sum(-1).mean().item() == pytest.approx(source.d_in, rel=0.05)


def test_cache_key_changes_with_what_determines_the_activations() -> None:
    base = ActivationSource(SMALL).entry("train")
    for change in ({"train_tokens": 4097}, {"layer": 2}, {"context_len": 64}):
        assert ActivationSource(dataclasses.replace(SMALL, **change)).entry("train") != base
    assert ActivationSource(SMALL).entry("eval") != base


def test_identity_splice_scores_one_and_zero_reconstruction_scores_zero(
        source: ActivationSource) -> None:
    class Identity(torch.nn.Module):
        def __init__(self, scale: float) -> None:
            super().__init__()
            self.scale = torch.nn.Parameter(torch.tensor(scale))

        def forward(self, x: torch.Tensor, output_features: bool = False):
            return self.scale * x, x

    perfect = downstream(Identity(1.0), source)
    assert perfect["ce_loss_score"] == pytest.approx(1.0, abs=1e-4)
    assert perfect["kl_sae"] == pytest.approx(0.0, abs=1e-5)
    assert perfect["kl_div_score"] == pytest.approx(1.0, abs=1e-4)
    ablated = downstream(Identity(0.0), source)
    assert ablated["ce_zero_ablation"] > ablated["ce_clean"] + 1.0  # layer 1 matters
    # A zero reconstruction at text positions still keeps BOS, which zero-ablation does not.
    assert 0 < ablated["ce_loss_score"] < 1 and ablated["ce_sae"] < ablated["ce_zero_ablation"]


class _Half(torch.nn.Module):
    """An "SAE" whose reconstruction is half its input."""

    def __init__(self) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.tensor(0.5))

    def forward(self, x: torch.Tensor, output_features: bool = False):
        return self.w * x, x


def _patched_log_probs(source: ActivationSource, rows: torch.Tensor, patch=None) -> torch.Tensor:
    """Next-token log-probs with block `layer`'s output replaced by `patch(h)`, written here
    with a plain hook, independently of the harness's splice."""
    lm, layer = source.lm, source.preset.layer

    def hook(module, args, output):
        h = output[0] if isinstance(output, tuple) else output
        new = patch(h)
        return (new, *output[1:]) if isinstance(output, tuple) else new

    handle = lm.block(layer).register_forward_hook(hook) if patch else None
    try:
        with torch.no_grad():
            logits = lm.model(input_ids=rows, use_cache=False).logits
    finally:
        if handle:
            handle.remove()
    return torch.log_softmax(logits[:, :-1].double(), dim=-1)


def test_ce_and_kl_scores_zero_ablate_every_position_as_saelens_does(source: ActivationSource) -> None:
    """The standard definition (SAELens, dictionary_learning): zero-ablation sets the layer's
    output to zero at every position, BOS included; the SAE is spliced at text positions."""
    got = downstream(_Half(), source, reuse_zero_ablation=False)
    rows = source.ce_rows()
    text = token_mask(rows, source.lm.special_ids)
    counted = text[:, :-1] & text[:, 1:]
    target = rows[:, 1:].unsqueeze(-1)

    def sae(h: torch.Tensor) -> torch.Tensor:
        out = h.clone()
        out[text] = 0.5 * h[text]  # x_hat / scale with x = h * scale
        return out

    clean = _patched_log_probs(source, rows)
    ce = {name: float(-lp.gather(-1, target).squeeze(-1)[counted].mean()) for name, lp in
          {"clean": clean, "sae": _patched_log_probs(source, rows, sae),
           "zero": _patched_log_probs(source, rows, torch.zeros_like)}.items()}
    kl = {name: float((clean.exp() * (clean - lp)).sum(-1)[counted].mean()) for name, lp in
          {"sae": _patched_log_probs(source, rows, sae),
           "zero": _patched_log_probs(source, rows, torch.zeros_like)}.items()}
    assert got["ce_zero_ablation"] == pytest.approx(ce["zero"], rel=1e-4)
    assert got["ce_loss_score"] == pytest.approx((ce["zero"] - ce["sae"]) / (ce["zero"] - ce["clean"]), rel=1e-4)
    assert got["kl_div_score"] == pytest.approx((kl["zero"] - kl["sae"]) / kl["zero"], rel=1e-3)


def test_zero_ablation_is_measured_once_and_a_stale_entry_is_not_trusted(
        source: ActivationSource, caplog: pytest.LogCaptureFixture) -> None:
    fresh = downstream(_Half(), source, reuse_zero_ablation=False)
    assert fresh["zero_ablation_cached"] is False
    cached = downstream(_Half(), source)
    assert cached["zero_ablation_cached"] is True
    for key in ("ce_zero_ablation", "ce_loss_score", "kl_div_score", "ce_sae"):
        assert cached[key] == pytest.approx(fresh[key], rel=1e-6), key
    entry = evaluate._zero_ablation_entry(source, source.ce_rows())
    stored = json.loads(entry.read_text())
    entry.write_text(json.dumps({**stored, "ce_clean": stored["ce_clean"] * 1.01,
                                 "ce_zero": 0.0}))  # as if from other weights
    with caplog.at_level("WARNING"):
        again = downstream(_Half(), source)
    assert "do not match" in caplog.text
    assert again["zero_ablation_cached"] is False
    assert again["ce_zero_ablation"] == pytest.approx(fresh["ce_zero_ablation"], rel=1e-6)
    assert json.loads(entry.read_text())["ce_zero"] == pytest.approx(stored["ce_zero"])

@pytest.mark.slow
def test_two_processes_harvesting_at_once_share_one_entry() -> None:
    probe = dataclasses.replace(SMALL, train_tokens=3001)
    entry = ActivationSource(probe).entry("train")
    shutil.rmtree(entry, ignore_errors=True)
    code = ("import dataclasses, numpy as np; from harness.sae.activations import ActivationSource; "
            "from harness.sae.presets import PRESETS; "
            "p = dataclasses.replace(PRESETS['tiny'], train_tokens=3001, eval_tokens=2048, "
            "ce_tokens=512); s = ActivationSource(p); "
            "print(float(np.asarray(s._split('train')[0], dtype='float64').sum()))")
    procs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                              env=os.environ.copy()) for _ in range(2)]
    outs = [p.communicate(timeout=300)[0].strip() for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert outs[0] == outs[1]
    siblings = [p.name for p in entry.parent.iterdir() if p.name.startswith(entry.name)]
    assert sorted(siblings) == sorted([entry.name, entry.name + ".lock"]), "no staging leftovers"
    assert activations.FORMAT >= 1


_PAGE_FAULTS = """
import resource, sys, torch
from harness.sae.activations import keep_freed_memory
tuned = keep_freed_memory() if sys.argv[1] == "tuned" else False
def step():  # six 4 MB tensors alive at once, then freed, like a training step's temporaries
    tensors = [torch.ones(1024, 1024) for _ in range(6)]
    del tensors
for _ in range(3):  # the heap grows to its working size
    step()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(40):
    step()
print(tuned, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator")
def test_freed_step_memory_is_reused_instead_of_faulted_in_again() -> None:
    """40 steps touch 40 x 24 MB, about 246k pages. By default glibc unmaps or trims what a step
    freed and faults it in again (244k faults measured; in some processes far fewer, depending
    on the heap's history, hence three tries); tuned, it reuses it (0 measured)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    for _ in range(3):
        out = subprocess.run([sys.executable, "-c", _PAGE_FAULTS, "tuned"], env=env, check=True,
                             capture_output=True, text=True, timeout=120).stdout.split()
        assert out[0] == "True"
        assert int(out[1]) < 0.01 * 40 * 6 * 1024, out
    env["MALLOC_TRIM_THRESHOLD_"] = "1000000"  # the user's own setting wins
    out = subprocess.run([sys.executable, "-c", _PAGE_FAULTS, "tuned"], env=env, check=True,
                         capture_output=True, text=True, timeout=120).stdout.split()
    assert out[0] == "False"


# -- how the training split reaches the device ------------------------------------------------

def _batches_before(source: ActivationSource, batch_size: int, steps: int, seed: int):
    """`batches()` as it was before the GPU loaders: the whole split copied into memory."""
    import numpy as np

    acts = torch.from_numpy(np.array(source._split("train")[0]))
    gen = torch.Generator().manual_seed(seed)
    order, pos = torch.randperm(len(acts), generator=gen), 0
    for _ in range(steps):
        if pos + batch_size > len(order):
            order, pos = torch.randperm(len(acts), generator=gen), 0
        idx = order[pos:pos + batch_size]
        pos += batch_size
        yield acts[idx].to(dtype=torch.float32) * source.scale


@pytest.mark.parametrize("mode", ["host", "resident", "stream"])
def test_every_loader_yields_the_batches_of_the_whole_split_in_memory(
        source: ActivationSource, mode: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # 31 steps of 300 over 4096 tokens: three epochs, the last batch of each cut short of the end
    monkeypatch.setenv(activations.LOADER_ENV, mode)
    fresh = ActivationSource(SMALL)
    assert fresh.loader_mode("cpu") == mode
    got = list(fresh.batches(300, 31, seed=5))
    want = list(_batches_before(fresh, 300, 31, seed=5))
    assert len(got) == len(want) == 31
    assert all(torch.equal(g, w) for g, w in zip(got, want, strict=True))
    assert fresh.tokens_served == 31 * 300 and fresh.loader == f"{mode} (cpu)"
    if mode == "stream":  # no copy of the split in this process: each batch read from the file
        assert fresh._train is None and fresh._resident is None


def test_the_default_loader_on_the_cpu_keeps_the_split_in_memory(
        source: ActivationSource, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(activations.LOADER_ENV, raising=False)
    assert source.loader_mode("cpu") == "host"
    assert not transfer.fits_on(torch.device("cpu"), 1)  # only a GPU holds it resident


def test_staged_copies_do_not_share_the_reused_buffer() -> None:
    import numpy as np

    staging = transfer.Staging(4, 3, torch.float16, "cpu")
    sent = [staging.send(lambda dst, v=v: dst.__setitem__(..., v), 4) for v in range(5)]
    assert [float(t[0, 0]) for t in sent] == [0.0, 1.0, 2.0, 3.0, 4.0]
    array = np.arange(7 * 5, dtype=np.float16).reshape(7, 5)
    for chunk_bytes in (1, 2 * 5 * 2, 3 * 5 * 2, 1 << 20):  # 1, 2, 3 rows and all at once
        moved = transfer.to_device(array, "cpu", chunk_bytes=chunk_bytes)
        assert moved.dtype == torch.float16 and torch.equal(moved, torch.from_numpy(array))


def test_placing_evaluation_activations_on_the_cpu_changes_nothing() -> None:
    t = torch.randn(5, 3)
    assert transfer.placed(t, "cpu") is t


def test_activations_beyond_the_cache_dtype_are_refused() -> None:
    import numpy as np

    activations._check_range(np.array([[1.0, -65504.0]], np.float32), np.dtype("float16"), "x")
    for bad in (7e4, float("nan")):
        with pytest.raises(ValueError, match="cache_dtype"):
            activations._check_range(np.array([[1.0, bad]], np.float32), np.dtype("float16"), "x")
