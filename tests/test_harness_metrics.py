"""Every trusted metric against values worked out by hand on tensors small enough to check."""

from __future__ import annotations

import math

import pytest
import torch

from harness.sae import measurements
from harness.sae.metrics import (
    ReconstructionStats,
    counted_positions,
    downstream_scores,
    kl_div,
    next_token_ce,
)

# Two tokens in 2-d, a 3-latent code. By hand:
#   x     = [[2, 0], [0, 2]]      x_hat = [[1, 1], [0, 1]]      f = [[1, 0, 0], [0, 2, 0]]
#   errors [-1, 1], [0, -1]  ->  SSE = 3, MSE = 3 / (2 tokens * 2 dims) = 0.75
#   mean(x) = [1, 1]; sum ||x - mean||^2 = 2 + 2 = 4  ->  EV = 1 - 3/4 = 0.25
#   cos: token 1 = 2 / (2 * sqrt 2) = 0.70711, token 2 = 2 / (2 * 1) = 1  ->  mean 0.85355
#   ||x_hat|| / ||x||: sqrt2 / 2 = 0.70711 and 1/2  ->  mean 0.60355
#   rel_bias = sum ||x_hat||^2 / sum <x, x_hat> = (2 + 1) / (2 + 2) = 0.75
#   L0 = (1 + 1) / 2 = 1, L1 = (1 + 2) / 2 = 1.5
#   latent 2 never fires -> dead 1/3; latents 0, 1 fire on 50% > 10% of tokens -> dense 2/3
X = torch.tensor([[2.0, 0.0], [0.0, 2.0]])
X_HAT = torch.tensor([[1.0, 1.0], [0.0, 1.0]])
F = torch.tensor([[1.0, 0.0, 0.0], [0.0, 2.0, 0.0]])
EXPECTED = {"l0": 1.0, "l1": 1.5, "mse": 0.75, "explained_variance": 0.25,
            "cosine": (1 / math.sqrt(2) + 1) / 2, "l2_ratio": (1 / math.sqrt(2) + 0.5) / 2,
            "rel_bias": 0.75, "dead_frac": 1 / 3, "dense_frac": 2 / 3}


def test_reconstruction_metrics_match_hand_computation() -> None:
    stats = ReconstructionStats(d_sae=3)
    stats.update(X, X_HAT, F)
    got = stats.result()
    for name, want in EXPECTED.items():
        assert got[name] == pytest.approx(want, abs=1e-9), name


def test_explained_variance_uses_the_whole_set_mean_not_per_batch() -> None:
    # One token per batch: per-batch variance would be 0 and EV undefined; the accumulated
    # statistics must give exactly the single-batch answer.
    stats = ReconstructionStats(d_sae=3)
    for i in range(2):
        stats.update(X[i:i + 1], X_HAT[i:i + 1], F[i:i + 1])
    got = stats.result()
    for name, want in EXPECTED.items():
        assert got[name] == pytest.approx(want, abs=1e-9), name


def test_perfect_reconstruction_scores_one_and_zero_vectors_do_not_give_nan() -> None:
    x = torch.tensor([[1.0, 2.0], [0.0, 0.0], [3.0, -1.0]])
    stats = ReconstructionStats(d_sae=2)
    stats.update(x, x.clone(), torch.tensor([[1.0, 0.0], [0.0, 0.0], [0.0, 1.0]]))
    got = stats.result()
    assert got["explained_variance"] == pytest.approx(1.0)
    assert got["mse"] == 0.0
    assert got["cosine"] == pytest.approx(2 / 3)  # the zero token counts as cosine 0
    assert all(math.isfinite(v) for v in got.values())


def test_negative_codes_count_as_active() -> None:
    stats = ReconstructionStats(d_sae=2)
    stats.update(X, X_HAT, torch.tensor([[-1.0, 0.0], [0.0, 0.5]]))
    assert stats.result()["l0"] == 1.0
    assert stats.result()["l1"] == pytest.approx(0.75)


