"""Evaluating an SAE: every number in final_info['metrics'] is computed here, not by the template.

The SAE is used only through `sae(x, output_features=True) -> (x_hat, f)` on scaled
activations (and `decode`, `W_dec`, `groups()`, `levels()` where present), so whatever an idea
changes inside the SAE, the measurement stays the same.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import torch

from harness import measurements
from harness.activations import ActivationSource, spliced, token_mask
from harness.metrics import (
    DEFINITIONS,
    DENSE_THRESHOLD,
    ReconstructionStats,
    counted_positions,
    downstream_scores,
    kl_div,
    next_token_ce,
)


@dataclass(frozen=True)
class Report:
    """The outcome of one evaluation."""

    metrics: dict[str, float]
    """Flat numbers: what the loop, plots, tables and gates read."""
    d_in: int
    d_sae: int
    """Measured from the SAE's output width, not taken from its attributes."""
    measurements: dict[str, Any] = field(default_factory=dict)
    """Idea-specific details (per-group condition numbers, per-level numbers)."""
    windows: dict[str, Any] = field(default_factory=dict)
    """How many tokens each metric was measured over."""
    seconds: float = 0.0


def _device_of(sae: torch.nn.Module) -> torch.device:
    return next(iter(sae.parameters())).device


def _forward(sae: Any, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    out = sae(x, output_features=True)
    if not (isinstance(out, tuple) and len(out) == 2):
        raise TypeError("sae(x, output_features=True) must return (x_hat, f)")
    return out[0], out[1]


@torch.no_grad()
def reconstruction(sae: Any, acts: torch.Tensor, batch_size: int = 4096
                   ) -> tuple[dict[str, float], int, dict[str, dict[str, float]]]:
    """Sparsity and reconstruction metrics over scaled activations (n, d_in); per-level too."""
    device = _device_of(sae)
    stats: ReconstructionStats | None = None
    level_stats: dict[str, ReconstructionStats] = {}
    levels: dict[str, torch.Tensor] = {}
    for i in range(0, len(acts), batch_size):
        x = acts[i:i + batch_size].to(device)
        x_hat, f = _forward(sae, x)
        if stats is None:
            stats = ReconstructionStats(d_sae=f.shape[-1])
            levels = {k: m.to(device) for k, m in measurements.levels_of(sae, f.shape[-1]).items()}
            level_stats = {k: ReconstructionStats(d_sae=int(m.sum())) for k, m in levels.items()}
        stats.update(x, x_hat, f)
        for name, mask in levels.items():
            f_level = f * mask
            level_stats[name].update(x, sae.decode(f_level), f[:, mask])
    assert stats is not None, "no evaluation activations"
    per_level = {k: s.result() for k, s in level_stats.items()}
    return stats.result(), int(stats.fires.numel()), per_level


@torch.no_grad()
def downstream(sae: Any, source: ActivationSource, batch_size: int | None = None
               ) -> dict[str, float]:
    """CE-loss and KL-div scores with the SAE's reconstruction spliced into the model.

    The residual stream after the preset's layer is replaced, at text positions only (BOS and
    separators keep their activations), by x_hat / scale for the SAE run, and by zeros for the
    zero-ablation run. Means are over all counted positions of the held-out rows.
    """
    lm, layer, scale = source.lm, source.preset.layer, source.scale
    device = _device_of(sae)
    if batch_size is None:  # three (B, T, vocab) float32 logits live at once: keep each ~256 MB
        per_row = source.preset.context_len * lm.model.config.vocab_size * 4
        batch_size = max(1, min(8, (256 << 20) // per_row))
    sums = {"ce_clean": 0.0, "ce_sae": 0.0, "ce_zero": 0.0, "kl_sae": 0.0, "kl_zero": 0.0}
    count = 0
    rows_all = source.ce_rows()
    for i in range(0, len(rows_all), batch_size):
        rows = rows_all[i:i + batch_size].to(lm.device)
        text = token_mask(rows, lm.special_ids)  # (B, T)
        counted = counted_positions(text)  # (B, T-1)

        def with_sae(h: torch.Tensor, text: torch.Tensor = text) -> torch.Tensor:
            x = h[text].float().to(device) * scale  # (n, d_in)
            x_hat, _ = _forward(sae, x)
            out = h.clone()
            out[text] = (x_hat / scale).to(h.device, h.dtype)
            return out

        def zero(h: torch.Tensor, text: torch.Tensor = text) -> torch.Tensor:
            return h * (~text).unsqueeze(-1).to(h.dtype)

        clean = lm.model(input_ids=rows, use_cache=False).logits
        with spliced(lm, layer, with_sae):
            patched = lm.model(input_ids=rows, use_cache=False).logits
        with spliced(lm, layer, zero):
            ablated = lm.model(input_ids=rows, use_cache=False).logits
        sums["ce_clean"] += float(next_token_ce(clean, rows, counted).sum())
        sums["ce_sae"] += float(next_token_ce(patched, rows, counted).sum())
        sums["ce_zero"] += float(next_token_ce(ablated, rows, counted).sum())
        sums["kl_sae"] += float(kl_div(clean, patched, counted).sum())
        sums["kl_zero"] += float(kl_div(clean, ablated, counted).sum())
        count += int(counted.sum())
    mean = {k: v / count for k, v in sums.items()}
    scores = downstream_scores(mean["ce_clean"], mean["ce_sae"], mean["ce_zero"],
                               mean["kl_sae"], mean["kl_zero"])
    scores["ce_positions"] = count
    return scores


def evaluate(sae: torch.nn.Module, source: ActivationSource) -> Report:
    """All trusted metrics for one SAE on the source's held-out data (SAE left in eval mode)."""
    start = time.perf_counter()
    was_training = sae.training
    sae.eval()
    try:
        acts = source.eval_activations()
        recon, d_sae, per_level = reconstruction(sae, acts)
        down = downstream(sae, source)
        geometry, details = measurements.decoder_geometry(sae, d_sae, source.d_in)
    finally:
        sae.train(was_training)
    metrics = {**recon, **{k: v for k, v in down.items() if k != "ce_positions"}, **geometry}
    for name, level in per_level.items():
        metrics[f"l0_level_{name}"] = level["l0"]
        metrics[f"explained_variance_level_{name}"] = level["explained_variance"]
    if per_level:
        details["levels"] = per_level
    windows = {"reconstruction_tokens": len(acts), "dead_dense_window_tokens": len(acts),
               "dense_threshold": DENSE_THRESHOLD,
               "ce_kl_positions": down["ce_positions"], "definitions": DEFINITIONS}
    return Report(metrics, source.d_in, d_sae, details, windows, time.perf_counter() - start)
