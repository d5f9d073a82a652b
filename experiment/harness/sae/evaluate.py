"""Evaluating an SAE: every number in final_info['metrics'] is computed here, not by the template.

The SAE is used only through `sae(x, output_features=True) -> (x_hat, f)` on scaled
activations (and `decode`, `W_dec`, `groups()`, `levels()` where present), so whatever an idea
changes inside the SAE, the measurement stays the same.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from harness import cache
from harness.sae import measurements
from harness.sae.activations import ActivationSource, spliced, token_mask
from harness.sae.metrics import (
    DEFINITIONS,
    DENSE_THRESHOLD,
    ReconstructionStats,
    ce_from_log_probs,
    counted_positions,
    downstream_scores,
    kl_from_log_probs,
    next_token_log_probs,
)
from harness.transfer import placed

log = logging.getLogger(__name__)


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
    """Sparsity and reconstruction metrics over scaled activations (n, d_in); per-level too.

    `acts` may be on the SAE's device already or in (pinned) host memory (`placed`)."""
    device = _device_of(sae)
    stats: ReconstructionStats | None = None
    level_stats: dict[str, ReconstructionStats] = {}
    levels: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    for i in range(0, len(acts), batch_size):
        x = acts[i:i + batch_size].to(device, non_blocking=acts.is_pinned())
        x_hat, f = _forward(sae, x)
        if stats is None:
            stats = ReconstructionStats(d_sae=f.shape[-1])
            masks = measurements.levels_of(sae, f.shape[-1], device=f.device)
            # the level's latents as indices, found once: a boolean mask as an index would
            # search it (and wait for the device) on every batch
            levels = {k: (m, m.nonzero().flatten()) for k, m in masks.items()}
            level_stats = {k: ReconstructionStats(d_sae=len(idx)) for k, (_, idx) in levels.items()}
        stats.update(x, x_hat, f)
        for name, (mask, idx) in levels.items():
            f_level = f * mask
            level_stats[name].update(x, sae.decode(f_level), f.index_select(1, idx))
    assert stats is not None, "no evaluation activations"
    per_level = {k: s.result() for k, s in level_stats.items()}
    return stats.result(), int(stats.fires.numel()), per_level


ZERO_ABLATION_FORMAT = 2  # 2: every position zeroed (1 kept BOS and separators)
"""Bump when the zero-ablation measurement changes, so cached sums are not reused."""


def _zero_ablation_entry(source: ActivationSource, rows: torch.Tensor) -> Path:
    p, lm = source.preset, source.lm
    fields = {"weights": lm.fingerprint, "layer": p.layer, "special_ids": list(lm.special_ids),
              "rows": hashlib.sha256(rows.numpy().tobytes()).hexdigest(),
              "format": ZERO_ABLATION_FORMAT}
    return cache.root() / "downstream" / f"{p.model}-L{p.layer}-zero-{cache.key(fields)}.json"


@torch.no_grad()
def downstream(sae: Any | None, source: ActivationSource, batch_size: int | None = None,
               reuse_zero_ablation: bool = True) -> dict[str, float]:
    """CE-loss and KL-div scores of one SAE (`downstream_many` with one SAE; `sae=None` only
    measures and caches the zero-ablation sums: `harness.sae.prepare`)."""
    scores, count, cached = _downstream([sae] if sae is not None else [], source, batch_size,
                                        reuse_zero_ablation)
    return scores[0] if scores else {"ce_positions": count, "zero_ablation_cached": cached}


def downstream_many(saes: list[Any], source: ActivationSource, batch_size: int | None = None,
                    reuse_zero_ablation: bool = True) -> list[dict[str, float]]:
    """`downstream` for several SAEs: see `_downstream`."""
    return _downstream(saes, source, batch_size, reuse_zero_ablation)[0]