# CE and KL: one row [BOS, a, b] over a 2-token vocabulary (ids 0 = BOS, 1 = a).
# Text mask [F, T, T]: only the prediction at position 1 (of token 2) counts.
ROWS = torch.tensor([[0, 1, 0]])
TEXT = torch.tensor([[False, True, True]])


def test_ce_counts_only_predictions_between_text_tokens() -> None:
    counted = counted_positions(TEXT)
    assert counted.tolist() == [[False, True]]
    logits = torch.tensor([[[5.0, -5.0], [0.0, 0.0], [9.0, 9.0]]])
    ce = next_token_ce(logits, ROWS, counted)
    assert ce.tolist() == pytest.approx([math.log(2)])  # uniform over 2 tokens


def test_kl_of_patched_from_clean_matches_hand_value() -> None:
    counted = counted_positions(TEXT)
    clean = torch.tensor([[[0.0, 0.0], [0.0, 0.0], [0.0, 0.0]]])
    patched = torch.tensor([[[0.0, 0.0], [math.log(3), 0.0], [0.0, 0.0]]])
    # p = [.5, .5], q = [.75, .25]: KL = .5 ln(.5/.75) + .5 ln(.5/.25) = .5 ln(4/3)
    assert kl_div(clean, patched, counted).tolist() == pytest.approx([0.5 * math.log(4 / 3)])


def test_downstream_scores_from_mean_losses() -> None:
    s = downstream_scores(ce_clean=2.0, ce_sae=2.5, ce_zero=4.0, kl_sae=0.5, kl_zero=2.0)
    assert s["ce_loss_score"] == pytest.approx(0.75)  # (4 - 2.5) / (4 - 2)
    assert s["kl_div_score"] == pytest.approx(0.75)  # (2 - 0.5) / 2
    assert s["ce_increase"] == pytest.approx(0.5)


# Decoder geometry: rows [1, 0], [0, 1], [1, 1] (the last normalised to [.707, .707]).
#   |cos| pairs: (0,1) = 0, (0,2) = (1,2) = 0.70711 -> mean 0.47140, max 0.70711
#   group {0, 2}: [[1, 0], [a, a]], a = 1/sqrt2; singular values sqrt(1 +- a) -> cond 1 + sqrt2
W_DEC = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])


class _Affine(torch.nn.Module):
    """An SAE-shaped module without W_dec: the harness must find its directions by decoding."""

    def __init__(self, w: torch.Tensor) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(w.clone())
        self.b = torch.nn.Parameter(torch.tensor([3.0, -1.0]))

    def decode(self, f: torch.Tensor) -> torch.Tensor:
        return f @ self.w + self.b


def test_pairwise_decoder_cosine_matches_hand_values() -> None:
    got = measurements.pairwise_cosine(W_DEC)
    assert got["decoder_mean_abs_cos"] == pytest.approx(2 * 2 * (1 / math.sqrt(2)) / 6)
    assert got["decoder_max_abs_cos"] == pytest.approx(1 / math.sqrt(2))


def test_condition_numbers_of_groups_match_hand_values() -> None:
    conds = measurements.condition_numbers(W_DEC, [[0, 1], [0, 2]])
    assert conds == pytest.approx([1.0, 1 + math.sqrt(2)])


def test_decoder_directions_come_from_decoding_when_there_is_no_w_dec() -> None:
    sae = _Affine(W_DEC)
    assert torch.allclose(measurements.decoder_directions(sae, 3, 2), W_DEC)


def test_groups_default_to_contiguous_blocks_and_follow_sae_groups() -> None:
    sae = _Affine(W_DEC)
    groups, origin = measurements.groups_of(sae, d_sae=10, d_in=8)
    assert groups == [[0, 1], [2, 3], [4, 5], [6, 7], [8, 9]] and "contiguous" in origin
    sae.groups = lambda: torch.tensor([1, 0, 1])  # type: ignore[attr-defined]
    groups, origin = measurements.groups_of(sae, d_sae=3, d_in=2)
    assert groups == [[1], [0, 2]] and origin.startswith("sae.groups()")


