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


@dataclass
class ReconstructionStats:
    """Running sums over batches of (x, x_hat, f); `result()` gives the exact totals."""

    d_sae: int
    n: int = 0
    sum_x: torch.Tensor | None = None  # (d_in,) float64
    sum_sq_x: float = 0.0
    sse: float = 0.0
    l0: float = 0.0
    l1: float = 0.0
    cosine: float = 0.0
    l2_ratio: float = 0.0
    sq_xhat: float = 0.0
    dot: float = 0.0
    fires: torch.Tensor = field(default=None)  # type: ignore[assignment]  # (d_sae,) counts

    def __post_init__(self) -> None:
        if self.fires is None:
            self.fires = torch.zeros(self.d_sae, dtype=torch.float64)

    @torch.no_grad()
    def update(self, x: torch.Tensor, x_hat: torch.Tensor, f: torch.Tensor) -> None:
        """x, x_hat: (n, d_in); f: (n, d_sae). Accumulated in float64."""
        x, x_hat, f = x.double(), x_hat.double(), f.double()
        active = f != 0
        norm_x, norm_xh = x.norm(dim=-1), x_hat.norm(dim=-1)
        self.n += len(x)
        self.sum_x = x.sum(0) if self.sum_x is None else self.sum_x + x.sum(0)
        self.sum_sq_x += float((x * x).sum())
        self.sse += float(((x - x_hat) ** 2).sum())
        self.l0 += float(active.sum())
        self.l1 += float(f.abs().sum())
        # A zero vector has no direction: count its cosine as 0 rather than NaN.
        self.cosine += float(((x * x_hat).sum(-1) / (norm_x * norm_xh).clamp_min(1e-12)).sum())
        self.l2_ratio += float((norm_xh / norm_x.clamp_min(1e-12)).sum())
        self.sq_xhat += float((x_hat * x_hat).sum())
        self.dot += float((x * x_hat).sum())
        self.fires += active.sum(0).cpu().double()

    def result(self) -> dict[str, float]:
        assert self.n > 0 and self.sum_x is not None, "no evaluation tokens"
        n, d_in = self.n, len(self.sum_x)
        total_var = self.sum_sq_x - float((self.sum_x * self.sum_x).sum()) / n  # sum ||x - mu||^2
        frac = self.fires / n
        return {
            "l0": self.l0 / n,
            "l1": self.l1 / n,
            "mse": self.sse / (n * d_in),
            "explained_variance": 1.0 - self.sse / total_var if total_var > 0 else float("nan"),
            "cosine": self.cosine / n,
            "l2_ratio": self.l2_ratio / n,
            "rel_bias": self.sq_xhat / self.dot if self.dot != 0 else float("nan"),
            "dead_frac": float((self.fires == 0).double().mean()),
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
