"""What the evaluator measures on one exported denoiser: the sampler, the held-out denoising
loss, and the distances between generated and held-out points.

The sampler is fixed (the run declares only its schedule): DDPM ancestral sampling (Ho et al.
2020), x_T ~ N(0, I) and for t = T-1 ... 0

    x0_hat = (x_t - sqrt(1 - a_bar_t) eps_hat) / sqrt(a_bar_t)
    x_{t-1} = mu~_t(x_t, x0_hat) + sigma_t z,   sigma_t^2 = beta~_t = beta_t (1 - a_bar_{t-1}) / (1 - a_bar_t)

(the posterior mean and variance; no noise at t = 0, x0_hat not clipped), as the reference
template's NoiseScheduler samples. All randomness comes from CPU generators seeded with
EVAL_SEED and the dataset's index, so every run and seed meets the same noise.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from harness.diffusion.contract import DATASETS
from harness.diffusion.metrics import KNN_K, energy_distance, knn_kl

EVAL_SEED = 2_020
RANGE_FACTOR = 10.0
"""A sample is outside the sane range when a coordinate exceeds this many times the held-out
data's largest absolute coordinate."""


def _stream(dataset: str, purpose: int) -> torch.Generator:
    return torch.Generator().manual_seed(EVAL_SEED * 1000 + DATASETS.index(dataset) * 10 + purpose)


def _call(program: Any, x: torch.Tensor, t: int | torch.Tensor, device: str) -> torch.Tensor:
    tt = torch.full((len(x), 1), float(t)) if isinstance(t, int) else t.float().reshape(-1, 1)
    return program(torch.cat([x, tt], dim=1).to(device)).float().cpu()


def sample(program: Any, betas: np.ndarray, n: int, dataset: str, device: str = "cpu") -> np.ndarray:
    """`n` points (n, 2) drawn by DDPM ancestral sampling with the declared betas."""
    T = len(betas)
    alphas = 1.0 - betas
    a_bar = np.cumprod(alphas)
    a_prev = np.concatenate([[1.0], a_bar[:-1]])
    gen = _stream(dataset, 0)
    x = torch.randn(n, 2, generator=gen)
    for t in range(T - 1, -1, -1):
        eps = _call(program, x, t, device)
        if tuple(eps.shape) != (n, 2):
            raise ValueError(f"the {dataset} denoiser returned shape {tuple(eps.shape)}, not ({n}, 2)")
        x0 = math.sqrt(1 / a_bar[t]) * x - math.sqrt(1 / a_bar[t] - 1) * eps
        mean = (betas[t] * math.sqrt(a_prev[t]) / (1 - a_bar[t])) * x0 \
            + ((1 - a_prev[t]) * math.sqrt(alphas[t]) / (1 - a_bar[t])) * x
        noise = torch.randn(n, 2, generator=gen)  # drawn at t = 0 too: the same stream for any T
        if t > 0:
            var = betas[t] * (1 - a_prev[t]) / (1 - a_bar[t])
            mean = mean + math.sqrt(max(var, 1e-20)) * noise
        x = mean
    return x.double().numpy()


def denoising_loss(program: Any, betas: np.ndarray, x0: np.ndarray, dataset: str,
                   device: str = "cpu") -> tuple[float, float]:
    """(MSE of the predicted noise, MSE of predicting zero), per coordinate, on the held-out
    points noised at fixed random timesteps (uniform over the declared T) with fixed noise."""
    T = len(betas)
    gen = _stream(dataset, 1)
    u = torch.rand(len(x0), generator=gen)
    eps = torch.randn(len(x0), 2, generator=gen)
    t = torch.clamp((u * T).long(), max=T - 1)
    a_bar = torch.from_numpy(np.cumprod(1.0 - betas)).float()[t].reshape(-1, 1)
    x_t = a_bar.sqrt() * torch.from_numpy(x0).float() + (1 - a_bar).sqrt() * eps
    pred = _call(program, x_t, t, device)
    return float(((pred - eps) ** 2).mean()), float((eps ** 2).mean())