@torch.no_grad()
def _downstream(saes: list[Any], source: ActivationSource, batch_size: int | None,
                reuse_zero_ablation: bool) -> tuple[list[dict[str, float]], int, bool]:
    """CE-loss and KL-div scores with each SAE's reconstruction spliced into the model.

    The residual stream after the preset's layer is replaced by x_hat / scale at text positions
    (BOS and separators keep their activations: an SAE trained on text tokens is not asked to
    reconstruct the BOS residual, whose norm is orders of magnitude larger) for the SAE run,
    and by zeros at every position, BOS included, for the zero-ablation run, as SAELens and
    dictionary_learning zero-ablate. Means are over the counted predictions of the held-out
    rows (input and target both text: `counted_positions`).

    What does not depend on the SAE is done once for all of them: the clean forward pass of
    each batch (the seeds of a run share it), and the zero-ablation sums, which are cached per
    model, layer and rows (written by `harness.sae.prepare`) and used only if this run's clean CE
    matches the one stored with them. Returns the scores of each SAE, the number of counted
    positions and whether the zero-ablation sums came from the cache.
    """
    lm, layer, scale = source.lm, source.preset.layer, source.scale
    if batch_size is None:  # clean log-probs, their exp and one patched run's log-probs
        # are (B, T, vocab) float32 tensors alive at once: keep each ~256 MB
        per_row = source.preset.context_len * lm.model.config.vocab_size * 4
        batch_size = max(1, min(8, (256 << 20) // per_row))
    rows_all = source.ce_rows()
    entry = _zero_ablation_entry(source, rows_all)
    rows_all = rows_all.to(lm.device)  # once, not one small blocking copy per batch
    known = json.loads(entry.read_text(encoding="utf-8")) if reuse_zero_ablation and \
        entry.exists() else None
    shared = {"ce_clean": 0.0, "ce_zero": 0.0, "kl_zero": 0.0}
    own = [{"ce_sae": 0.0, "kl_sae": 0.0} for _ in saes]
    count = 0
    for i in range(0, len(rows_all), batch_size):
        rows = rows_all[i:i + batch_size]
        text = token_mask(rows, lm.special_ids)  # (B, T)
        counted = counted_positions(text)  # (B, T-1)

        def zero(h: torch.Tensor) -> torch.Tensor:
            return torch.zeros_like(h)

        clean = next_token_log_probs(lm.model(input_ids=rows, use_cache=False).logits)
        p_clean = clean.exp()
        shared["ce_clean"] += float(ce_from_log_probs(clean, rows, counted).sum())
        for sae, sums in zip(saes, own, strict=True):
            device = _device_of(sae)

            def with_sae(h: torch.Tensor, text: torch.Tensor = text, sae: Any = sae,
                         device: torch.device = device) -> torch.Tensor:
                x = h[text].float().to(device) * scale  # (n, d_in)
                x_hat, _ = _forward(sae, x)
                out = h.clone()
                out[text] = (x_hat / scale).to(h.device, h.dtype)
                return out

            with spliced(lm, layer, with_sae):
                patched = next_token_log_probs(lm.model(input_ids=rows, use_cache=False).logits)
            sums["ce_sae"] += float(ce_from_log_probs(patched, rows, counted).sum())
            sums["kl_sae"] += float(kl_from_log_probs(clean, patched, counted, p_clean).sum())
            del patched
        if known is None:
            with spliced(lm, layer, zero):
                ablated = next_token_log_probs(lm.model(input_ids=rows, use_cache=False).logits)
            shared["ce_zero"] += float(ce_from_log_probs(ablated, rows, counted).sum())
            shared["kl_zero"] += float(kl_from_log_probs(clean, ablated, counted, p_clean).sum())
            del ablated
        count += int(counted.sum())
    if known is not None:
        same = known["count"] == count and math.isclose(known["ce_clean"], shared["ce_clean"],
                                                        rel_tol=1e-4)
        if not same:
            log.warning("cached zero-ablation sums in %s do not match this model's clean CE; "
                        "measuring again", entry)
            return _downstream(saes, source, batch_size, reuse_zero_ablation=False)
        shared["ce_zero"], shared["kl_zero"] = known["ce_zero"], known["kl_zero"]
    else:
        try:
            cache.write_atomically(entry, json.dumps({
                "count": count, "ce_clean": shared["ce_clean"], "ce_zero": shared["ce_zero"],
                "kl_zero": shared["kl_zero"]}))
        except OSError as exc:  # a read-only cache (a sandboxed evaluator): measured, not kept
            log.info("zero-ablation sums not cached (%s)", exc)
    out = []
    for sums in own:
        mean = {k: v / count for k, v in {**shared, **sums}.items()}
        scores = downstream_scores(mean["ce_clean"], mean["ce_sae"], mean["ce_zero"],
                                   mean["kl_sae"], mean["kl_zero"])
        scores["ce_positions"] = count
        scores["zero_ablation_cached"] = known is not None
        out.append(scores)
    return out, count, known is not None


def evaluate(sae: torch.nn.Module, source: ActivationSource) -> Report:
    """All trusted metrics for one SAE on the source's held-out data (SAE left in eval mode)."""
    return evaluate_many([sae], source)[0]


def evaluate_many(saes: list[Any], source: ActivationSource) -> list[Report]:
    """`evaluate` for several SAEs (the seeds of a run) on the same held-out data: the
    activations are read and the model's clean forward pass is run once for all of them.
    Each report's `seconds` is its share of the wall time."""
    start = time.perf_counter()
    modes = [sae.training for sae in saes]
    for sae in saes:
        sae.eval()
    try:
        # on the SAEs' device once (or pinned, when it does not fit), for every SAE
        acts = placed(source.eval_activations(), _device_of(saes[0]) if saes else "cpu")
        recons = [reconstruction(sae, acts) for sae in saes]
        downs = downstream_many(saes, source)
        geometries = [measurements.decoder_geometry(sae, d_sae, source.d_in)
                      for sae, (_, d_sae, _) in zip(saes, recons, strict=True)]
    finally:
        for sae, mode in zip(saes, modes, strict=True):
            sae.train(mode)
    share = (time.perf_counter() - start) / max(1, len(saes))
    reports = []
    for (recon, d_sae, per_level), down, (geometry, details) in zip(recons, downs, geometries,
                                                                     strict=True):
        metrics = {**recon, **{k: v for k, v in down.items()
                               if k not in ("ce_positions", "zero_ablation_cached")}, **geometry}
        for name, level in per_level.items():
            metrics[f"l0_level_{name}"] = level["l0"]
            metrics[f"explained_variance_level_{name}"] = level["explained_variance"]
        if per_level:
            details["levels"] = per_level
        windows = {"reconstruction_tokens": len(acts), "dead_dense_window_tokens": len(acts),
                   "dense_threshold": DENSE_THRESHOLD,
                   "ce_kl_positions": down["ce_positions"],
                   "zero_ablation_from_cache": bool(down["zero_ablation_cached"]),
                   "definitions": DEFINITIONS}
        reports.append(Report(metrics, source.d_in, d_sae, details, windows, share))
    return reports
