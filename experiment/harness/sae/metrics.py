"""The trusted SAE metrics, accumulated exactly over a whole evaluation set.

Conventions (recorded in final_info under `metric_definitions`):
- per-token quantities (l0, l1, cosine, l2_ratio) are means over evaluation tokens;
- `mse` is per element: sum of squared errors / (tokens * d_in), in the scaled units
  (E||x||^2 = d_in on the training split, so mse ~ 1 - explained_variance at zero mean);
- `explained_variance` = 1 - sum ||x - x_hat||^2 / sum ||x - mean(x)||^2, both sums over the
  whole evaluation set and the mean taken over it (not per batch);
- `rel_bias` = E||x_hat||^2 / E<x, x_hat> (1 = unbiased; < 1 = shrinkage), as in SAEBench;
- a latent is dead if it never fires (f != 0) in the window, dense if it fires on more than
  `dense_threshold` of the window's tokens.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

DENSE_THRESHOLD = 0.1
"""Fraction of tokens above which a latent counts as dense."""

DEFINITIONS = {
    "l0": "mean over eval tokens of the number of latents with f != 0",
    "l1": "mean over eval tokens of sum_i |f_i|",
    "mse": "sum of squared errors / (eval tokens * d_in), scaled units (E||x||^2 = d_in)",
    "explained_variance": "1 - sum ||x - x_hat||^2 / sum ||x - mean_eval(x)||^2 over the eval set",
    "cosine": "mean over eval tokens of cos(x, x_hat)",
    "l2_ratio": "mean over eval tokens of ||x_hat|| / ||x||",
    "rel_bias": "E||x_hat||^2 / E<x, x_hat> (1 = no shrinkage)",
    "dead_frac": "fraction of latents with f != 0 on no token of the eval window",
    "dense_frac": f"fraction of latents with f != 0 on more than {DENSE_THRESHOLD:.0%} of the "
                  "eval window's tokens",
    "ce_loss_score": "(CE_zero_ablation - CE_sae) / (CE_zero_ablation - CE_clean); CE in nats "
                     "per counted prediction of the held-out rows (input and target tokens both "
                     "text); CE_sae: the layer's output replaced by the reconstruction at text "
                     "positions (BOS and separators keep theirs); CE_zero_ablation: the layer's "
                     "output set to zero at every position, BOS included (as SAELens and "
                     "dictionary_learning zero-ablate)",
    "kl_div_score": "(KL_zero_ablation - KL_sae) / KL_zero_ablation, KL(clean || patched) per "
                    "counted prediction, with the same two patches as ce_loss_score",
    "ce_increase": "CE_sae - CE_clean, nats per counted prediction",
}


def eval_dtype(device: str | torch.device) -> torch.dtype:
    """The dtype evaluation reduces a batch in: float64 on the CPU (what its numbers always
    were), float32 on a GPU, where float64 runs at a fraction of the float32 rate (1/64 on
    most cards) and would double the memory of every (tokens, d_sae) tensor. Running totals
    are float64 on every device."""
    return torch.float64 if torch.device(device).type == "cpu" else torch.float32


_SUMS = ("sse", "l1", "cosine", "l2_ratio", "sq_xhat", "dot")
"""The per-token quantities `ReconstructionStats` sums (see `update`)."""


@dataclass
class ReconstructionStats:
    """Running sums over batches of (x, x_hat, f); `result()` gives the totals.

    Each batch is reduced on its own device, in `eval_dtype` (float32 on a GPU), to one value
    per token and quantity (a sum over at most d_sae terms); only those per-token values are
    added into the running totals, in float64, which keeps float64's accuracy over millions of
    tokens without any (tokens, d) float64 tensor on a GPU. The spread about the mean is
    combined across batches from each batch's mean and centred sum of squares (Chan, Golub &
    LeVeque's pairwise update), so a mean large against the spread costs no digits to
    cancellation. Counts are exact integers. The totals stay on the batches' device until
    `result()`, so an update makes no host synchronisation.
    """

    d_sae: int
    n: int = 0
    dtype: torch.dtype | None = None
    """Per-batch dtype; None: `eval_dtype` of the first batch's device."""
    sums: torch.Tensor | None = None  # (len(_SUMS),) float64
    mean: torch.Tensor | None = None  # (d_in,) float64
    m2: torch.Tensor | None = None  # () float64: sum ||x - mean||^2
    l0: torch.Tensor | None = None  # () int64: active (token, latent) pairs
    fires: torch.Tensor = field(default=None)  # type: ignore[assignment]  # (d_sae,) int64 counts

    def __post_init__(self) -> None:
        if self.fires is None:
            self.fires = torch.zeros(self.d_sae, dtype=torch.int64)

    @torch.no_grad()
    def update(self, x: torch.Tensor, x_hat: torch.Tensor, f: torch.Tensor) -> None:
        """x, x_hat: (n, d_in); f: (n, d_sae)."""
        if len(x) == 0:
            return
        dtype = self.dtype or eval_dtype(x.device)
        x, x_hat, f = x.to(dtype), x_hat.to(dtype), f.to(dtype)
        active = f != 0
        sq_x, sq_xh = (x * x).sum(-1), (x_hat * x_hat).sum(-1)  # (n,)
        norm_x, norm_xh = sq_x.sqrt(), sq_xh.sqrt()
        dot = (x * x_hat).sum(-1)
        err = x - x_hat
        per_token = torch.stack([
            (err * err).sum(-1),  # sse
            f.abs().sum(-1),  # l1
            # A zero vector has no direction: count its cosine as 0 rather than NaN.
            dot / (norm_x * norm_xh).clamp_min(1e-12),  # cosine
            norm_xh / norm_x.clamp_min(1e-12),  # l2_ratio
            sq_xh, dot])  # (len(_SUMS), n)
        sums = per_token.sum(-1, dtype=torch.float64)
        batch_mean = x.mean(0)
        centred = x - batch_mean
        m2 = (centred * centred).sum(-1).sum(dtype=torch.float64)
        batch_mean = batch_mean.double()
        n_a, n_b = self.n, len(x)
        if self.sums is None or self.mean is None or self.m2 is None or self.l0 is None:
            self.sums, self.mean, self.m2 = sums, batch_mean, m2
            self.l0 = active.sum()
            self.fires = self.fires.to(x.device)
        else:
            delta = batch_mean - self.mean
            self.sums = self.sums + sums
            self.mean = self.mean + delta * (n_b / (n_a + n_b))
            self.m2 = self.m2 + m2 + (delta * delta).sum() * (n_a * n_b / (n_a + n_b))
            self.l0 = self.l0 + active.sum()
        self.fires += active.sum(0)
        self.n = n_a + n_b

    def result(self) -> dict[str, float]:
        assert self.n > 0 and self.sums is not None and self.mean is not None, \
            "no evaluation tokens"
        n, d_in = self.n, len(self.mean)
        s = dict(zip(_SUMS, self.sums.cpu().tolist(), strict=True))
        total_var = float(self.m2)  # sum ||x - mu||^2 over the whole set
        fires = self.fires.cpu().double()
        frac = fires / n
        return {
            "l0": int(self.l0) / n,
            "l1": s["l1"] / n,
            "mse": s["sse"] / (n * d_in),
            "explained_variance": 1.0 - s["sse"] / total_var if total_var > 0 else float("nan"),
            "cosine": s["cosine"] / n,
            "l2_ratio": s["l2_ratio"] / n,
            "rel_bias": s["sq_xhat"] / s["dot"] if s["dot"] != 0 else float("nan"),
            "dead_frac": float((fires == 0).double().mean()),
            "dense_frac": float((frac > DENSE_THRESHOLD).double().mean()),
        }