def test_levels_protocol_gives_masks() -> None:
    sae = _Affine(W_DEC)
    assert measurements.levels_of(sae, 3) == {}
    sae.levels = lambda: {"coarse": [0], "fine": [1, 2]}  # type: ignore[attr-defined]
    masks = measurements.levels_of(sae, 3)
    assert masks["coarse"].tolist() == [True, False, False]
    assert masks["fine"].tolist() == [False, True, True]


# -- the device path: the same numbers from float32 batches, no eye(d_sae), any index tensor --

def _float64_reference(batches: list[tuple[torch.Tensor, ...]], d_sae: int) -> dict[str, float]:
    """The metrics as the harness computed them before its GPU path: every batch upcast to
    float64 whole, plain sums, explained variance from sum ||x||^2 - ||sum x||^2 / n."""
    n, sum_x, sum_sq_x, sse, l0, l1, cos, ratio, sq_xh, dot = 0, None, 0.0, 0.0, 0.0, 0.0, \
        0.0, 0.0, 0.0, 0.0
    fires = torch.zeros(d_sae, dtype=torch.float64)
    for x, x_hat, f in batches:
        x, x_hat, f = x.double(), x_hat.double(), f.double()
        active = f != 0
        nx, nxh = x.norm(dim=-1), x_hat.norm(dim=-1)
        n += len(x)
        sum_x = x.sum(0) if sum_x is None else sum_x + x.sum(0)
        sum_sq_x += float((x * x).sum())
        sse += float(((x - x_hat) ** 2).sum())
        l0 += float(active.sum())
        l1 += float(f.abs().sum())
        cos += float(((x * x_hat).sum(-1) / (nx * nxh).clamp_min(1e-12)).sum())
        ratio += float((nxh / nx.clamp_min(1e-12)).sum())
        sq_xh += float((x_hat * x_hat).sum())
        dot += float((x * x_hat).sum())
        fires += active.sum(0).double()
    assert sum_x is not None
    total_var = sum_sq_x - float((sum_x * sum_x).sum()) / n
    return {"l0": l0 / n, "l1": l1 / n, "mse": sse / (n * len(sum_x)),
            "explained_variance": 1 - sse / total_var, "cosine": cos / n,
            "l2_ratio": ratio / n, "rel_bias": sq_xh / dot,
            "dead_frac": float((fires == 0).double().mean()),
            "dense_frac": float((fires / n > 0.1).double().mean())}


def test_float32_batches_with_float64_totals_match_the_float64_metrics() -> None:
    # What a GPU evaluation does (float32 per batch, float64 running totals), on the CPU: a
    # random case with a mean 20x the spread (where sum ||x||^2 - n ||mean||^2 cancels) and
    # batches of uneven size.
    gen = torch.Generator().manual_seed(0)
    d_in, d_sae = 48, 384
    offset = 20 * torch.randn(d_in, generator=gen)
    batches = []
    for size in (1000, 4096, 37, 2500, 1):
        x = offset + torch.randn(size, d_in, generator=gen)
        x_hat = x + 0.3 * torch.randn(size, d_in, generator=gen)
        f = torch.relu(torch.randn(size, d_sae, generator=gen) - 2.0)
        f[:, :5] = 0.0  # dead latents
        f[:, 5:20] = torch.relu(torch.randn(size, 15, generator=gen) + 1.0)  # dense ones
        batches.append((x, x_hat, f))
    want = _float64_reference(batches, d_sae)
    for dtype in (torch.float32, torch.float64):
        stats = ReconstructionStats(d_sae=d_sae, dtype=dtype)
        for batch in batches:
            stats.update(*batch)
        got = stats.result()
        assert got.keys() == want.keys()
        for name in want:
            assert got[name] == pytest.approx(want[name], rel=1e-6, abs=1e-12), (dtype, name)
    assert stats.fires.dtype == torch.int64  # counts stay exact past float32's 2^24


