"""Every trusted metric against values worked out by hand on tensors small enough to check."""

from __future__ import annotations

import math

import pytest
import torch

from harness import measurements
from harness.metrics import (
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