def counted_positions(text_mask: torch.Tensor) -> torch.Tensor:
    """(B, T-1) bool: predictions counted in CE and KL, those whose input token and target
    token are both text (BOS, separators and padding neither predict nor are predicted)."""
    return text_mask[:, :-1] & text_mask[:, 1:]


def next_token_log_probs(logits: torch.Tensor) -> torch.Tensor:
    """Log-probabilities of the next token: logits (B, T, V) -> (B, T-1, V), float32."""
    return torch.log_softmax(logits[:, :-1].float(), dim=-1)


def ce_from_log_probs(logp: torch.Tensor, rows: torch.Tensor, counted: torch.Tensor
                      ) -> torch.Tensor:
    """CE in nats of rows[:, t+1] under logp[:, t] (B, T-1, V), at the counted positions."""
    target = rows[:, 1:].to(logp.device)
    ce = -logp.gather(-1, target.unsqueeze(-1)).squeeze(-1)  # (B, T-1)
    return ce[counted.to(logp.device)]


def kl_from_log_probs(p_log: torch.Tensor, q_log: torch.Tensor, counted: torch.Tensor,
                      p: torch.Tensor | None = None) -> torch.Tensor:
    """KL(p || q) in nats at the counted positions from log-probs (B, T-1, V); `p` may pass
    p_log.exp() when several KLs share the same p."""
    p = p_log.exp() if p is None else p
    kl = (p * (p_log - q_log)).sum(-1)  # (B, T-1)
    return kl[counted.to(p_log.device)]


def next_token_ce(logits: torch.Tensor, rows: torch.Tensor, counted: torch.Tensor) -> torch.Tensor:
    """CE in nats of predicting rows[:, t+1] from logits[:, t] at the counted positions.

    logits: (B, T, V); rows: (B, T); counted: (B, T-1). Returns a flat tensor.
    """
    return ce_from_log_probs(next_token_log_probs(logits), rows, counted)


def kl_div(clean_logits: torch.Tensor, logits: torch.Tensor, counted: torch.Tensor) -> torch.Tensor:
    """KL(clean || patched) in nats at the counted positions (flat tensor)."""
    return kl_from_log_probs(next_token_log_probs(clean_logits), next_token_log_probs(logits),
                             counted)


def downstream_scores(ce_clean: float, ce_sae: float, ce_zero: float,
                      kl_sae: float, kl_zero: float) -> dict[str, float]:
    """CE-loss score, KL-div score and the raw CE increase from the five mean losses."""
    return {
        "ce_loss_score": (ce_zero - ce_sae) / (ce_zero - ce_clean) if ce_zero != ce_clean
        else float("nan"),
        "kl_div_score": (kl_zero - kl_sae) / kl_zero if kl_zero > 0 else float("nan"),
        "ce_increase": ce_sae - ce_clean,
        "ce_clean": ce_clean, "ce_sae": ce_sae, "ce_zero_ablation": ce_zero,
        "kl_sae": kl_sae, "kl_zero_ablation": kl_zero,
    }
