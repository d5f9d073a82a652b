"""Distances between generated and real point clouds (numpy + scipy, no torch).

`knn_kl(p, q)`: the k-nearest-neighbour estimate of KL(P || Q) from samples (Wang, Kulkarni and
Verdú 2009, "Divergence estimation for multidimensional densities via k-nearest-neighbor
distances"; Pérez-Cruz 2008), in nats (the reference template's npeet `kldiv` gives bits):

    D(P||Q) ~ (d / n) * sum_i log(nu_k(i) / rho_k(i)) + log(m / (n - 1))

with rho_k(i) the distance from p_i to its k-th nearest neighbour among the other p's, nu_k(i)
that to its k-th nearest neighbour among the m q's. Consistent as n, m grow; it is not exact
at finite n: it can fall slightly below 0 when P = Q, and it underestimates large divergences
(at n = m = 4000, 2-D Gaussians: 1.88 for a true 2.0, 3.8 for 4.5; tests/test_diffusion_metrics.py).

`energy_distance(x, y)`: 2 E|X - Y| - E|X - X'| - E|Y - Y'| (Székely and Rizzo), Euclidean,
within-sample means over distinct pairs (so it is unbiased and may be slightly negative when
the distributions agree); zero if and only if the distributions are equal.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.spatial import KDTree
from scipy.spatial.distance import cdist

KNN_K = 5
"""Neighbours of the KL estimate (the reference's k)."""
_FLOOR = 1e-12
"""Smallest distance counted (in units of the samples' scale): two identical points would give
log(0)."""


def knn_kl(p: np.ndarray, q: np.ndarray, k: int = KNN_K) -> float:
    """KL(P || Q) in nats from samples p (n, d) of P and q (m, d) of Q."""
    p, q = np.asarray(p, dtype=np.float64), np.asarray(q, dtype=np.float64)
    n, d = p.shape
    m = q.shape[0]
    if n <= k or m < k:
        raise ValueError(f"knn_kl needs more than k={k} points in each sample (have {n}, {m})")
    floor = _FLOOR * max(float(np.abs(p).max()), 1.0)
    rho = KDTree(p).query(p, k=k + 1)[0][:, k]  # the first neighbour is the point itself
    nu = KDTree(q).query(p, k=k)[0]
    nu = nu[:, k - 1] if nu.ndim == 2 else nu
    rho, nu = np.maximum(rho, floor), np.maximum(nu, floor)
    return float(d * np.mean(np.log(nu / rho)) + math.log(m / (n - 1)))


def _mean_distance(a: np.ndarray, b: np.ndarray, same: bool, rows: int = 1024) -> float:
    total = 0.0
    for start in range(0, len(a), rows):
        total += math.fsum(cdist(a[start:start + rows], b).sum(axis=1))
    pairs = len(a) * (len(b) - 1) if same else len(a) * len(b)  # the zero diagonal excluded
    return total / pairs


def energy_distance(x: np.ndarray, y: np.ndarray) -> float:
    """The energy distance between the samples x (n, d) and y (m, d)."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if len(x) < 2 or len(y) < 2:
        raise ValueError("energy_distance needs at least 2 points in each sample")
    return 2 * _mean_distance(x, y, False) - _mean_distance(x, x, True) \
        - _mean_distance(y, y, True)