@dataclass
class Report:
    """One seed's measurements, every dataset."""

    metrics: dict[str, float | None]
    per_dataset: dict[str, dict[str, Any]] = field(default_factory=dict)
    seconds: float = 0.0


def _finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None


def evaluate(programs: dict[str, Any], betas: np.ndarray, held_out: dict[str, np.ndarray],
             n_generate: int, device: str = "cpu") -> Report:
    """Sample from, and measure, every dataset's denoiser of one seed."""
    start = time.perf_counter()
    metrics: dict[str, float | None] = {}
    per: dict[str, dict[str, Any]] = {}
    for d in DATASETS:
        real = held_out[d].astype(np.float64)
        generated = sample(programs[d], betas, n_generate, d, device)
        finite = np.isfinite(generated).all(axis=1)
        bound = RANGE_FACTOR * float(np.abs(real).max())
        inside = (np.abs(generated) <= bound).all(axis=1)  # NaN is never inside
        kept = generated[finite]
        loss, zero = denoising_loss(programs[d], betas, real, d, device)
        enough = len(kept) > KNN_K
        metrics[f"kl_{d}"] = _finite_or_none(knn_kl(real, kept)) if enough else None
        metrics[f"energy_{d}"] = _finite_or_none(energy_distance(real, kept)) if enough else None
        metrics[f"eval_loss_{d}"] = _finite_or_none(loss)
        per[d] = {"nonfinite": int((~finite).sum()), "outside": int((~inside).sum()),
                  "range_bound": bound, "eval_loss_zero": zero, "n_generated": n_generate,
                  "n_eval": len(real)}
    n_total = n_generate * len(DATASETS)

    def mean(prefix: str) -> float | None:
        values = [metrics[f"{prefix}_{d}"] for d in DATASETS]
        return math.fsum(v for v in values if v is not None) / len(values) \
            if all(v is not None for v in values) else None

    ratios = [metrics[f"eval_loss_{d}"] for d in DATASETS]
    metrics.update({
        "kl_mean": mean("kl"), "energy_mean": mean("energy"), "eval_loss_mean": mean("eval_loss"),
        "eval_loss_zero": math.fsum(per[d]["eval_loss_zero"] for d in DATASETS) / len(DATASETS),
        "loss_ratio_max": max(r / per[d]["eval_loss_zero"] for r, d in zip(ratios, DATASETS, strict=True))
        if all(r is not None for r in ratios) else None,
        "nonfinite_frac": sum(per[d]["nonfinite"] for d in DATASETS) / n_total,
        "outside_frac": sum(per[d]["outside"] for d in DATASETS) / n_total,
    })
    return Report(metrics, per, time.perf_counter() - start)


DEFINITIONS = {
    "kl_<dataset>": f"KL(held-out real || generated) in nats, the k-nearest-neighbour estimate "
                    f"(Wang, Kulkarni and Verdu 2009) with k = {KNN_K}, over the finite samples; "
                    "lower is better",
    "energy_<dataset>": "energy distance 2E|X-Y| - E|X-X'| - E|Y-Y'| between held-out real and "
                        "finite generated points (Euclidean); lower is better",
    "eval_loss_<dataset>": "mean squared error of the predicted noise per coordinate on the "
                           "held-out points, noised at fixed timesteps drawn uniformly over the "
                           "run's declared T with fixed noise; it depends on the schedule, so "
                           "compare it only between runs with the same schedule",
    "kl_mean, energy_mean, eval_loss_mean": "the means of the per-dataset values over the datasets",
    "eval_loss_zero": "the same loss for a predictor of zero noise (about 1), the untrained floor",
    "loss_ratio_max": "the largest eval_loss_<dataset> / its zero-predictor loss over the datasets",
    "nonfinite_frac": "share of generated points (all datasets) with a NaN or infinite coordinate",
    "outside_frac": f"share of generated points with a coordinate beyond {RANGE_FACTOR:g} times "
                    "the held-out data's largest absolute coordinate (non-finite ones included)",
}