def test_evaluation_reduces_in_float64_on_the_cpu_and_float32_on_a_gpu() -> None:
    from harness.sae.metrics import eval_dtype

    assert eval_dtype("cpu") == torch.float64
    assert eval_dtype("cuda") == torch.float32 and eval_dtype(torch.device("cuda", 1)) == torch.float32


def test_pairwise_cosine_in_float32_matches_float64() -> None:
    w = torch.randn(700, 40, generator=torch.Generator().manual_seed(1))
    want = measurements.pairwise_cosine(w, chunk=256)
    got = measurements.pairwise_cosine(w, chunk=256, dtype=torch.float32)
    assert got["decoder_mean_abs_cos"] == pytest.approx(want["decoder_mean_abs_cos"], rel=1e-6)
    assert got["decoder_max_abs_cos"] == pytest.approx(want["decoder_max_abs_cos"], rel=1e-6)


@pytest.mark.parametrize(("start", "stop", "d_sae"), [(0, 7, 7), (0, 3, 10), (3, 6, 10), (9, 10, 10)])
def test_identity_rows_are_the_rows_of_eye(start: int, stop: int, d_sae: int) -> None:
    assert torch.equal(measurements.identity_rows(start, stop, d_sae), torch.eye(d_sae)[start:stop])


def test_decoder_directions_by_chunks_equal_decoding_the_whole_identity() -> None:
    gen = torch.Generator().manual_seed(2)
    sae = _Affine(torch.randn(10, 2, generator=gen))
    with torch.no_grad():
        want = sae.decode(torch.eye(10)) - sae.decode(torch.zeros(1, 10))
    for chunk in (1, 3, 4, 10, 1024):
        assert torch.equal(measurements.decoder_directions(sae, 10, 2, chunk=chunk), want)


@pytest.mark.parametrize("dtype", [torch.int64, torch.int32, torch.int16, torch.uint8])
def test_level_indices_of_any_integer_dtype_give_the_same_mask(dtype: torch.dtype) -> None:
    # A uint8 tensor used as an index is read as a mask; int32 indices are fine on the CPU but
    # not every kernel takes them: all are made int64 indices on the mask's device first.
    mask = measurements.index_mask(torch.tensor([4, 1], dtype=dtype), 6)
    assert mask.tolist() == [False, True, False, False, True, False]
    assert measurements.index_mask(torch.tensor([[1], [4]], dtype=dtype), 6).tolist() == mask.tolist()


def test_level_masks_are_built_on_the_device_asked_for() -> None:
    # On a GPU the levels' masks must be on the code's device: built there, with the indices
    # moved there (a CUDA index tensor cannot index a CPU mask). "meta" stands for another
    # device here; bench/gpu_check.py checks CUDA itself.
    sae = _Affine(W_DEC)
    sae.levels = lambda: {"coarse": torch.tensor([0]), "fine": [1, 2]}  # type: ignore[attr-defined]
    masks = measurements.levels_of(sae, 3, device="meta")
    assert {m.device.type for m in masks.values()} == {"meta"}
    assert measurements.index_mask(torch.tensor([2], device="meta"), 3, "meta").device.type == "meta"
    assert measurements.levels_of(sae, 3)["fine"].tolist() == [False, True, True]


def test_groups_from_group_ids_are_found_by_one_sort() -> None:
    ids = torch.randint(0, 7, (200,), generator=torch.Generator().manual_seed(3))
    sae = _Affine(W_DEC)
    sae.groups = lambda: ids.int()  # type: ignore[attr-defined]
    groups, _ = measurements.groups_of(sae, d_sae=200, d_in=2)
    # what one pass per group id gave
    assert groups == [torch.nonzero(ids == g).flatten().tolist() for g in ids.unique()]
    sae.groups = lambda: [torch.tensor([3, 1]), [0, 2]]  # type: ignore[attr-defined]
    assert measurements.groups_of(sae, d_sae=4, d_in=2)[0] == [[3, 1], [0, 2]]
